"""gan_dynamics.signals: acknowledged at once, exit 128 + signum, Ctrl-C twice stops now."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gan_dynamics import signals

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A "step" that holds the main thread in C code with the GIL released (as a compile or a
# device wait does), so Python's own handler cannot run until it returns.
_CHILD = textwrap.dedent("""
    import hashlib, sys, time
    from gan_dynamics import signals
    data = b"x" * (200 * 1024 * 1024)
    try:
        with signals.StopRequests("saving at the next step boundary") as stop:
            for step in range(1000):
                stop.step = step + 1
                print("step", step, flush=True)
                hashlib.sha256(data).hexdigest()
                if stop.agreed(step) is not None:
                    print("saved at", step + 1, flush=True)
                    break
    except signals.StopNow:
        print("stopped without saving", flush=True)
        sys.exit(130)
    sys.exit(stop.exit_code())
""")


def _start():
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().startswith("step 0")
    return proc


def test_exit_code_is_128_plus_signal():
    assert signals.exit_code(signal.SIGTERM) == 143
    assert signals.exit_code(signal.SIGINT) == 130
    stop = signals.StopRequests()
    assert stop.exit_code() == 0


def test_sigterm_is_acknowledged_at_once_and_exits_143():
    proc = _start()
    try:
        time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        ack = ""
        while not ack.strip():
            ack = proc.stderr.readline()
        waited = time.monotonic() - sent
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert ack.startswith("SIGTERM received during step 1: saving at the next step "
                          "boundary"), ack
    # Acknowledged while the step (hashing 200 MB, GIL released) was still running.
    assert "saved at" in out and waited < 0.5, (waited, out)
    assert proc.returncode == 143


def test_second_ctrl_c_stops_without_saving():
    proc = _start()
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "stopped without saving" in out and "saved at" not in out, out
    assert "press Ctrl-C again to stop without saving" in err
    assert "stopping now without saving" in err
    assert proc.returncode == 130


def test_inert_outside_the_main_thread():
    import threading

    seen = []
    before = signal.getsignal(signal.SIGTERM)

    def body():
        with signals.StopRequests() as stop:
            seen.append(stop.agreed(0))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [None]
    # The main thread's handlers are untouched.
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow  # compiles the tiny GAN twice: ~1 min on 2 cores
def test_run_py_sigterm_saves_exits_143_and_resumes(tmp_path):
    """The real command and a real signal: saved, 143 for the scheduler, then resumed."""
    import re

    from tests.test_fail_well import TINY

    (tmp_path / "tiny.py").write_text(TINY)
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", XLA_FLAGS="")

    def command(num_steps):
        return [sys.executable, os.path.join(ROOT, "experiments", "run.py"),
                f"--config={tmp_path / 'tiny.py'}", f"--workdir={tmp_path / 'wd'}",
                f"--config.train.num_steps={num_steps}", "--config.train.checkpoint_every=100000",
                "--config.train.sample_every=100000"]

    proc = subprocess.Popen(command(1_000_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line, deadline = "", time.monotonic() + 240
        while "step 3/" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, line
            line = proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert re.search(r"SIGTERM received during step \d+: saving a checkpoint at the next "
                     "step boundary", err), err
    assert "Traceback" not in err
    step = int(re.search(r"saved checkpoint step (\d+)", err).group(1))
    assert os.listdir(tmp_path / "wd" / "checkpoints") == [str(step)]
    done = subprocess.run(command(step + 1), capture_output=True, text=True, env=env,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    assert f"Resuming from checkpoint step {step}" in done.stdout
    assert (tmp_path / "wd" / "results.json").exists()


def _tiny_config(tmp_path, **train):
    """The tiny 8x8 digits GAN of test_fail_well, its `train` section updated."""
    import importlib.util

    from tests.test_fail_well import TINY

    (tmp_path / "tiny.py").write_text(TINY)
    spec = importlib.util.spec_from_file_location("tiny_config", tmp_path / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.train.update(train)
    return config


@pytest.mark.slow  # compiles the tiny GAN: 10-25 s on 2 cores
def test_a_stopped_image_run_leaves_what_a_finished_one_does_marked_partial(tmp_path):
    """SIGTERM after step 2 of 1000: besides the checkpoint, results.json (partial), the
    loss curves and the sample grid of step 2, although no grid was due."""
    import json

    from gan_dynamics.runners import train
    from tests.test_train import sigterm_after

    config = _tiny_config(tmp_path, num_steps=1000, sample_every=1000, checkpoint_every=1000,
                          eval_every=1)
    workdir = tmp_path / "wd"
    with pytest.raises(signals.Stopped) as stopped:
        train.run(config, str(workdir), eval_hooks=[sigterm_after(2)])
    assert stopped.value.exit_code == 143 and "marked partial" in str(stopped.value)
    results = json.loads((workdir / "results.json").read_text())
    assert results["partial"] is True and results["stopped_by"] == "SIGTERM"
    assert results["steps"] == 2 and results["final_losses"]["step"] == 2
    assert (workdir / "loss_curves.png").stat().st_size > 0
    assert os.listdir(workdir / "samples") == ["step_00000002.png"]
    assert os.listdir(workdir / "checkpoints") == ["2"]
