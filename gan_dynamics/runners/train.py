"""One image-GAN training run: the loop, checkpoints and signals (runner "image").

The flagship workflow of Schaefer, Zheng & Anandkumar 2020 (ICR, Sec. 6): a DCGAN-like
pair on CIFAR-10 trained as a two-player game by any game optimizer (ACGD, CGD, SimGD,
AltGD with Adam, ...) with any GAN loss and penalty (DESIGN.md Secs. 3, 5, 6, 10).

The config and its builders are in `train_config.py`, the state and jitted step in
`train_step.py`, the files a run writes in `gan_dynamics.outputs`; this module is the loop.

- The loop reads the batches of step s by index (`data.images.device_batches`: a pure
  function of seed and step), so data order does not depend on where a run was resumed; checkpoints (Orbax) are taken every N steps
  and when SIGTERM/SIGINT arrives, and a run restarts from the latest one by itself.

Outputs in the workdir: `checkpoints/`, `metrics.jsonl` (one JSON object per logged
step), `tensorboard/` (event files, written without TensorFlow via tensorboardX),
`samples/step_XXXXXXXX.png` (a grid from fixed latents) and `loss_curves.png`.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gan_dynamics import parallel
from gan_dynamics.outputs import MetricWriter, read_metrics, save_image_grid, save_loss_curves
from gan_dynamics.runners.train_config import Experiment, build, check_config
from gan_dynamics.runners.train_step import TrainState, create_state, generate_fn, jit_train_step

EvalHook = Callable[[int, TrainState, Callable[[jax.Array], jax.Array]], dict[str, float]]


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _StopSignal:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# fold_in constant for the fixed latents of the sample grids (independent of training keys).
_SAMPLE_LATENTS = 0x5A4D


def step_batches(exp: Experiment, step: int, batch_size: int, seed: int,
                 mesh: jax.sharding.Mesh) -> jax.Array:
    """The (n_sub, batch_size, H, W, C) real batches of generator step `step`, sharded."""
    from gan_dynamics.data import images

    return images.device_batches(exp.source, step, exp.n_sub, batch_size=batch_size,
                                 seed=seed, mesh=mesh)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}


def _last_good_checkpoint(manager: ocp.CheckpointManager, bad_step: int, directory: str) -> str:
    # A checkpoint labelled c holds the parameters whose losses were evaluated at step c.
    good = [c for c in manager.all_steps() if c < bad_step]
    if not good:
        return "none (no checkpoint precedes it; restart from scratch)"
    return f"step {max(good)} in {directory}"


def run(config: ml_collections.ConfigDict, workdir: str,
        eval_hooks: Sequence[EvalHook] = (), source: Any = None) -> TrainState:
    """Train (or resume) the run `config` describes in `workdir`; return the final state.

    `eval_hooks` are called every `train.eval_every` steps as
    `hook(step, state, generate) -> {name: value}`, with `generate(z) -> images`; their
    results are logged under `eval/`. `source` replaces the dataset of `config.data`.
    """
    check_config(config)
    parallel.initialize_distributed(config.parallel)
    exp = build(config, source)
    mesh = parallel.make_mesh(config.parallel.num_devices)
    parallel.check_batch_size(config.data.batch_size, mesh)
    t = config.train
    num_steps, batch_size = int(t.num_steps), int(config.data.batch_size)

    state, abstract = create_state(exp, config.seed, mesh)
    train_step = jit_train_step(exp, mesh, abstract)

    ckpt_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
    manager = ocp.CheckpointManager(
        ckpt_dir,
        options=ocp.CheckpointManagerOptions(max_to_keep=int(t.keep_checkpoints), create=True),
    )
    if manager.latest_step() is not None:
        try:
            state = manager.restore(manager.latest_step(),
                                    args=ocp.args.StandardRestore(abstract))
        except ValueError as err:
            raise ValueError(
                f"The checkpoint at step {manager.latest_step()} in {ckpt_dir} does not fit "
                "this config (model, optimizer or loss changed?). Resume with the config "
                f"that wrote it, or use a fresh --workdir. Orbax said: {err}"
            ) from err
        print(f"Resuming from checkpoint step {int(state.step)} in {ckpt_dir}", flush=True)
    start = int(state.step)

    is_main = jax.process_index() == 0
    writer = MetricWriter(workdir, start, enabled=is_main)
    sample_z = jax.random.normal(
        jax.random.fold_in(jax.random.key(config.seed), _SAMPLE_LATENTS),
        (int(t.num_samples), exp.z_dim),
    )
    generate = jax.jit(lambda s, z: generate_fn(exp, s)(z))

    def save_outputs(state, step):
        if not is_main:
            return
        images = np.asarray(generate(state, sample_z))
        save_image_grid(images, os.path.join(workdir, "samples", f"step_{step:08d}.png"))
        save_loss_curves(read_metrics(workdir), os.path.join(workdir, "loss_curves.png"))

    print(f"Training {num_steps} steps from step {start} on {mesh.devices.size} device(s); "
          f"workdir {workdir}", flush=True)
    if start >= num_steps:
        save_outputs(state, start)
    with _StopSignal() as stop:
        batches = step_batches(exp, start, batch_size, config.seed, mesh)
        for step in range(start, num_steps):
            state, metrics = train_step(state, batches)
            done = step + 1
            if done < num_steps:  # read the next batch while the device works
                batches = step_batches(exp, done, batch_size, config.seed, mesh)
            metrics = _scalars(jax.device_get(metrics))
            if not (math.isfinite(metrics["f"]) and math.isfinite(metrics["g"])):
                manager.wait_until_finished()
                raise FloatingPointError(
                    f"Non-finite loss at step {step} (f={metrics['f']}, g={metrics['g']}); "
                    f"stopping. Last good checkpoint: "
                    f"{_last_good_checkpoint(manager, step, ckpt_dir)}. Lower the learning "
                    "rates or add a penalty, and start in a fresh workdir."
                )
            if step == start or done % t.log_every == 0 or done == num_steps:
                writer.write(step, metrics)
                # Average since the first step (which includes compilation), outputs included.
                now = time.perf_counter()
                if step == start:
                    first_done = now
                    speed = "compiled and ran the first step"
                else:
                    rate = (step - start) / (now - first_done)
                    speed = (f"{rate:.3g} steps/s  ETA "
                             f"{_format_duration((num_steps - done) / rate)}")
                print(f"step {done}/{num_steps}  f={metrics['f']:.4g}  g={metrics['g']:.4g}  "
                      f"|  {speed}", flush=True)
            if eval_hooks and done % t.eval_every == 0:
                results = {}
                for hook in eval_hooks:
                    results.update({f"eval/{k}": float(v) for k, v in
                                    hook(done, state, lambda z: generate(state, z)).items()})
                if results:
                    writer.write(step, results)
            if done % t.sample_every == 0 or done == num_steps:
                save_outputs(state, done)
            if done % t.checkpoint_every == 0 or done == num_steps or stop.received:
                manager.save(done, args=ocp.args.StandardSave(state))
            if stop.received:
                manager.wait_until_finished()
                print(f"Signal {stop.received} received: saved checkpoint step {done} in "
                      f"{ckpt_dir}; run the same command again to resume.", flush=True)
                break
    manager.wait_until_finished()
    manager.close()
    writer.close()
    return state
