"""One run of the synthetic manifold experiments (Fedus et al. 2018, Secs. 4.1-4.3).

`run(config, workdir)` is the runner "synthetic": one seed, trained by the pure
functions of `synthetic_train` (`make_train(config)`: `train(key, lr) -> TrainResult`,
vmapped over keys and learning rates by the sweeps), with
`results.json`, metrics over time (`metrics.npz`) and a PNG of snapshots of data and
samples projected on the plane of the data line and the generator's offset (the paper's
Figs. 1, 3 and 4).

Randomness. A run's key is split into the data line, the generator, the discriminator,
an independent fresh generator (the "random init" reference line) and the training
steps; step t draws its batches from `fold_in(steps_key, t)`, and substep i of that step
(AltGD's i-th discriminator step, then the generator step) from `fold_in(., i)`, so that
every discriminator step sees fresh data and latents.

Optimizers. `config.optimizer.name` is any game optimizer; `lr` is traced. Optimizers
that take per-player optax transforms (simgd, altgd, extragradient, ...) get
`config.optimizer.transform` with `lr` for both players; those that take `lr_x, lr_y`
(cgd, acgd) get lr for both. `n_disc` is passed to optimizers that accept it (altgd:
n_disc discriminator steps per generator step, as in the paper); simultaneous
optimizers (simgd, cgd, acgd, ...) update both players once per step, as the ICR paper
trains ACGD, so for them one step is one joint update and n_disc does not apply. Compare
costs through the logged `grad_evals`.
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from gan_dynamics import progress, signals
from gan_dynamics.checks import check_value
from gan_dynamics.errors import UserError
from gan_dynamics.outputs import write_json
from gan_dynamics.runners.synthetic_train import (
    ERROR_METRICS,
    METRICS,
    Array,
    TrainResult,
    assemble,
    chunk_blocks,
    make_chunk_fns,
    make_optimizer,
    seed_key,
    uses_n_disc,
    validate,
)


def check_values(config: ml_collections.ConfigDict) -> None:
    """What `validate` leaves: penalty weight, DRAGAN scale, spreads, the seed's index
    (UserError)."""
    for key in ("penalty_weight", "mean_std", "direction_std", "parallel_offset"):
        value = config.get(key, 0.0)
        if isinstance(value, (str, bool)) or not value >= 0:
            raise UserError(f"config.{key}={value!r} must be a finite number >= 0.")
    scale = config.get("dragan", {}).get("scale", 0.0)
    if isinstance(scale, (str, bool)) or not scale >= 0:
        raise UserError(f"config.dragan.scale={scale!r} must be >= 0 (e.g. 0.5).")
    index = config.get("seed_index", 0)
    # The run's key is fold_in(key(seed), seed_index), and fold_in takes a uint32.
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**32:
        raise UserError(f"config.seed_index={index!r} must be an integer in [0, 2**32) (the "
                        "run of a sweep this run reproduces; 0: the first).")


def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "synthetic": schema, values and the optimizer at the configured lr."""
    del data  # the data are generated from the config
    try:
        config = resolve(config)
        validate(config)
        check_values(config)
        check_value("config.optimizer.", "lr", config.optimizer.lr)
        make_optimizer(config.optimizer, float(config.optimizer.lr))
    except (ValueError, TypeError) as err:
        raise err if isinstance(err, UserError) else UserError(str(err)) from err


























class Progress:
    """Progress lines of a long run: seed-steps per second, the current mean error and an
    ETA, one line per chunk (`update`), to stdout."""

    def __init__(self, label: str, total_steps: int, runs: int, done_steps: int = 0):
        self.label, self.total, self.runs = label, int(total_steps), int(runs)
        self.first_done = int(done_steps)
        self.started = time.perf_counter()

    def line(self, done_steps: int, errors_now: np.ndarray, metric: str = "param_error") -> str:
        elapsed = time.perf_counter() - self.started
        new = done_steps - self.first_done
        rate = self.runs * new / elapsed if elapsed > 0 and new else float("nan")
        eta = (self.total - done_steps) * self.runs / rate if new else float("nan")
        errors_now = np.asarray(errors_now, np.float64).ravel()
        finite = np.isfinite(errors_now)
        mean = errors_now[finite].mean() if finite.any() else float("nan")
        diverged = f", {np.sum(~finite)} non-finite" if not finite.all() else ""
        return (f"{self.label}step {done_steps}/{self.total} ({done_steps / self.total:.0%}) "
                f"{rate:,.0f} seed-steps/s  mean {metric} {mean:.4g}{diverged}  "
                f"ETA {format_seconds(eta)}")

    def update(self, done_steps: int, errors_now: np.ndarray) -> None:
        print(self.line(done_steps, errors_now), flush=True)


def format_seconds(seconds: float) -> str:
    """"1h02m", "3m05s", "42s" (or "?" when unknown)."""
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """An unlocked copy of `config` with `quick_settings` applied when `config.quick` is set."""
    resolved = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    if resolved.get("quick", False):
        resolved.update(resolved.quick_settings.to_dict())
    return resolved




def snapshot_plot(result: TrainResult, sigma: float, path: str, num_snapshots: int = 3,
                  num_points: int = 300, seed: int = 0) -> None:
    """Data (blue) and samples (red) at a few logged steps, projected on one plane.

    The plane passes through the data mean, spanned by the data direction and the part of
    the initial generator mean's offset orthogonal to it (the plane of the parallel-lines
    picture, Fedus et al. Fig. 1).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = jax.tree.map(np.asarray, result.data)
    gens = jax.tree.map(np.asarray, result.generator)
    steps = np.asarray(result.step)
    e1 = data.w[:, 0] / np.linalg.norm(data.w[:, 0])
    offset = gens.mu[0] - data.mu
    offset = offset - e1 * (e1 @ offset)
    if np.linalg.norm(offset) < 1e-8:
        offset = np.random.default_rng(seed).standard_normal(e1.shape)
        offset = offset - e1 * (e1 @ offset)
    e2 = offset / np.linalg.norm(offset)
    basis = np.stack([e1, e2], axis=1)
    rng = np.random.default_rng(seed)
    project = lambda x: (x - data.mu) @ basis  # noqa: E731
    data_xy = project(data.mu + sigma * rng.standard_normal((num_points, 1)) @ data.w.T)
    picks = np.unique(np.linspace(0, len(steps) - 1, num_snapshots).round().astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(4 * len(picks), 4), squeeze=False)
    for ax, i in zip(axes[0], picks):
        z = sigma * rng.standard_normal((num_points, gens.w.shape[-1]))
        fake_xy = project(gens.mu[i] + z @ gens.w[i].T)
        ax.scatter(*data_xy.T, s=4, c="tab:blue", label="data")
        ax.scatter(*fake_xy.T, s=4, c="tab:red", label="generator")
        ax.set_title(f"step {steps[i]}: squared parameter error "
                     f"{float(result.metrics['param_error'][i]):.3g}", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    axes[0][0].legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _finite_summary(metrics: dict[str, np.ndarray]) -> dict[str, Any]:
    final = {name: float(values[-1]) for name, values in metrics.items()}
    return {"final": final, "finite": bool(np.all(np.isfinite([final[m] for m in ERROR_METRICS])))}


def train_with_progress(config: ml_collections.ConfigDict, key: Array, lr: Array,
                        stop: signals.StopRequests | None = None) -> TrainResult:
    """`make_train(config, record_generator=True)(key, lr)` on the host, run as chunks of
    `chunk_blocks(config)` logging blocks (one compiled program for every chunk) with a
    progress line after each; when `stop` receives a signal, the chunks done so far."""
    fns = make_chunk_fns(config, chunk_blocks(config), record_generator=True)
    chunk_steps = fns.blocks * int(config.log_every)
    start = progress.compile("the run's start", jax.jit(fns.start), key, lr)
    carry, reference, first, generator = start(key, lr)
    advance = progress.compile(f"a chunk of {chunk_steps} steps", jax.jit(fns.advance),
                               carry, jnp.int32(0), lr)
    meter = Progress("", int(config.steps), 1)
    logged, generators = [], []
    for chunk in range(int(config.steps) // chunk_steps):
        if stop is not None:
            stop.step = (chunk + 1) * chunk_steps
        carry, block_logs, block_generators = advance(carry, jnp.int32(chunk), lr)
        logged.append(jax.device_get(block_logs))
        generators.append(jax.device_get(block_generators))
        meter.update((chunk + 1) * chunk_steps, logged[-1]["param_error"][-1])
        if stop is not None and stop.received is not None:
            break
    logged = {name: np.concatenate([part[name] for part in logged]) for name in METRICS}
    generators = jax.tree.map(lambda *parts: np.concatenate(parts), *generators)
    return assemble(jax.device_get(first), logged, jax.device_get(reference),
                    jax.device_get(carry.state.data), jax.device_get(generator), generators,
                    int(config.log_every))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Runner "synthetic": one seed; writes results.json, metrics.npz and snapshots.png.

    SIGTERM or Ctrl-C stops it after the current chunk: it writes the same files for the
    steps done, `results.json` marked `partial`, and raises `signals.Stopped` (a synthetic
    run keeps no checkpoint: the same command trains again from the start).
    """
    config = resolve(config)
    validate(config)
    key = seed_key(config.seed, config.seed_index)
    print(f"Training {config.model} with {config.optimizer.name} for {config.steps} steps.",
          flush=True)
    with signals.StopRequests("writing the results so far after {step}") as stop:
        result = train_with_progress(config, key, jnp.asarray(config.optimizer.lr, jnp.float32),
                                     stop)
    metrics = {name: np.asarray(v) for name, v in result.metrics.items()}
    done = int(np.asarray(result.step)[-1])
    stopped_by = signals.name(stop.received) if stop.received is not None else None
    summary = {
        "steps": done,
        "partial": stopped_by is not None,
        "stopped_by": stopped_by,
        "model": config.model,
        "optimizer": config.optimizer.name,
        "lr": float(config.optimizer.lr),
        "n_disc": int(config.optimizer.n_disc) if uses_n_disc(config.optimizer.name) else None,
        "init": config.init,
        "initial": {name: float(metrics[name][0]) for name in ERROR_METRICS},
        "reference_random_init": {name: float(v) for name, v in result.reference.items()},
        **_finite_summary(metrics),
        "config": config.to_dict(),
    }
    if not summary["finite"]:
        logging.warning("The run diverged: the final errors are not finite (try a smaller lr).")
    np.savez(os.path.join(workdir, "metrics.npz"), step=np.asarray(result.step), **metrics)
    write_json(os.path.join(workdir, "results.json"), summary, indent=2)
    snapshot_plot(result, float(config.sigma), os.path.join(workdir, "snapshots.png"),
                  seed=int(config.seed))
    print(json.dumps({k: summary[k] for k in ("model", "optimizer", "init", "initial",
                                              "reference_random_init", "final")}, indent=1))
    if stopped_by is not None:
        raise signals.Stopped(stop.received, (
            f"Stopped by {stopped_by} after step {done} of {config.steps}: wrote the results "
            f"so far to {workdir} (results.json marked partial, metrics.npz, snapshots.png). "
            "A synthetic run keeps no checkpoint: run the same command to train from the "
            "start."))
    return summary
