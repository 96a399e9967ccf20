"""`experiments/run.py` as 1 or N JAX processes on localhost (CPU devices, gloo), for the
multi-process tests.

Every wait has a timeout and every process left running is killed, so a deadlock fails
a test instead of hanging it; when a process ends early, its stderr is in the failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start(tmp_path, args: Sequence[str], processes: int,
          devices: Optional[int] = None) -> list[subprocess.Popen]:
    """`run.py *args` as `processes` processes of `devices` CPU devices each (None: JAX's
    default), one coordinator on a free port when there are several."""
    flags = f"--xla_force_host_platform_device_count={devices}" if devices else ""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, XLA_FLAGS=flags)
    argv = [sys.executable, os.path.join(ROOT, "experiments", "run.py"), *args]
    if processes > 1:
        argv += ["--config.parallel.distributed=True",
                 f"--config.parallel.coordinator_address=localhost:{free_port()}",
                 f"--config.parallel.num_processes={processes}"]
    return [subprocess.Popen(argv + ([f"--config.parallel.process_id={i}"] if processes > 1
                                     else []),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=str(tmp_path))
            for i in range(processes)]


def finish(procs: Sequence[subprocess.Popen], timeout: float) -> list[tuple[int, str, str]]:
    """(status, stdout, stderr) of each process; any still running after `timeout` is killed."""
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def run(tmp_path, args: Sequence[str], processes: int, timeout: float,
        devices: Optional[int] = None) -> list[tuple[int, str, str]]:
    """`start` and `finish`, asserting that every process exited with status 0."""
    results = finish(start(tmp_path, args, processes, devices), timeout)
    for status, _, err in results:
        assert status == 0, err[-3000:]
    return results


def terminate_when_printed(procs: Sequence[subprocess.Popen], text: str,
                           timeout: float) -> None:
    """SIGTERM to process 0 once its stdout has printed a line containing `text`."""
    try:
        deadline = time.monotonic() + timeout
        line = ""
        while text not in line:
            assert time.monotonic() < deadline and procs[0].poll() is None, line
            line = procs[0].stdout.readline()
        procs[0].send_signal(signal.SIGTERM)
    except AssertionError as failure:  # a process ended early: say what it printed
        printed = "\n".join(err[-3000:] for _, _, err in finish(procs, timeout))
        raise AssertionError(f"{failure}\n{printed}") from None
    except BaseException:
        finish(procs, timeout)
        raise
