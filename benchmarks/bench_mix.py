"""Cost of MIX+GAN mixtures: time per training step with T components against T = 1.

A T-component mixture evaluates T generators, T discriminators on the real batch and
T² discriminator passes on the generators' samples (models/mix.py), all vmapped. Its
cost per step therefore lies between the T line (generator-bound) and the T² line
(bound by the discriminator on generated data); vectorising the components should
keep it at or below T², and for small networks, whose single passes leave the
hardware idle, well below.

Two models, one AltGD step (Adam, one discriminator step then one generator step, the
paper's alternating updates), T = 1, 2, 5, 10:
- the Gaussian-grid MLPs of experiments/mix_gaussians.py (2 -> 32 -> 32 -> 2 and
  2 -> 32 -> 32 -> 1, batch 64);
- the ICR DCGAN pair (models/icr_dcgan.py) at width 16, batch 8, 32x32x3 (a small
  batch, so that T = 10's 110 discriminator passes fit a CPU).

    python benchmarks/bench_mix.py            # table, runs/benchmarks/bench_mix.{json,png}
    python benchmarks/bench_mix.py --repeats=5 --components=1,2,5

Each step is jitted once (compile excluded) and timed as the median of `repeats` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from gan_dynamics import objectives  # noqa: E402
from gan_dynamics.models import icr_dcgan, mix  # noqa: E402
from gan_dynamics.models.mlp import MLPDiscriminator, MLPGenerator  # noqa: E402
from gan_dynamics.optimizers import create  # noqa: E402


def models(name: str):
    """(generator, discriminator, z_dim, example shape, batch) of a benchmark model."""
    if name == "grid_mlp":
        return (MLPGenerator(z_dim=2, hidden=(32, 32), out_dim=2),
                MLPDiscriminator(hidden=(32, 32)), 2, (2,), 64)
    if name == "icr_dcgan":
        g, d = icr_dcgan.make(z_dim=128, width=16, channels=3)
        return g, d, 128, (32, 32, 3), 8
    raise ValueError(name)


def time_step(name: str, components: int, repeats: int) -> dict[str, float]:
    gen, disc, z_dim, shape, batch = models(name)
    key = jax.random.key(0)
    k_g, k_d, k_real, k_z = jax.random.split(key, 4)
    vars_x = jax.vmap(lambda k: gen.init(k, jnp.zeros((1, z_dim)), train=False))(
        jax.random.split(k_g, components))
    vars_y = jax.vmap(lambda k: disc.init(k, jnp.zeros((1, *shape)), train=False))(
        jax.random.split(k_d, components))
    px = mix.mixture_params(vars_x.pop("params"), jnp.zeros((components,)))
    py = mix.mixture_params(vars_y.pop("params"), jnp.zeros((components,)))
    state_x = dict(vars_x) or None
    state_y = dict(vars_y) or None
    adam = {"name": "adam", "lr": 2e-4, "b1": 0.5, "b2": 0.999}
    optimizer = create("altgd", transform_x=adam, transform_y=adam, n_disc=1)
    real = jax.random.normal(k_real, (2, batch, *shape))
    z = jax.random.normal(k_z, (2, batch, z_dim))

    def step(px, py, opt_state):
        game = mix.make_mix_gan_game(
            "non_saturating", objectives.linen_apply(gen, train=True),
            objectives.linen_apply(disc, train=True), real[0], z[0],
            state_x=state_x, state_y=state_y, entropy_weight=0.1 if components > 1 else 0.0,
            substep_batch=lambda i: (real[i], z[i], None))
        px, py, opt_state, info = optimizer.update(game, px, py, opt_state)
        return px, py, opt_state, info["f"]

    step = jax.jit(step)
    opt_state = optimizer.init(px, py)
    start = time.perf_counter()
    jax.block_until_ready(step(px, py, opt_state))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(px, py, opt_state))
        times.append(time.perf_counter() - start)
    return {"components": components, "step_s": float(np.median(times)),
            "compile_s": compile_s}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results["models"]), figsize=(5 * len(results["models"]), 4))
    for ax, (name, rows) in zip(np.atleast_1d(axes), results["models"].items()):
        t = np.array([r["components"] for r in rows])
        ratio = np.array([r["step_s"] for r in rows]) / rows[0]["step_s"]
        grid = np.linspace(1, t.max(), 50)
        ax.plot(grid, grid, "k--", lw=1, label="T")
        ax.plot(grid, grid ** 2, "k:", lw=1, label="T²")
        ax.plot(t, ratio, "o-", label="measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("components T")
        ax.set_ylabel("time per step / time at T = 1")
        ax.set_title(f"{name} (T=1: {1e3 * rows[0]['step_s']:.1f} ms/step)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", default="1,2,5,10")
    parser.add_argument("--models", default="grid_mlp,icr_dcgan")
    parser.add_argument("--repeats", type=int, default=5)
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    counts = [int(c) for c in args.components.split(",")]
    results = {"backend": jax.default_backend(), "machine": platform.machine(),
               "cpu_count": os.cpu_count(), "repeats": args.repeats, "models": {}}
    print(f"{'model':<10} {'T':>3} {'ms/step':>9} {'ratio':>7} {'T²':>5} {'compile s':>10}")
    for name in args.models.split(","):
        rows = []
        for t in counts:
            row = time_step(name, t, args.repeats)
            rows.append(row)
            ratio = row["step_s"] / rows[0]["step_s"]
            row["ratio_to_T1"] = ratio
            print(f"{name:<10} {t:>3} {1e3 * row['step_s']:>9.2f} {ratio:>7.2f} {t * t:>5} "
                  f"{row['compile_s']:>10.1f}", flush=True)
        results["models"][name] = rows
    write_json(args.out, "bench_mix.json", results)
    plot(results, os.path.join(args.out, "bench_mix.png"))


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
