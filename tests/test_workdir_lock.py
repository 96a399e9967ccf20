"""One command per workdir (gan_dynamics.workdir_lock): a second command is refused in
one line naming the holder; a lock whose holder is gone is taken over with a warning."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from gan_dynamics import workdir_lock
from gan_dynamics.errors import UserError
from tests.test_fail_well import BILINEAR, ROOT, RUN, error_line, snapshot

# A command that holds a workdir until it is killed.
_HOLDER = textwrap.dedent("""
    import sys, time
    from gan_dynamics import workdir_lock
    with workdir_lock.hold(sys.argv[1]):
        print("holding", flush=True)
        time.sleep(600)
""")


def _hold_in_another_process(workdir: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, workdir], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _toy_argv(workdir) -> list[str]:
    """A 5-step CGD run on the bilinear game: a second or two in-process."""
    return ["run.py", f"--config={BILINEAR}", f"--workdir={workdir}", "--config.steps=5",
            "--config.optimizers={'cgd': {'lr_x': 0.2, 'lr_y': 0.2}}"]


def test_a_second_command_is_refused_then_a_dead_holder_is_taken_over(tmp_path, capfd):
    workdir = tmp_path / "wd"
    workdir.mkdir()
    holder = _hold_in_another_process(str(workdir))
    try:
        before = snapshot(str(workdir))
        status = RUN.main(_toy_argv(workdir))
        err = capfd.readouterr().err
        assert status == 2, err
        line = error_line(err)
        assert err.strip() == line  # one line
        assert f"in use by pid {holder.pid} on {socket.gethostname()}" in line, line
        assert snapshot(str(workdir)) == before  # nothing written, the lock untouched
    finally:
        holder.send_signal(signal.SIGKILL)  # the holder dies without releasing
        holder.wait()
    assert os.path.exists(workdir / workdir_lock.LOCK_FILE)
    status = RUN.main(_toy_argv(workdir))
    err = capfd.readouterr().err
    assert status == 0, err
    assert (f"Taking over {workdir / workdir_lock.LOCK_FILE}: its holder (pid {holder.pid}"
            in err and "no longer exists" in err), err
    assert (workdir / "results.json").exists()
    assert not os.path.exists(workdir / workdir_lock.LOCK_FILE)  # released at the end


def test_another_hosts_lock_is_stale_once_its_heartbeat_stops(tmp_path, capfd):
    path = tmp_path / workdir_lock.LOCK_FILE
    other = {"host": "node-that-crashed", "pid": 1, "started": "2024-01-01T00:00:00+0000",
             "command": "run.py"}
    path.write_text(json.dumps(other))
    with pytest.raises(workdir_lock.WorkdirBusy, match="in use by pid 1 on node-that-crashed"):
        workdir_lock.acquire(str(tmp_path), stale_after_s=60)
    old = time.time() - 120
    os.utime(path, (old, old))  # no heartbeat for two minutes
    with workdir_lock.hold(str(tmp_path), stale_after_s=60) as me:
        assert json.loads(path.read_text()) == me and me["pid"] == os.getpid()
    assert "has not refreshed its lock for 120 s" in capfd.readouterr().err
    assert not path.exists()


def test_the_heartbeat_refreshes_the_lock(tmp_path):
    path = tmp_path / workdir_lock.LOCK_FILE
    with workdir_lock.hold(str(tmp_path), heartbeat_s=0.05):
        old = time.time() - 1000
        os.utime(path, (old, old))
        time.sleep(0.3)
        assert time.time() - path.stat().st_mtime < 1.0


def test_evaluate_and_diagnose_refuse_a_workdir_in_use(tmp_path, capfd):
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(ROOT, "experiments", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    with workdir_lock.hold(str(tmp_path)):
        with pytest.raises(UserError, match="is in use by pid"):
            load("evaluate").main(["--workdir", str(tmp_path)])
        assert load("diagnose").main([f"--workdir={tmp_path}"]) == 2
        assert "is in use by pid" in error_line(capfd.readouterr().err)
