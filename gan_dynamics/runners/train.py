"""One image-GAN training run: the loop (runner "image").

The flagship workflow of Schaefer, Zheng & Anandkumar 2020 (ICR, Sec. 6): a DCGAN-like
pair on CIFAR-10 trained as a two-player game by any game optimizer (ACGD, CGD, SimGD,
AltGD with Adam, ...) with any GAN loss and penalty (docs/design.md Secs. 3, 5, 6, 10).

The config and its builders are in `train_config.py`, the state and jitted step in
`train_step.py`, checkpoints and the saved config in `gan_dynamics.checkpoints`, stop
requests in `gan_dynamics.signals`, the files a run writes in `gan_dynamics.outputs`
and `train_report.py`; this module is the loop (a K-seed run's, `train.num_seeds` > 1,
is `train_seeds`).

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
  `signals.Stopped` after the save and after writing what a finished run leaves (the
  sample grid of that step, the loss curves, `results.json` marked `"partial": true` with
  the signal's name), so a stopped run can be looked at before it is resumed (entry
  points exit 128 + signal number); a non-finite
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
least 512 px), `loss_curves.png` and, at the end or on a stop, `results.json`. Before the
loop the state's initialisation, the training step and the sample grid's generator are
compiled ahead of time with a message each (`gan_dynamics.progress`).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import TYPE_CHECKING, Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections

from gan_dynamics import checkpoints, parallel, progress, signals
from gan_dynamics.data import loader
from gan_dynamics.errors import UserError
from gan_dynamics.runners.train_config import EVAL_SECTIONS, Experiment, build, check, check_config  # noqa: F401  (the runner's check)
from gan_dynamics.runners.train_report import EvalHook, Reporter
from gan_dynamics.runners.train_step import TrainState, create_state, jit_train_step

if TYPE_CHECKING:
    from gan_dynamics.runners.seeds_step import SeedsState


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


def run(config: ml_collections.ConfigDict, workdir: str,
        eval_hooks: Sequence[EvalHook] = (), source: Any = None) -> TrainState | SeedsState:
    """Train (or resume) the run `config` describes in `workdir`; return the final state
    (a `TrainState`; with `train.num_seeds` > 1, `train_seeds.run`'s `SeedsState`).

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
        report.start_clock()  # compile_seconds: this session's compiles and first step
        if start < end:
            train_step = progress.compile(
                "the training step", jit_train_step(exp, mesh, abstract), abstract,
                jax.ShapeDtypeStruct((exp.n_sub, batch, *exp.image_shape), jnp.float32,
                                     sharding=parallel.batch_sharding(mesh, batch_axis=1)))
            report.compile_grid(abstract)
        inputs = loader.device_batches(loader.step_batches(
            exp.source, start, end, exp.n_sub, batch_size=batch, seed=config.seed,
            num_workers=config.data.num_workers), mesh, config.data.prefetch)
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
                # What a finished run leaves (marked partial unless this was the last
                # step): a look before resuming.
                report.grid_and_curves(done, state)
                complete = done == t.num_steps
                report.results(done, stopped_by=None if complete else signals.name(signum))
                raise signals.Stopped(signum, f"Stopped by {signals.name(signum)}: saved "
                                      f"checkpoint step {done} in {ckpt.directory} and the "
                                      "results so far (results.json"
                                      + ("" if complete else ", marked partial")
                                      + "; loss_curves.png; samples/); run the same command "
                                      "again to resume.")
            if budget:
                report.budget_reached = (budget, done)
                if report.is_main:
                    print(f"The {budget} budget ({report.budget[budget]}) was reached at "
                          f"step {done}: saved checkpoint step {done}; stopping.", flush=True)
                break
        # Also when no step was left: a run that finished but stopped before reporting.
        report.results(int(state.step))
    return state
