"""What an image run writes besides checkpoints: metrics, progress lines, evaluations,
sample grids, loss curves, results.json, and the progress record of its checkpoints.

`Reporter` is used by the loop of one run (`train`) and, one per seed, by the loop of a
K-seed run (`train_seeds`); `track_first_bad` is the test of a non-finite update both
apply on the device. The numbering and the files are described in `train`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_dynamics import checkpoints, progress
from gan_dynamics.errors import NonFiniteLoss
from gan_dynamics.outputs import (
    MetricWriter,
    read_metrics,
    save_image_grid,
    save_loss_curves,
    write_json,
)
from gan_dynamics.runners.train_config import Experiment
from gan_dynamics.runners.train_step import TrainState, generate_fn

EvalHook = Callable[[int, TrainState, Callable[[jax.Array], jax.Array]], dict[str, float]]

# fold_in constant for the fixed latents of the sample grids (independent of training keys).
_SAMPLE_LATENTS = 0x5A4D
# What the first non-finite step had: `Reporter._first_bad[1]`.
_FINITE, _LOSS, _STATE = 0, 1, 2
PROGRESS_FILE = "progress.json"
BUDGETS = ("steps", "grad_evals", "seconds")


def track_first_bad(bad: jax.Array, f: jax.Array, g: jax.Array, state: TrainState,
                     step: int) -> jax.Array:
    """[first non-finite step, _LOSS | _STATE]: `bad` unless it is still [-1, _FINITE] and
    update `step` had a non-finite loss or left a non-finite state (any floating leaf)."""
    losses_ok = jnp.isfinite(f) & jnp.isfinite(g)
    state_ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(state)
                                  if jnp.issubdtype(leaf.dtype, jnp.inexact)]))
    what = jnp.where(losses_ok, jnp.where(state_ok, _FINITE, _STATE), _LOSS)
    return jnp.where((bad[0] < 0) & (what != _FINITE), jnp.stack([step, what]), bad)


def non_finite_found(bad: int, what: int) -> str:
    """What went wrong at the first non-finite step `bad` (`what`: _LOSS or _STATE)."""
    return ("Non-finite loss at step {} (f or g is NaN or inf)" if what == _LOSS else
            "Non-finite parameters after step {} (NaN or inf in the parameters, "
            "batch statistics or optimizer state, with finite losses: an infinite "
            "gradient or a solver breakdown)").format(bad)


def read_progress(workdir: str, step: int) -> tuple[float, int]:
    """(wall seconds, total gradient evaluations) saved with checkpoint `step`; zeros for
    a fresh start or a checkpoint saved before these were kept."""
    path = os.path.join(workdir, PROGRESS_FILE)
    if step == 0 or not os.path.exists(path):
        return 0.0, 0
    with open(path) as f:
        saved = json.load(f).get(str(step), {})
    return float(saved.get("wall_seconds", 0.0)), int(saved.get("total_grad_evals", 0))


def write_progress(workdir: str, step: int, wall_seconds: float, grad_evals: int) -> None:
    """Add checkpoint `step`'s wall seconds and gradient evaluations to progress.json
    (atomically; a fresh run starts the file anew)."""
    path = os.path.join(workdir, PROGRESS_FILE)
    saved = {}
    if os.path.exists(path) and step > 0:
        with open(path) as f:
            saved = {k: v for k, v in json.load(f).items() if int(k) < step}
    saved[str(step)] = {"wall_seconds": wall_seconds, "total_grad_evals": grad_evals}
    write_json(path, saved)


class Reporter:
    """Everything the loop writes besides checkpoints: metrics, progress lines, evaluation,
    sample grids, loss curves and results.json; only process 0 writes or prints."""

    def __init__(self, workdir: str, config: ml_collections.ConfigDict, exp: Experiment,
                 start: int, hooks: Sequence[EvalHook]):
        self.workdir, self.config, self.start, self.hooks = workdir, config, start, hooks
        self.is_main = jax.process_index() == 0
        self.writer = MetricWriter(workdir, start, enabled=self.is_main)
        self.num_steps = int(config.train.num_steps)
        self.sample_z = jax.random.normal(
            jax.random.fold_in(jax.random.key(config.seed), _SAMPLE_LATENTS),
            (int(config.train.num_samples), exp.z_dim))
        self._generate = jax.jit(lambda s, z: generate_fn(exp, s)(z))
        self._grid = lambda s: self._generate(s, self.sample_z)  # compile_grid replaces it
        self._drawn = -1  # the step of the last sample grid
        self._first_done = None
        # The first non-finite step and what was not finite, on the device.
        self._first_bad = jnp.asarray([-1, _FINITE], jnp.int32)
        self._track = jax.jit(track_first_bad)
        # Earlier sessions' wall time and cost, continued from the checkpoint's record.
        self.wall_offset, self.grad_offset = read_progress(workdir, start)
        self._grad_evals = jnp.zeros((), jnp.int32)  # this session's, summed on the device
        self._count = jax.jit(lambda total, n: total + n.astype(jnp.int32))
        self._loop_start = time.perf_counter()
        self.budget = {k: self.config.train.get("budget", {}).get(k, 0) for k in BUDGETS}
        self.budget_reached: tuple[str, int] | None = None  # (which, at step)

    def wall_seconds(self) -> float:
        """Wall-clock seconds of training so far, this session's compilation excluded."""
        if self._first_done is None:
            return self.wall_offset
        return self.wall_offset + time.perf_counter() - self._first_done

    def total_grad_evals(self) -> int:
        """Cumulative gradient evaluations (waits for the device)."""
        return self.grad_offset + int(jax.device_get(self._grad_evals))

    def compile_grid(self, abstract: TrainState) -> None:
        """Compile the sample grid's program now (announced), so the first grid waits for
        nothing."""
        compiled = progress.compile("the sample generator", self._generate, abstract,
                                    self.sample_z)
        self._grid = lambda s: compiled(s, self.sample_z)

    def start_clock(self) -> None:
        """Mark the start of the loop: the first step's time is its compilation."""
        self._loop_start = time.perf_counter()

    def losses(self, step: int, metrics: dict[str, Any], state: TrainState,
               ckpt: checkpoints.Checkpoints) -> None:
        """Track the losses of update `step` and the `state` it made; log and print the
        losses every log_every steps.

        Between log steps nothing waits for the device: finiteness of the losses and of
        the state is tracked on it (the first non-finite step) and read by `check`,
        before every checkpoint and log line.
        """
        self._first_bad = self._track(self._first_bad, metrics["f"], metrics["g"], state, step)
        self._grad_evals = self._count(self._grad_evals, metrics["grad_evals"])
        if not (step == self.start + 1 or step % self.config.train.log_every == 0
                or step == self.num_steps):
            return
        self.check(ckpt)
        m = {k: float(v) for k, v in jax.device_get(metrics).items() if np.ndim(v) == 0}
        now = time.perf_counter()  # average since the first step (compile excluded)
        if self._first_done is None:
            m["compile_seconds"] = now - self._loop_start
        m.update(wall_seconds=self.wall_seconds(), total_grad_evals=self.total_grad_evals())
        self.writer.write(step, m)
        if self._first_done is None:
            self._first_done, speed = now, "first step"
        else:
            rate = (step - self.start - 1) / (now - self._first_done)
            speed = f"{rate:.3g} steps/s  ETA {progress.format_duration((self.num_steps - step) / rate)}"
        if self.is_main:
            print(f"step {step}/{self.num_steps}  f={m['f']:.4g}  g={m['g']:.4g}  |  {speed}",
                  flush=True)

    def reached(self, done: int) -> str | None:
        """The budget reached after `done` steps ("steps", "grad_evals", "seconds"), or
        None. Every process gets the same answer (process 0's clock decides seconds)."""
        b = self.budget
        which = None
        if b["steps"] and done >= b["steps"]:
            which = "steps"
        elif b["grad_evals"] and self.total_grad_evals() >= b["grad_evals"]:
            which = "grad_evals"
        elif b["seconds"]:
            jax.block_until_ready(self._grad_evals)  # the host's clock waits for the device
            if self.wall_seconds() >= b["seconds"]:
                which = "seconds"
        if b["seconds"] and jax.process_count() > 1:
            from jax.experimental import multihost_utils

            code = multihost_utils.broadcast_one_to_all(
                np.int32(BUDGETS.index(which) + 1 if which else 0))
            which = BUDGETS[int(code) - 1] if int(code) else None
        return which

    def save_progress(self, done: int) -> None:
        """progress.json's entry for the checkpoint of step `done` (process 0)."""
        total = self.total_grad_evals()
        if self.is_main:
            write_progress(self.workdir, done, self.wall_seconds(), total)

    def check(self, ckpt: checkpoints.Checkpoints) -> None:
        """Raise NonFiniteLoss if any step so far had a non-finite loss or left a
        non-finite state (waits for it)."""
        bad, what = (int(v) for v in jax.device_get(self._first_bad))
        if bad >= 0:
            raise NonFiniteLoss(
                f"{non_finite_found(bad, what)}; stopping. Last good checkpoint: "
                f"{ckpt.last_good(bad)}. Lower the learning rates or add a penalty, and start "
                "in a fresh --workdir.", step=bad)

    def after(self, done: int, state: TrainState) -> None:
        """Evaluation and sample grid of the parameters after `done` updates, when due."""
        t = self.config.train
        if self.hooks and done % t.eval_every == 0 and done > self.start:
            generate = lambda z: self._generate(state, z)  # noqa: E731
            results = {}
            with progress.step(f"Evaluating step {done}"):
                for hook in self.hooks:
                    results.update({f"eval/{k}": float(v)
                                    for k, v in hook(done, state, generate).items()})
            if results:
                self.writer.write(done, results)
        if (done % t.sample_every == 0 or done == self.num_steps) and (
                done > self.start or done == self.num_steps):
            self.grid_and_curves(done, state)

    def grid_and_curves(self, done: int, state: TrainState) -> None:
        """The sample grid of the parameters after `done` steps and the loss curves so far
        (once per step: a stop at a sampling step does not draw them twice)."""
        if done == self._drawn:
            return
        self._drawn = done
        # Every process runs the program (multi-process jit); process 0 writes.
        images = np.asarray(self._grid(state))
        if not self.is_main:
            return
        save_image_grid(images, os.path.join(self.workdir, "samples", f"step_{done:08d}.png"))
        save_loss_curves(read_metrics(self.workdir), os.path.join(self.workdir,
                                                                   "loss_curves.png"))

    def results(self, step: int, diverged: dict[str, Any] | None = None,
                stopped_by: str | None = None) -> None:
        """results.json: the final losses and the last evaluation, as metrics.jsonl holds
        them (so that a rerun of a run that finished without writing it can); `partial`,
        with the signal's name, when a signal stopped the run before its last step;
        `diverged`: how a seed of a K-seed run stopped (`train_seeds`), kept under that
        key."""
        if not self.is_main:
            return
        records = read_metrics(self.workdir)
        final_losses = next((r for r in reversed(records) if "f" in r), {})
        last_eval = next(({k: v for k, v in r.items() if k == "step" or k.startswith("eval/")}
                          for r in reversed(records) if any(k.startswith("eval/") for k in r)), {})
        write_json(os.path.join(self.workdir, "results.json"),
                   {"steps": step, "partial": stopped_by is not None, "stopped_by": stopped_by,
                    "final_losses": final_losses, "last_eval": last_eval,
                    "wall_seconds": final_losses.get("wall_seconds", 0.0),
                    "total_grad_evals": final_losses.get("total_grad_evals", 0),
                    "budget_reached": (None if self.budget_reached is None else
                                       dict(zip(("budget", "step"), self.budget_reached))),
                    **({} if diverged is None else {"diverged": diverged}),
                    "config": self.config.to_dict()}, indent=1, default=str)

    def close(self) -> None:
        self.writer.close()
