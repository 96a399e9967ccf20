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
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_multihost import ROOT, _free_port
from tests.test_multiprocess import TIMEOUT, _finish

# 6 seeds x 2 lrs = 12 runs: 3 per device on 4 devices, in groups of 2 (one padding run
# per device); 60 chunks of 4 steps, a checkpoint every 20 chunks.
SWEEP = ["--config.dim=3", "--config.hidden=4", "--config.batch=4", "--config.steps=240",
         "--config.log_every=4", "--config.chunk_steps=4", "--config.checkpoint_every=20",
         "--config.models=ns", "--config.run_optimizers=altgd", "--config.num_seeds=6",
         "--config.chunk_seeds=2", "--config.optimizers.altgd.lrs=(0.01,0.003)",
         "--config.optimizers.altgd.n_disc=1"]


def _start(tmp_path, workdir: str, processes: int) -> list[subprocess.Popen]:
    """The sweep in `workdir` as `processes` processes of 4 / processes devices each."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
               XLA_FLAGS=f"--xla_force_host_platform_device_count={4 // processes}")
    argv = [sys.executable, os.path.join(ROOT, "experiments", "run.py"),
            f"--config={os.path.join(ROOT, 'experiments', 'sweep_manifold_lr.py')}",
            f"--workdir={tmp_path / workdir}", *SWEEP]
    if processes > 1:
        argv += ["--config.parallel.distributed=True",
                 f"--config.parallel.coordinator_address=localhost:{_free_port()}",
                 f"--config.parallel.num_processes={processes}"]
    return [subprocess.Popen(argv + ([f"--config.parallel.process_id={i}"] if processes > 1
                                     else []),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=str(tmp_path))
            for i in range(processes)]


def _run(tmp_path, workdir: str, processes: int) -> list[tuple[int, str, str]]:
    results = _finish(_start(tmp_path, workdir, processes))
    for status, _, err in results:
        assert status == 0, err[-3000:]
    return results


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
    _run(tmp_path, "one", processes=1)
    (_, out0, _), (_, out1, _) = _run(tmp_path, "two", processes=2)
    _assert_same_sweep(tmp_path, "one", "two")
    with open(tmp_path / "two" / "summary.json") as f:
        summary = json.load(f)
    assert (summary["devices"], summary["processes"]) == (4, 2)
    # Process 0 alone prints; both take part in every chunk.
    assert "step 240/240" in out0 and "seed-steps/s" not in out1, out1[-2000:]

    # SIGTERM to process 0 only: process 1 learns of it at the same chunk (agreed), both
    # save the one checkpoint and exit with 143; one process on 4 devices resumes it.
    procs = _start(tmp_path, "cut", processes=2)
    try:
        deadline = time.monotonic() + TIMEOUT
        line = ""
        while "seed-steps/s" not in line:  # the first chunk is done: chunks are running
            assert time.monotonic() < deadline and procs[0].poll() is None, line
            line = procs[0].stdout.readline()
        procs[0].send_signal(signal.SIGTERM)
    except AssertionError as failure:
        printed = "\n".join(err[-3000:] for _, _, err in _finish(procs))
        raise AssertionError(f"{failure}\n{printed}") from None
    except BaseException:
        _finish(procs)
        raise
    results = _finish(procs)
    for status, _, err in results:
        assert status == 128 + signal.SIGTERM, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    assert "Another process received SIGTERM" in results[1][2], results[1][2][-2000:]
    assert not (tmp_path / "cut" / "ns__altgd.npz").exists(), "stopped too late"
    assert os.listdir(tmp_path / "cut" / "checkpoints" / "ns__altgd")

    (_, out, _), = _run(tmp_path, "cut", processes=1)
    assert "ns__altgd: resuming after chunk" in out, out[-2000:]
    _assert_same_sweep(tmp_path, "one", "cut")
