"""One image-GAN training run: the loop (runner "image").

The flagship workflow of Schaefer, Zheng & Anandkumar 2020 (ICR, Sec. 6): a DCGAN-like
pair on CIFAR-10 trained as a two-player game by any game optimizer (ACGD, CGD, SimGD,
AltGD with Adam, ...) with any GAN loss and penalty (docs/design.md Secs. 3, 5, 6, 10).

The config and its builders are in `train_config.py`, the state and jitted step in
`train_step.py`, checkpoints and the saved config in `gan_dynamics.checkpoints`, stop
requests in `gan_dynamics.signals`, the files a run writes in `gan_dynamics.outputs`;
this module is the loop.

- The batches of step s are a pure function of seed and step (`data.images.batches`),
  read ahead by `data.loader` (a grain dataset over step numbers, worker processes
  optional) and sent to the devices a few steps ahead, so data order does not depend on
  where a run was resumed or on the number of processes.
- Nothing waits for the device between log steps: the first non-finite step (a NaN or
  inf loss, or a state with a NaN or inf leaf after finite losses: an infinite gradient,
  a solver breakdown) is tracked on the device and read before every log line and every
  checkpoint, so no checkpoint holds a non-finite state or one that followed a
  non-finite loss.
  Checkpoints (Orbax) are taken every N steps and when SIGTERM/SIGINT arrives (all
  processes agree on the step); a run restarts from the newest readable one by itself,
  after checking that its config (`DIR/config.json`) describes the same trajectory.
- Numbering (docs/design.md Sec. 10): step k is the k-th generator update. The losses
  logged at k were computed during update k (at the parameters after k - 1 updates);
  evaluations, sample grids and checkpoints at k see the parameters after k updates.
  The console, metrics.jsonl, TensorBoard and every file name use this k. Within step k
  the evaluation runs before the checkpoint is saved, so on resume from checkpoint c the
  rows of steps > c are dropped (`outputs.MetricWriter`) and nothing at c is redone.
- Exits: a finished run writes `results.json` (from metrics.jsonl: also a rerun with no
  step left, and a run stopped by a signal during its last step); a signal raises
  `signals.Stopped` after the save (entry points exit 128 + signal number); a non-finite
  loss or state raises `errors.NonFiniteLoss` naming the last good checkpoint. The
  metric writer and the checkpoint manager are closed on every exit (async saves
  finished).
- Cost and time: every logged row carries `wall_seconds` (since the run started, summed
  over its sessions, each session's compilation and first step excluded and logged as
  `compile_seconds` in its first row) and `total_grad_evals` (cumulative gradient
  evaluations, `info["grad_evals"]` summed on the device). Both are saved with every
  checkpoint (`progress.json`), so a resumed run continues them. `train.budget` stops the
  run cleanly (checkpoint, results.json, exit 0) at the first of its steps, gradient
  evaluations or seconds reached; a rerun with the same budget trains no further. A
  grad_evals or seconds budget waits for the device at every step to read them.

Outputs in the workdir: `config.json`, `checkpoints/`, `progress.json` (wall seconds and
gradient evaluations at each checkpoint), `metrics.jsonl` (one JSON object per logged
step), `tensorboard/` (event files, written without TensorFlow via
tensorboardX), `samples/step_XXXXXXXX.png` (a grid from fixed latents, upscaled to at
least 512 px), `loss_curves.png` and, at the end, `results.json`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_dynamics import checkpoints, parallel, signals
from gan_dynamics.data import loader
from gan_dynamics.errors import NonFiniteLoss, UserError
from gan_dynamics.outputs import (
    MetricWriter,
    read_metrics,
    save_image_grid,
    save_loss_curves,
    write_json,
)
from gan_dynamics.runners.train_config import EVAL_SECTIONS, Experiment, build, check, check_config  # noqa: F401  (the runner's check)
from gan_dynamics.runners.train_step import TrainState, create_state, generate_fn, jit_train_step

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


def configured_eval_hooks(config: ml_collections.ConfigDict, exp: Experiment) -> list[EvalHook]:
    """The hooks of the evaluation sections the config has (`train_config.EVAL_SECTIONS`);
    a package is imported only when its section is present."""
    hooks = []
    for section, module in EVAL_SECTIONS.items():
        if section in config:
            hooks.extend(importlib.import_module(module).make_eval_hooks(config, exp))
    return hooks


def _mesh(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
    """The data mesh of `config.parallel`; a UserError if the devices do not fit."""
    try:
        mesh = parallel.make_mesh(config.parallel.num_devices)
        parallel.check_batch_size(config.data.batch_size, mesh)
    except ValueError as err:
        raise UserError(str(err)) from err
    return mesh


def _name_last_checkpoint(ckpt: checkpoints.Checkpoints):
    """An exit callback: after an unexpected exception (or a second Ctrl-C), say which
    checkpoint a rerun will resume from (the messages of the expected exits say it)."""

    def callback(exc_type, exc, tb) -> bool:
        if exc is not None and not isinstance(exc, (signals.Stopped, UserError)):
            print(f"The run stopped ({exc_type.__name__}); the last good checkpoint is "
                  f"{ckpt.last_good(2**62)}; run the same command to resume from it.",
                  file=sys.stderr, flush=True)
        return False

    return callback


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


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


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
            self._first_done, speed = now, "compiled and ran the first step"
        else:
            rate = (step - self.start - 1) / (now - self._first_done)
            speed = f"{rate:.3g} steps/s  ETA {_format_duration((self.num_steps - step) / rate)}"
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
            for hook in self.hooks:
                results.update({f"eval/{k}": float(v) for k, v in hook(done, state, generate).items()})
            if results:
                self.writer.write(done, results)
        if (done % t.sample_every == 0 or done == self.num_steps) and (
                done > self.start or done == self.num_steps):
            # Every process runs the program (multi-process jit); process 0 writes.
            images = np.asarray(self._generate(state, self.sample_z))
            if not self.is_main:
                return
            save_image_grid(images, os.path.join(self.workdir, "samples", f"step_{done:08d}.png"))
            save_loss_curves(read_metrics(self.workdir), os.path.join(self.workdir,
                                                                       "loss_curves.png"))

    def results(self, step: int, diverged: dict[str, Any] | None = None) -> None:
        """results.json: the final losses and the last evaluation, as metrics.jsonl holds
        them (so that a rerun of a run that finished without writing it can); `diverged`:
        how a seed of a K-seed run stopped (`train_seeds`), kept under that key."""
        if not self.is_main:
            return
        records = read_metrics(self.workdir)
        final_losses = next((r for r in reversed(records) if "f" in r), {})
        last_eval = next(({k: v for k, v in r.items() if k == "step" or k.startswith("eval/")}
                          for r in reversed(records) if any(k.startswith("eval/") for k in r)), {})
        write_json(os.path.join(self.workdir, "results.json"),
                   {"steps": step, "final_losses": final_losses, "last_eval": last_eval,
                    "wall_seconds": final_losses.get("wall_seconds", 0.0),
                    "total_grad_evals": final_losses.get("total_grad_evals", 0),
                    "budget_reached": (None if self.budget_reached is None else
                                       dict(zip(("budget", "step"), self.budget_reached))),
                    **({} if diverged is None else {"diverged": diverged}),
                    "config": self.config.to_dict()}, indent=1, default=str)

    def close(self) -> None:
        self.writer.close()


def run(config: ml_collections.ConfigDict, workdir: str,
        eval_hooks: Sequence[EvalHook] = (), source: Any = None) -> TrainState:
    """Train (or resume) the run `config` describes in `workdir`; return the final state.

    `eval_hooks` are called every `train.eval_every` steps as
    `hook(step, state, generate) -> {name: value}`, with `generate(z) -> images`, after
    the hooks of the config's evaluation sections; results are logged under `eval/` at
    `step`. `source` replaces the dataset of `config.data`.
    """
    check_config(config)
    if config.train.get("num_seeds", 1) > 1:
        from gan_dynamics.runners import train_seeds

        return train_seeds.run(config, workdir, eval_hooks, source)
    parallel.initialize_distributed(config.parallel)
    exp = build(config, source)  # data, models, optimizer: every user error before writing
    mesh = _mesh(config)
    checkpoints.check_resume(workdir, config)
    hooks = [*configured_eval_hooks(config, exp), *eval_hooks]
    t, batch = config.train, int(config.data.batch_size)
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(signals.StopRequests("saving a checkpoint at the next step boundary"))
        state, abstract = create_state(exp, config.seed, mesh)
        ckpt = stack.enter_context(contextlib.closing(checkpoints.Checkpoints(workdir, t.keep_checkpoints)))
        stack.push(_name_last_checkpoint(ckpt))
        restored = ckpt.restore_latest(abstract)
        state = state if restored is None else restored
        start = int(state.step)
        checkpoints.write_config(workdir, config)
        report = stack.enter_context(contextlib.closing(Reporter(workdir, config, exp, start, hooks)))
        train_step = jit_train_step(exp, mesh, abstract)
        if report.is_main:
            print(("Resuming from checkpoint step " if restored is not None else "Training from step ")
                  + f"{start} to {t.num_steps} on {mesh.devices.size} device(s); workdir {workdir}",
                  flush=True)
        already = report.reached(start) if start else None
        if already:
            report.budget_reached = (already, start)
            if report.is_main:
                print(f"The {already} budget was reached by step {start}; nothing to train.",
                      flush=True)
        end = start if already else t.num_steps
        inputs = loader.device_batches(loader.step_batches(
            exp.source, start, end, exp.n_sub, batch_size=batch, seed=config.seed,
            num_workers=config.data.num_workers), mesh, config.data.prefetch)
        report.start_clock()
        for step, batches in zip(range(start, end), inputs):
            stop.step = done = step + 1
            state, metrics = train_step(state, batches)
            report.losses(done, metrics, state, ckpt)
            report.after(done, state)
            signum = stop.agreed(step)  # the same answer in every process
            budget = report.reached(done)
            if done % t.checkpoint_every == 0 or done == t.num_steps or signum or budget:
                report.check(ckpt)  # never save a non-finite state, nor one that followed
                ckpt.save(done, state)  # a non-finite loss
                report.save_progress(done)
            if signum:
                ckpt.manager.wait_until_finished()
                if done == t.num_steps:  # the run is complete: report it as well
                    report.results(done)
                raise signals.Stopped(signum, f"Stopped by {signals.name(signum)}: saved "
                                      f"checkpoint step {done} in {ckpt.directory}; run the "
                                      "same command again to resume.")
            if budget:
                report.budget_reached = (budget, done)
                if report.is_main:
                    print(f"The {budget} budget ({report.budget[budget]}) was reached at "
                          f"step {done}: saved checkpoint step {done}; stopping.", flush=True)
                break
        # Also when no step was left: a run that finished but stopped before reporting.
        report.results(int(state.step))
    return state
