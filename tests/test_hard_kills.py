"""kill -9 at random moments (seeded), then the same command: the workdir ends up as an
uninterrupted run's (one metrics.jsonl row per step and key, TensorBoard without
duplicated steps, the same final parameters), and a second command started beside a
running one is refused."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_fail_well import TINY, _read_events

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 60
KILLS = 3
TIMEOUT = 300


def _command(tmp_path, workdir: str, num_steps: int = NUM_STEPS) -> list[str]:
    # A checkpoint every 3 steps and a row every step: most moments fall in a save or a
    # metrics write.
    return [sys.executable, os.path.join(ROOT, "experiments", "run.py"),
            f"--config={tmp_path / 'tiny.py'}", f"--workdir={tmp_path / workdir}",
            f"--config.train.num_steps={num_steps}", "--config.train.checkpoint_every=3",
            "--config.train.keep_checkpoints=2", "--config.train.sample_every=20"]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", XLA_FLAGS="")


def _start_training(command: list[str]) -> tuple[subprocess.Popen, str]:
    """The command, once it has printed its first step (compiled, training), and that line."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    deadline = time.monotonic() + TIMEOUT
    line = ""
    while not line.startswith("step "):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"no step printed: {line!r}\n{proc.stderr.read()[-3000:]}")
        line = proc.stdout.readline()
    return proc, line


def _events(workdir) -> list[tuple[int, str, float]]:
    from tensorboardX.proto import event_pb2

    directory = os.path.join(workdir, "tensorboard")
    return [(e.step, v.tag, v.simple_value) for name in sorted(os.listdir(directory))
            for e in _read_events(os.path.join(directory, name), event_pb2)
            if e.HasField("summary") for v in e.summary.value]


def _state(workdir, step: int) -> list[np.ndarray]:
    import jax
    import orbax.checkpoint as ocp

    path = os.path.join(workdir, "checkpoints", str(step), "default")
    checkpointer = ocp.PyTreeCheckpointer()
    meta = checkpointer.metadata(path)
    tree = meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    return jax.tree.leaves(checkpointer.restore(
        path, args=ocp.args.PyTreeRestore(restore_args=as_numpy)))


@pytest.mark.slow  # six starts of the tiny GAN: ~3 min on 2 cores
def test_kill_9_at_random_moments_leaves_an_uninterrupted_runs_workdir(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    full = subprocess.run(_command(tmp_path, "full"), capture_output=True, text=True,
                          env=_env(), timeout=TIMEOUT)
    assert full.returncode == 0, full.stderr[-3000:]

    rng = np.random.default_rng(0)
    # Kill moments: a random time (up to about two steps) after a random step's line.
    targets = sorted(rng.choice(np.arange(5, NUM_STEPS - 4), KILLS, replace=False))
    for kill, target in enumerate(targets):
        proc, line = _start_training(_command(tmp_path, "killed"))
        if kill == 0:  # the same command beside a running one (paused, so it surely runs)
            proc.send_signal(signal.SIGSTOP)
            second = subprocess.run(_command(tmp_path, "killed"), capture_output=True,
                                    text=True, env=_env(), timeout=TIMEOUT)
            proc.send_signal(signal.SIGCONT)
            assert second.returncode == 2, second.stderr[-3000:]
            assert f"is in use by pid {proc.pid}" in second.stderr, second.stderr
        while not line.startswith(f"step {target}/"):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            line = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.1))
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.communicate()
    done = subprocess.run(_command(tmp_path, "killed"), capture_output=True, text=True,
                          env=_env(), timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Taking over" in done.stderr and "Resuming from checkpoint step" in done.stdout

    rows = {w: [json.loads(line) for line in open(tmp_path / w / "metrics.jsonl")]
            for w in ("full", "killed")}
    assert [r["step"] for r in rows["killed"]] == list(range(1, NUM_STEPS + 1))
    # The clock's keys describe the sessions that trained, not the training: each session
    # logs its own compile_seconds in its first row, and wall_seconds goes on from the
    # last saved progress, so it only has to increase.
    session = {"compile_seconds", "wall_seconds"}
    assert [sorted(set(r) - session) for r in rows["killed"]] == [
        sorted(set(r) - session) for r in rows["full"]]
    assert np.all(np.diff([r["wall_seconds"] for r in rows["killed"]]) >= 0)
    for a, b in zip(rows["full"], rows["killed"]):
        for key in set(a) - session:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=f"{key} {a['step']}")

    events = {w: [e for e in _events(tmp_path / w) if e[1] not in session]
              for w in ("full", "killed")}
    counts = collections.Counter((step, tag) for step, tag, _ in events["killed"])
    assert max(counts.values()) == 1  # no step twice
    full_events = {(step, tag): value for step, tag, value in events["full"]}
    killed_events = {(step, tag): value for step, tag, value in events["killed"]}
    assert sorted(killed_events) == sorted(full_events)
    for key, value in full_events.items():
        np.testing.assert_allclose(killed_events[key], value, rtol=1e-6, err_msg=str(key))

    for a, b in zip(_state(tmp_path / "full", NUM_STEPS), _state(tmp_path / "killed", NUM_STEPS),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert sorted(os.listdir(tmp_path / "killed" / "checkpoints")) == sorted(
        os.listdir(tmp_path / "full" / "checkpoints"))
    final = {w: json.load(open(tmp_path / w / "results.json"))["final_losses"]
             for w in ("full", "killed")}
    assert {k: v for k, v in final["killed"].items() if k not in session} == pytest.approx(
        {k: v for k, v in final["full"].items() if k not in session})
    assert not os.path.exists(tmp_path / "killed" / "run.lock")
