"""Many-seed sweeps of the synthetic manifold experiments (Fedus et al. 2018, Sec. 4.4).

Fig. 10 sweeps the learning rate at fixed d, Fig. 11 the dimension d at fixed learning
rate, each point averaged over 1000 seeds. Here one (model, optimizer) cell is one
compiled program: `jit(vmap_seed(vmap_lr(train)))` with `train` from
`synthetic_run.make_train` (a scan over all steps) and the learning rate traced, so a
whole lr grid compiles once; a dimension changes shapes, so the d sweep compiles one
program per d and vmaps over seeds only. The seed axis is sharded over every device of a
one-axis mesh (`NamedSharding`, axis "seeds"); seeds run in chunks of `chunk_seeds` so
that memory stays bounded whatever the number of seeds. Run i uses
`synthetic_run.seed_key(config.seed, i)`, so any cell of a sweep equals the single run
with `seed_index = i`.

`run(config, workdir)` is the runner "sweep". Per cell it writes
`<model>__<optimizer>.npz` with `values` (seed, lr|d, time, metric) and `reference`
(seed, lr|d, metric: errors of a fresh random generator), and
`<model>__<optimizer>.json` naming the axes and their coordinates; `summary.json` holds,
per cell and sweep value, the final errors' mean with a 95% bootstrap interval, median
and the fraction of diverged (non-finite) runs. `experiments/plots.py` draws them.
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_dynamics.runners import synthetic_run

SEED_AXIS = "seeds"
SWEEPS = ("lr", "dim")


def seed_mesh(num_devices: int = 0) -> Mesh:
    """A one-axis mesh named "seeds" over the first `num_devices` devices (0: all)."""
    available = jax.device_count()
    n = num_devices or available
    if not 1 <= n <= available:
        raise ValueError(f"num_devices={num_devices} but {available} devices are visible; "
                         "use 0 for all of them.")
    # Auto axes: XLA propagates the seed sharding through the vmapped program. (Explicit
    # axes, make_mesh's default, make every scatter inside the solvers name its sharding.)
    return jax.make_mesh((n,), (SEED_AXIS,), devices=jax.devices()[:n],
                         axis_types=(jax.sharding.AxisType.Auto,))


def compile_sweep(train: Callable, mesh: Mesh, over_lr: bool) -> Callable:
    """`(keys (S,), lrs (L,)) -> results (S, L, ...)` (or `(keys, lr) -> (S, ...)`), jitted.

    Keys and results are sharded over the mesh's seed axis; learning rates are replicated.
    """
    per_seed = jax.vmap(train, in_axes=(None, 0)) if over_lr else train
    batched = jax.vmap(per_seed, in_axes=(0, None))
    seeds = NamedSharding(mesh, P(SEED_AXIS))
    return jax.jit(batched, in_shardings=(seeds, NamedSharding(mesh, P())),
                   out_shardings=seeds)


def run_seeds(sweep_fn: Callable, base_seed: int, num_seeds: int, lrs: Any, mesh: Mesh,
              chunk_seeds: int) -> synthetic_run.TrainResult:
    """Runs 0 .. num_seeds-1 in chunks of `chunk_seeds`; results on the host, seed axis first."""
    devices = mesh.shape[SEED_AXIS]
    chunk = max(devices, (min(chunk_seeds, num_seeds) // devices) * devices)
    chunks = []
    for start in range(0, num_seeds, chunk):
        # The last chunk is padded to the compiled size (one program) and trimmed after.
        indices = jnp.arange(start, start + chunk)
        keys = jax.vmap(lambda i: synthetic_run.seed_key(base_seed, i))(indices)
        keys = jax.device_put(keys, NamedSharding(mesh, P(SEED_AXIS)))
        out = jax.device_get(sweep_fn(keys, lrs))
        chunks.append(jax.tree.map(lambda a: a[: num_seeds - start], out))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *chunks)


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, num_resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite values and its percentile bootstrap interval (NaN if none)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (num_resamples, values.size)).mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Summary of final errors over seeds: mean, 95% bootstrap CI, median, diverged fraction."""
    mean, low, high = bootstrap_mean_ci(values)
    finite = np.isfinite(values)
    return {"mean": mean, "ci_low": low, "ci_high": high,
            "median": float(np.median(values[finite])) if finite.any() else float("nan"),
            "std": float(np.std(values[finite])) if finite.any() else float("nan"),
            "nonfinite_fraction": float(1 - finite.mean())}


def cell_config(config: ml_collections.ConfigDict, model: str,
                optimizer: str) -> ml_collections.ConfigDict:
    """The single-run config of one (model, optimizer) cell of a sweep config."""
    if optimizer not in config.optimizers:
        raise ValueError(f"config.run_optimizers names {optimizer!r} but config.optimizers "
                         f"only sets {sorted(config.optimizers)}.")
    cell = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    cell.model = model
    settings = config.optimizers[optimizer].to_dict()
    cell.optimizer = ml_collections.ConfigDict(dict(
        name=optimizer, lr=settings.get("lr", 0.0), n_disc=settings.get("n_disc", 1),
        transform=settings.get("transform", {}), options=settings.get("options", {})))
    return cell


def sweep_cell(config: ml_collections.ConfigDict, model: str, optimizer: str, mesh: Mesh
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run one cell; returns values (seed, sweep, time, metric), reference (seed, sweep,
    metric) and the axes' names and coordinates."""
    cell = cell_config(config, model, optimizer)
    metric_names = list(synthetic_run.METRICS)
    stack_metrics = lambda result: np.stack([result.metrics[m] for m in metric_names], -1)
    stack_reference = lambda result: np.stack(
        [result.reference[m] for m in synthetic_run.ERROR_METRICS], -1)
    if config.sweep == "lr":
        lrs = tuple(float(lr) for lr in config.optimizers[optimizer].lrs)
        fn = compile_sweep(synthetic_run.make_train(cell), mesh, over_lr=True)
        result = run_seeds(fn, config.seed, config.num_seeds, jnp.asarray(lrs, jnp.float32),
                           mesh, config.chunk_seeds)
        values, reference, sweep_coords, steps = (stack_metrics(result),
                                                  stack_reference(result), list(lrs),
                                                  result.step[0, 0])
    else:
        values, reference = [], []
        lr = jnp.asarray(cell.optimizer.lr, jnp.float32)
        for dim in config.dims:
            cell.dim = int(dim)
            fn = compile_sweep(synthetic_run.make_train(cell), mesh, over_lr=False)
            result = run_seeds(fn, config.seed, config.num_seeds, lr, mesh, config.chunk_seeds)
            values.append(stack_metrics(result))
            reference.append(stack_reference(result))
        values, reference = np.stack(values, 1), np.stack(reference, 1)
        sweep_coords, steps = [int(d) for d in config.dims], result.step[0]
    axes = {
        "values": ["seed", config.sweep, "time", "metric"],
        "reference": ["seed", config.sweep, "metric"],
        "coords": {"seed": list(range(config.num_seeds)), config.sweep: sweep_coords,
                   "time": [int(s) for s in steps], "metric": metric_names,
                   "reference_metric": list(synthetic_run.ERROR_METRICS)},
        "model": model, "optimizer": optimizer,
        "n_disc": (int(cell.optimizer.n_disc) if synthetic_run.uses_n_disc(optimizer)
                   else None),
    }
    return values, reference, axes


def cell_summary(values: np.ndarray, reference: np.ndarray, axes: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """Per sweep value: final-error summaries and the random-init reference's."""
    metric_names = axes["coords"]["metric"]
    rows = []
    for j, coord in enumerate(axes["coords"][axes["values"][1]]):
        row = {axes["values"][1]: coord}
        for k, name in enumerate(axes["coords"]["reference_metric"]):
            row[name] = summarise(values[:, j, -1, metric_names.index(name)])
            row[f"reference_{name}"] = summarise(reference[:, j, k])
        rows.append(row)
    return rows


def _names(value: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)


def validate(config: ml_collections.ConfigDict) -> None:
    """Fail before compiling anything on a sweep config that cannot run."""
    if config.sweep not in SWEEPS:
        raise ValueError(f"config.sweep={config.sweep!r}; choose one of {SWEEPS}.")
    if config.num_seeds < 1 or config.chunk_seeds < 1:
        raise ValueError("config.num_seeds and config.chunk_seeds must be >= 1.")
    for model in _names(config.models):
        for optimizer in _names(config.run_optimizers):
            cell = cell_config(config, model, optimizer)
            if config.sweep == "lr" and not len(config.optimizers[optimizer].get("lrs", ())):
                raise ValueError(f"config.optimizers.{optimizer}.lrs is empty.")
            synthetic_run.validate(cell)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Runner "sweep": every (model, optimizer) cell; arrays, axes and summary.json."""
    config = synthetic_run.resolve(config)
    validate(config)
    mesh = seed_mesh(config.get("num_devices", 0))
    summary = {"sweep": config.sweep, "num_seeds": config.num_seeds, "steps": config.steps,
               "devices": mesh.shape[SEED_AXIS], "cells": {}, "config": config.to_dict()}
    for model in _names(config.models):
        for optimizer in _names(config.run_optimizers):
            start = time.time()
            values, reference, axes = sweep_cell(config, model, optimizer, mesh)
            name = f"{model}__{optimizer}"
            np.savez(os.path.join(workdir, f"{name}.npz"), values=values, reference=reference)
            with open(os.path.join(workdir, f"{name}.json"), "w") as f:
                json.dump(axes, f)
            seconds = time.time() - start
            summary["cells"][name] = {"model": model, "optimizer": optimizer,
                                      "n_disc": axes["n_disc"], "seconds": seconds,
                                      "rows": cell_summary(values, reference, axes)}
            print(f"{name}: {seconds:.0f} s", flush=True)
            print(format_cell(summary["cells"][name], config.sweep), flush=True)
            with open(os.path.join(workdir, "summary.json"), "w") as f:
                json.dump(summary, f, indent=1)
    return summary


def format_cell(cell: dict[str, Any], sweep: str, metric: str = "param_error") -> str:
    """One line per sweep value: mean [95% CI] of the final error, and the reference."""
    lines = [f"{cell['model']} / {cell['optimizer']} ({cell['seconds']:.0f} s)"]
    for row in cell["rows"]:
        s, r = row[metric], row[f"reference_{metric}"]
        lines.append(f"  {sweep}={row[sweep]:<8g} {metric} {s['mean']:.3g} "
                     f"[{s['ci_low']:.3g}, {s['ci_high']:.3g}] median {s['median']:.3g} "
                     f"diverged {s['nonfinite_fraction']:.0%}   random init {r['mean']:.3g}")
    return "\n".join(lines)

