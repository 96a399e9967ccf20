"""Runner "mix_gaussians": GAN against MIX+GAN on the 2-D mixtures of Gaussians, many seeds.

The ring of 8 and the grid of 25 Gaussians (`data.gaussian_mixtures`) are the
mode-collapse benchmarks of Metz et al. 2017 and Srivastava et al. 2017. Each cell of the
experiment is a (model, optimizer) pair: model "gan" is one MLP generator and one MLP
discriminator, "mix" a MIX+GAN mixture of T of each (Arora et al. 2017, Sec. 5;
`models.mix`), trained on the exact mixture payoff with the entropy regulariser. The
plain GAN is run as the one-component mixture with no regulariser, which is the plain
model bit for bit (tests/test_mix.py), so both go through one code path.

A cell is one compiled program, `jit(vmap(train))` over the seeds' keys (chunks of
`chunk_seeds`), `train` a `lax.scan` over all steps. Seed i uses `fold_in(key(seed), i)`
(the same key for every cell: the same data stream and, for equal shapes, the same
initial networks). Every `eval_every` steps a run draws `eval_samples` samples and
scores them: modes covered and the high-quality fraction (`gaussian_mixtures.
mode_metrics`). At the end it also estimates the neural-net distance between the
generator's samples and fresh data (`metrics.nn_distance`).

Writes `results.json` (per cell: final metrics' mean, 95% bootstrap interval and per-seed
values; the curves' means; its components and optimizer), `curves.npz`, and
`mix_gaussians.png` (samples of seed 0 per cell and the modes-covered curves). Commands
that run subsets (`cells`) in one workdir add up: the cells earlier commands finished are
kept (a cell run again replaces its entry), provided they share this command's settings
(all but `cells`, `chunk_seeds`, `models` and `optimizers`); otherwise the command is
refused before anything runs.
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

from gan_dynamics import objectives
from gan_dynamics.checkpoints import flatten_config
from gan_dynamics.data import gaussian_mixtures as gm
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import nn_distance as nnd
from gan_dynamics.models import mix
from gan_dynamics.models.mlp import MLPDiscriminator, MLPGenerator
from gan_dynamics.optimizers import create as create_optimizer
from gan_dynamics.outputs import replace_atomically, write_json
from gan_dynamics.runners.summaries import bootstrap_mean_ci

Array = jax.Array
METRICS = ("modes", "high_quality", "mode_kl")


def validate(config: ml_collections.ConfigDict) -> None:
    """Fail early, with the fix, on a bad config."""
    gm.get_mixture(config.mixture)
    objectives.get_loss(config.loss)
    for name, components in config.models.items():
        if int(components) < 1:
            raise ValueError(f"config.models.{name}={components}: components must be >= 1.")
    if not config.optimizers:
        raise ValueError("config.optimizers is empty: name at least one optimizer config.")
    for key in ("steps", "batch", "eval_every", "eval_samples", "num_seeds", "chunk_seeds"):
        if int(config[key]) <= 0:
            raise ValueError(f"config.{key}={config[key]} must be positive.")
    if config.steps % config.eval_every:
        raise ValueError(f"config.steps={config.steps} must be a multiple of "
                         f"config.eval_every={config.eval_every}.")
    cells = config.get("cells", "")
    if not isinstance(cells, str):
        raise ValueError(f"config.cells={cells!r} must be comma-separated cell names "
                         "(model__optimizer), or \"\" for all.")
    names = [f"{model}__{optimizer}" for model in config.models for optimizer in config.optimizers]
    unknown = [c for c in cells.split(",") if c and c not in names]
    if unknown:
        raise ValueError(f"config.cells names {unknown}, which are not cells of this config; "
                         f"choose from {names} (\"\": all).")
    nnd.check(_nn_config(config))


def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "mix_gaussians": the config's values, without compiling (UserError)."""
    del data  # the mixtures are generated from the config
    try:
        validate(resolve(config))
    except (ValueError, TypeError) as err:
        raise err if isinstance(err, UserError) else UserError(str(err)) from err


def _nn_config(config: ml_collections.ConfigDict) -> nnd.NNDistanceConfig:
    n = config.nn_distance
    return nnd.NNDistanceConfig(measure=n.measure, critic=n.critic, hidden=tuple(n.hidden),
                                clip=float(n.clip), steps=int(n.steps), lr=float(n.lr),
                                batch=int(n.batch), held_out=float(n.held_out))


def _plain(section: Any) -> dict[str, Any]:
    return section.to_dict() if isinstance(section, ml_collections.ConfigDict) else dict(section)


def make_train(config: ml_collections.ConfigDict, components: int,
               optimizer_config: dict[str, Any]) -> Callable[[Array], dict[str, Array]]:
    """`train(key) -> results` for one seed of one cell: pure, jit/vmap it freely.

    Results: `curve_<metric>` (evaluations,) at steps eval_every, 2 eval_every, ...,
    the final metrics, `nn_distance` (final samples against fresh data) and
    `samples` (the final evaluation's samples).
    """
    mixture = gm.get_mixture(config.mixture)
    gen = MLPGenerator(z_dim=int(config.z_dim), hidden=tuple(config.gen_hidden), out_dim=2)
    disc = MLPDiscriminator(hidden=tuple(config.disc_hidden))
    generate, discriminate = objectives.linen_apply(gen), objectives.linen_apply(disc)
    entropy_weight = float(config.entropy_weight) if components > 1 else 0.0
    optimizer = create_optimizer(**optimizer_config)
    batch, z_dim = int(config.batch), int(config.z_dim)
    evals = int(config.steps) // int(config.eval_every)
    n_eval = int(config.eval_samples)
    nn_config = _nn_config(config)

    def game_at(key):
        def batch_at(i):
            k_real, k_z = jax.random.split(jax.random.fold_in(key, i))
            return gm.sample(k_real, mixture, batch), jax.random.normal(k_z, (batch, z_dim)), None

        return mix.make_mix_gan_game(config.loss, generate, discriminate, *batch_at(0),
                                     entropy_weight=entropy_weight, substep_batch=batch_at)

    def samples_of(params_x, key):
        z = jax.random.normal(key, (n_eval, 1 + z_dim))
        return mix.mixture_generate(generate, params_x, None, z)

    def train(key: Array) -> dict[str, Array]:
        k_gen, k_disc, k_steps, k_eval, k_nn = jax.random.split(key, 5)
        params_x = mix.init_mixture(lambda k: gen.init(k, jnp.zeros((1, z_dim)))["params"],
                                    k_gen, components)
        params_y = mix.init_mixture(lambda k: disc.init(k, jnp.zeros((1, 2)))["params"],
                                    k_disc, components)
        opt_state = optimizer.init(params_x, params_y)

        def one_step(carry, t):
            px, py, state = carry
            px, py, state, _ = optimizer.update(game_at(jax.random.fold_in(k_steps, t)),
                                                px, py, state)
            return (px, py, state), None

        def one_block(carry, block):
            steps = block * config.eval_every + jnp.arange(config.eval_every)
            carry, _ = jax.lax.scan(one_step, carry, steps)
            samples = samples_of(carry[0], jax.random.fold_in(k_eval, block))
            scores = gm.mode_metrics(samples, mixture, int(config.min_count))
            scores["weight_entropy"] = -jnp.sum(mix.weights(carry[0]) *
                                                jnp.log(mix.weights(carry[0])))
            return carry, scores

        (px, _, _), curves = jax.lax.scan(one_block, (params_x, params_y, opt_state),
                                          jnp.arange(evals))
        k_samples, k_data, k_fit = jax.random.split(k_nn, 3)
        samples = samples_of(px, k_samples)
        data = gm.sample(k_data, mixture, n_eval)
        results = {f"curve_{name}": value for name, value in curves.items()}
        results.update({name: curves[name][-1] for name in METRICS})
        results["nn_distance"] = nnd.nn_distance(k_fit, data, samples, nn_config)["nn_distance"]
        results["samples"] = samples
        results["final_weights"] = mix.weights(px)
        return results

    return train


def run_cell(config: ml_collections.ConfigDict, components: int,
             optimizer_config: dict[str, Any]) -> dict[str, np.ndarray]:
    """All seeds of one cell: vmapped over seed keys, in chunks of `chunk_seeds`."""
    train = jax.jit(jax.vmap(make_train(config, components, optimizer_config)))
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(int(config.seed)), i))(
        jnp.arange(int(config.num_seeds)))
    chunks = []
    for start in range(0, int(config.num_seeds), int(config.chunk_seeds)):
        chunks.append(jax.device_get(train(keys[start:start + int(config.chunk_seeds)])))
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def summarise(values: np.ndarray) -> dict[str, Any]:
    """Mean, 95% bootstrap interval of the mean, and the per-seed values."""
    values = np.asarray(values, np.float64)
    mean, low, high = bootstrap_mean_ci(values)
    return {"mean": float(mean), "ci95": [float(low), float(high)],
            "per_seed": [float(v) for v in values]}


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """An unlocked copy with `quick_settings` applied when `config.quick` is set."""
    resolved = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    if resolved.get("quick", False):
        resolved.update(resolved.quick_settings.to_dict())
    return resolved


def plot(results: dict[str, Any], cells: dict[str, dict[str, np.ndarray]],
         config: ml_collections.ConfigDict, path: str) -> None:
    """Samples of seed 0 per cell over the mixture's modes, and modes-covered curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mixture = gm.get_mixture(config.mixture)
    centers = np.asarray(mixture.centers)
    names = list(cells)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3.4))
    steps = np.arange(1, int(config.steps) // int(config.eval_every) + 1) * config.eval_every
    for ax, name in zip(axes, names):
        samples = cells[name]["samples"][0]
        ax.scatter(*samples.T, s=1, alpha=0.4, c="tab:red")
        ax.scatter(*centers.T, s=12, c="k", marker="x")
        final = results["cells"][name]
        ax.set_title(f"{name}\nmodes {final['modes']['mean']:.1f}, "
                     f"HQ {final['high_quality']['mean']:.2f}", fontsize=8)
        lim = np.abs(centers).max() + 1.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        modes = cells[name]["curve_modes"]
        axes[-1].plot(steps, modes.mean(axis=0), label=name)
        axes[-1].fill_between(steps, np.percentile(modes, 10, axis=0),
                              np.percentile(modes, 90, axis=0), alpha=0.15)
    axes[-1].set_xlabel("step")
    axes[-1].set_ylabel(f"modes covered (of {len(centers)})")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"{config.mixture}: samples of seed 0; mean and 10-90% band over "
                 f"{config.num_seeds} seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# Config keys that are not settings every cell of one results.json shares: the cell
# selection, execution, and each cell's own model and optimizer (kept in its summary).
_NOT_SHARED = ("cells", "chunk_seeds", "models", "optimizers", "quick", "quick_settings")


def shared_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened settings every cell of one results.json was run with."""
    return {k: v for k, v in flatten_config(json.loads(json.dumps(config))).items()
            if k.split(".")[0] not in _NOT_SHARED}


def earlier_cells(workdir: str, config: ml_collections.ConfigDict, running: set[str]
                  ) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """The cells earlier commands finished in `workdir` that this one does not rerun:
    (their summaries, their arrays from curves.npz). UserError if they were run with
    other shared settings, since one results.json describes one experiment."""
    path = os.path.join(workdir, "results.json")
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        saved = json.load(f)
    kept = {name: s for name, s in saved["cells"].items() if name not in running}
    old, new = shared_settings(saved["config"]), shared_settings(config.to_dict())
    changed = [f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}"
               for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if kept and changed:
        raise UserError(f"{path} holds the cells {sorted(kept)}, run with other settings "
                        f"({'; '.join(changed)}); rerun them with these settings "
                        "(--config.cells=...) or use another --workdir.")
    arrays: dict[str, dict[str, np.ndarray]] = {}
    curves = os.path.join(workdir, "curves.npz")
    if os.path.exists(curves):
        with np.load(curves) as f:
            for key in f.files:
                cell, name = key.rsplit("__", 1)
                if cell in kept:
                    arrays.setdefault(cell, {})[name] = f[key]
    return kept, arrays


def _write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    replace_atomically(path, write)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Runner "mix_gaussians": every (model, optimizer) cell over all seeds (those of
    `config.cells`), added to the cells earlier commands finished in `workdir`."""
    config = resolve(config)
    validate(config)
    wanted = [c for c in str(config.get("cells", "")).split(",") if c]
    selected = [(model, components, opt_name, opt_config)
                for model, components in config.models.items()
                for opt_name, opt_config in config.optimizers.items()
                if not wanted or f"{model}__{opt_name}" in wanted]
    kept, cells = earlier_cells(workdir, config,
                                {f"{model}__{opt}" for model, _, opt, _ in selected})
    results: dict[str, Any] = {"mixture": config.mixture, "num_seeds": int(config.num_seeds),
                               "cells": dict(kept), "config": config.to_dict()}
    for model, components, opt_name, opt_config in selected:
        name = f"{model}__{opt_name}"
        start = time.time()
        out = run_cell(config, int(components), _plain(opt_config))
        cells[name] = out
        summary = {metric: summarise(out[metric]) for metric in (*METRICS, "nn_distance")}
        summary["components"] = int(components)
        summary["optimizer"] = _plain(opt_config)
        summary["curves_mean"] = {m: out[f"curve_{m}"].mean(axis=0).tolist()
                                  for m in (*METRICS, "weight_entropy")}
        summary["final_weights_seed0"] = out["final_weights"][0].tolist()
        summary["seconds"] = round(time.time() - start, 1)
        results["cells"][name] = summary
        print(f"{name}: modes {summary['modes']['mean']:.2f} "
              f"[{summary['modes']['ci95'][0]:.2f}, {summary['modes']['ci95'][1]:.2f}], "
              f"high quality {summary['high_quality']['mean']:.3f}, nn distance "
              f"{summary['nn_distance']['mean']:.3f} ({summary['seconds']} s)", flush=True)
        # Written after every cell, so finished cells survive an interrupted run.
        write_json(os.path.join(workdir, "results.json"), results, indent=1)
        _write_npz(os.path.join(workdir, "curves.npz"),
                   {f"{cell}__{k}": v for cell, arrays in cells.items() for k, v in arrays.items()})
    plot(results, cells, config, os.path.join(workdir, "mix_gaussians.png"))
    return results
