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
import time

import pytest

from tests import processes
from tests.test_fail_well import TINY

TIMEOUT = 240  # seconds per phase; a hang fails


def _start(tmp_path, num_steps: int):
    """The tiny GAN in workdir `wd`, as 2 processes (JAX's default CPU devices each)."""
    return processes.start(tmp_path, [
        f"--config={tmp_path / 'tiny.py'}", f"--workdir={tmp_path / 'wd'}",
        f"--config.train.num_steps={num_steps}", "--config.train.log_every=1",
        "--config.train.checkpoint_every=100000", "--config.train.sample_every=100000"],
        processes=2)


@pytest.mark.slow  # two JAX processes compile the tiny GAN: ~1-2 min on 2 cores
def test_sigterm_seconds_apart_saves_once_at_one_step_and_resumes(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    procs = _start(tmp_path, num_steps=1_000_000)
    # process 0 prints progress; once training is under way, it gets SIGTERM first
    processes.terminate_when_printed(procs, "step 3/", TIMEOUT)
    time.sleep(3)
    if procs[1].poll() is None:
        procs[1].send_signal(signal.SIGTERM)
    results = processes.finish(procs, TIMEOUT)
    saved = []
    for status, _, err in results:
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
    results = processes.finish(_start(tmp_path, num_steps=step + 2), TIMEOUT)
    for status, _, err in results:
        assert status == 0, err[-3000:]
    assert f"Resuming from checkpoint step {step}" in results[0][1]
    assert str(step + 2) in os.listdir(checkpoints)
