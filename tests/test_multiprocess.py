"""Two processes on localhost (JAX CPU, gloo collectives) stop together and resume.

SIGTERM reaches process 0 first and process 1 three seconds later, as a scheduler's
signals may. Both must save once, at the same step (`signals.StopRequests.agreed`
all-reduces the stop request every step), exit with 143, and the same command must
resume both to the end. Every subprocess has a timeout and is killed on failure, so a
deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.test_fail_well import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240  # seconds per phase; a hang fails


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(tmp_path, port: int, num_steps: int) -> list[subprocess.Popen]:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", PYTHONPATH=ROOT)
    procs = []
    for i in range(2):
        argv = [sys.executable, os.path.join(ROOT, "experiments", "run.py"),
                f"--config={tmp_path / 'tiny.py'}", f"--workdir={tmp_path / 'wd'}",
                "--config.parallel.distributed=True",
                f"--config.parallel.coordinator_address=localhost:{port}",
                "--config.parallel.num_processes=2", f"--config.parallel.process_id={i}",
                f"--config.train.num_steps={num_steps}", "--config.train.log_every=1",
                "--config.train.checkpoint_every=100000",
                "--config.train.sample_every=100000"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env, cwd=str(tmp_path)))
    return procs


def _finish(procs) -> list[tuple[int, str, str]]:
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


@pytest.mark.slow  # two JAX processes compile the tiny GAN: ~1-2 min on 2 cores
def test_sigterm_seconds_apart_saves_once_at_one_step_and_resumes(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    procs = _start(tmp_path, _free_port(), num_steps=1_000_000)
    try:
        deadline = time.monotonic() + TIMEOUT
        line = ""
        while "step 3/" not in line:  # process 0 prints progress; training is under way
            assert time.monotonic() < deadline and procs[0].poll() is None, line
            line = procs[0].stdout.readline()
        procs[0].send_signal(signal.SIGTERM)
        time.sleep(3)
        if procs[1].poll() is None:
            procs[1].send_signal(signal.SIGTERM)
    except AssertionError as failure:  # a process ended early: say what it printed
        printed = "\n".join(err[-3000:] for _, _, err in _finish(procs))
        raise AssertionError(f"{failure}\n{printed}") from None
    except BaseException:
        _finish(procs)
        raise
    results = _finish(procs)
    saved = []
    for status, out, err in results:
        assert status == 143, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        saved += re.findall(r"saved checkpoint step (\d+)", err)
    assert len(saved) == 2 and saved[0] == saved[1], [r[2][-1000:] for r in results]
    assert re.search(r"SIGTERM received during step \d+: saving a checkpoint",
                     results[0][2])
    assert f"Another process received SIGTERM: stopping with it after step {saved[1]}" in \
        results[1][2]
    step = int(saved[0])
    checkpoints = tmp_path / "wd" / "checkpoints"
    assert sorted(os.listdir(checkpoints)) == [str(step)]

    # The same command, two steps further: both resume from the saved step and finish.
    results = _finish(_start(tmp_path, _free_port(), num_steps=step + 2))
    for status, out, err in results:
        assert status == 0, err[-3000:]
    assert f"Resuming from checkpoint step {step}" in results[0][1]
    assert str(step + 2) in os.listdir(checkpoints)
