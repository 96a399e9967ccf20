"""A seed sweep in two processes (2 CPU devices each, gloo collectives) equals the same
sweep in one process on 4 devices, bit for bit, and a two-process checkpoint resumes in
one process.

Each device runs the same program on the same runs whatever the process layout (no
reduction crosses the seed axis), so the arrays must be identical, not merely close.
The runs are subprocesses of experiments/run.py with a timeout each, killed on failure,
so a hang fails the test.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from tests import processes
from tests.test_multiprocess import TIMEOUT

# 6 seeds x 2 lrs = 12 runs: 3 per device on 4 devices, in groups of 2 (one padding run
# per device); 60 chunks of 4 steps, a checkpoint every 20 chunks.
SWEEP = ["--config.dim=3", "--config.hidden=4", "--config.batch=4", "--config.steps=240",
         "--config.log_every=4", "--config.chunk_steps=4", "--config.checkpoint_every=20",
         "--config.models=ns", "--config.run_optimizers=altgd", "--config.num_seeds=6",
         "--config.chunk_seeds=2", "--config.optimizers.altgd.lrs=(0.01,0.003)",
         "--config.optimizers.altgd.n_disc=1"]


def _args(tmp_path, workdir: str) -> list[str]:
    return [f"--config={os.path.join(processes.ROOT, 'experiments', 'sweep_manifold_lr.py')}",
            f"--workdir={tmp_path / workdir}", *SWEEP]


def _start(tmp_path, workdir: str, nproc: int):
    """The sweep in `workdir` as `nproc` processes of 4 / nproc devices each."""
    return processes.start(tmp_path, _args(tmp_path, workdir), nproc, devices=4 // nproc)


def _run(tmp_path, workdir: str, nproc: int) -> list[tuple[int, str, str]]:
    return processes.run(tmp_path, _args(tmp_path, workdir), nproc, TIMEOUT,
                         devices=4 // nproc)


def _arrays(tmp_path, workdir: str) -> dict[str, np.ndarray]:
    with np.load(tmp_path / workdir / "ns__altgd.npz") as arrays:
        return {key: arrays[key] for key in arrays}


def _assert_same_sweep(tmp_path, a: str, b: str) -> None:
    x, y = _arrays(tmp_path, a), _arrays(tmp_path, b)
    assert sorted(x) == sorted(y) == ["reference", "values"]
    assert x["values"].shape == (6, 2, 61, 10) and np.isfinite(x["values"][:, :, 1:]).all()
    for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    rows = []
    for workdir in (a, b):
        with open(tmp_path / workdir / "summary.json") as f:
            rows.append(json.load(f)["cells"]["ns__altgd"]["rows"])
    assert rows[0] == rows[1]


@pytest.mark.slow  # six JAX processes compile the sweep's two programs: ~1.5 min on 2 cores
def test_two_process_sweep_equals_one_process_and_resumes_in_one(tmp_path):
    _run(tmp_path, "one", nproc=1)
    (_, out0, _), (_, out1, _) = _run(tmp_path, "two", nproc=2)
    _assert_same_sweep(tmp_path, "one", "two")
    with open(tmp_path / "two" / "summary.json") as f:
        summary = json.load(f)
    assert (summary["devices"], summary["processes"]) == (4, 2)
    # Process 0 alone prints; both take part in every chunk.
    assert "step 240/240" in out0 and "seed-steps/s" not in out1, out1[-2000:]

    # SIGTERM to process 0 only: process 1 learns of it at the same chunk (agreed), both
    # save the one checkpoint and exit with 143; one process on 4 devices resumes it.
    procs = _start(tmp_path, "cut", nproc=2)
    # the first chunk is done: chunks are running
    processes.terminate_when_printed(procs, "seed-steps/s", TIMEOUT)
    results = processes.finish(procs, TIMEOUT)
    for status, _, err in results:
        assert status == 128 + signal.SIGTERM, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    assert "Another process received SIGTERM" in results[1][2], results[1][2][-2000:]
    assert not (tmp_path / "cut" / "ns__altgd.npz").exists(), "stopped too late"
    assert os.listdir(tmp_path / "cut" / "checkpoints" / "ns__altgd")

    (_, out, _), = _run(tmp_path, "cut", nproc=1)
    assert "ns__altgd: resuming after chunk" in out, out[-2000:]
    _assert_same_sweep(tmp_path, "one", "cut")
