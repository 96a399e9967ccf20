"""Time one jitted step of every game optimizer on a small MLP GAN and the ICR CIFAR DCGAN.

    python benchmarks/bench_game_step.py                     # both games, torch reference
    python benchmarks/bench_game_step.py --games=mlp --no-torch

Prints a table (ms/step, ratio to SimGD, solver iterations, gradient-equivalents and the
(2k+3)·SimGD bound for CGD/ACGD) and writes game_step.json to --out (default
runs/benchmarks/; `--out=benchmarks/results` updates the committed file).

Targets: a CGD/ACGD step with k CG iterations costs at most (2k + 3) SimGD
steps of the same game; against the ICR authors' PyTorch ACGD (`CGDs`) on the same DCGAN,
batch and machine, at most half its time per step at equal CG iterations. For the latter
the reference runs in a subprocess (`--torch-python`, by default this interpreter; it
needs `pip install torch==2.13.0` and `pip install --no-deps CGDs==0.4.5`), ours is then
forced to its mean iteration count (tol = atol = 0, max_iter = k) so that both do the same number of products, and the
reference runs once more after ours; the ratio compares the medians of all steps.
Process CPU time (all threads) is recorded beside wall time. On a loaded machine the
reference's OpenMP threads lose far more than XLA's (CGDs took 25 times its idle time at
load 10 on 2 cores), and the wall-time ratio says little; pinned to one core
(`taskset -c 0 python benchmarks/bench_game_step.py`), each process runs one thread, its
CPU time is its work, and the ratio of CPU times holds up under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, cpu_info, write_json  # noqa: E402
from gan_dynamics import objectives, optimizers  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.models import registry  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ADAM = {"name": "adam", "lr": 1e-4, "b1": 0.5, "b2": 0.9}
OPTIMIZERS = {
    "simgd": dict(transform_x=ADAM, transform_y=ADAM),
    "altgd": dict(transform_x=ADAM, transform_y=ADAM, n_disc=1),
    "extragradient": dict(lr_x=1e-4, lr_y=1e-4),
    "ogda": dict(lr_x=1e-4, lr_y=1e-4),
    "consensus": dict(lr_x=1e-4, lr_y=1e-4, gamma=1.0),
    "sga": dict(lr_x=1e-4, lr_y=1e-4),
    "cgd": dict(lr_x=1e-4, lr_y=1e-4),
    "acgd": dict(lr_x=1e-4, lr_y=1e-4),
}


class MLP(nn.Module):
    """A two-hidden-layer ReLU MLP; the output is squeezed for a discriminator."""

    width: int
    out: int
    squeeze: bool = False

    @nn.compact
    def __call__(self, h, train: bool = True):
        del train
        h = nn.relu(nn.Dense(self.width)(h))
        h = nn.relu(nn.Dense(self.width)(h))
        h = nn.Dense(self.out)(h)
        return h[:, 0] if self.squeeze else h


def build_game(name: str, batch: int, key: jax.Array):
    """(init params and states, game maker) for a WGAN game on random data."""
    k_gen, k_disc, k_data = jax.random.split(key, 3)
    if name == "mlp":
        z_dim, gen, disc = 16, MLP(128, 2), MLP(128, 1, squeeze=True)
        real = jax.random.normal(k_data, (batch, 2))
    else:
        z_dim = 128
        gen, disc = registry.get_model("icr_dcgan")
        real = jax.random.uniform(k_data, (batch, 32, 32, 3), minval=-1.0, maxval=1.0)
    vars_x = gen.init(k_gen, jnp.zeros((1, z_dim)), train=False)
    vars_y = disc.init(k_disc, real[:1], train=False)
    px, sx = vars_x["params"], {k: v for k, v in vars_x.items() if k != "params"}
    py, sy = vars_y["params"], {k: v for k, v in vars_y.items() if k != "params"}
    generate = objectives.linen_apply(gen, train=True)
    discriminate = objectives.linen_apply(disc, train=True)

    def make_game(step_key):
        z = jax.random.normal(step_key, (batch, z_dim))
        return objectives.make_gan_game("wgan", generate, discriminate, real, z,
                                        state_x=sx, state_y=sy)

    return px, py, make_game


def time_optimizer(opt, px, py, make_game, repeats: int):
    state = opt.init(px, py)

    @jax.jit
    def step(px, py, state, key):
        return opt.update(make_game(key), px, py, state)

    key = jax.random.key(0)
    start = time.perf_counter()
    px, py, state, info = jax.block_until_ready(step(px, py, state, key))
    compile_s = time.perf_counter() - start
    times, cpu_times, iters, evals = [], [], [], []
    for i in range(repeats):
        key_i = jax.random.fold_in(key, i + 1)
        start, cpu_start = time.perf_counter(), time.process_time()
        px, py, state, info = jax.block_until_ready(step(px, py, state, key_i))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        iters.append(int(info.get("solver_iterations", 0)))
        evals.append(float(info["grad_evals"]))
    return {
        "ms_per_step": 1e3 * statistics.median(times),
        "ms_all": [1e3 * t for t in times],
        "cpu_ms_per_step": 1e3 * statistics.median(cpu_times),
        "compile_and_first_step_s": compile_s,
        "solver_iterations": iters,
        "grad_evals": evals,
    }


def run_torch_reference(python: str, steps: int, batch: int):
    check = subprocess.run([python, "-c", "import torch, CGDs"], capture_output=True)
    if check.returncode:
        raise UserError(
            f"The PyTorch ACGD reference needs torch and CGDs in {python}: run "
            "`pip install torch==2.13.0 && pip install --no-deps CGDs==0.4.5` there, pass "
            "another interpreter with --torch-python, or skip the reference with --no-torch.")
    script = os.path.join(HERE, "torch_acgd_reference.py")
    out = subprocess.run([python, script, f"--steps={steps}", f"--batch={batch}"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", default="mlp,icr_dcgan")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats-mlp", type=int, default=20)
    parser.add_argument("--repeats-dcgan", type=int, default=3)
    parser.add_argument("--torch-python", default=sys.executable,
                        help="interpreter with torch and CGDs for the reference "
                             "(default: this one)")
    parser.add_argument("--torch-steps", type=int, default=4)
    parser.add_argument("--no-torch", action="store_true")
    add_out_argument(parser)
    return parser.parse_args(argv)


def main():
    args = parse_args()

    results = {"machine": {"platform": platform.platform(), "jax": jax.__version__,
                           "backend": jax.default_backend(), **cpu_info()},
               "batch": args.batch, "games": {}}
    for game_name in args.games.split(","):
        px, py, make_game = build_game(game_name, args.batch, jax.random.key(1))
        n_x, n_y = registry.param_count(px), registry.param_count(py)
        repeats = args.repeats_mlp if game_name == "mlp" else args.repeats_dcgan
        rows = {}
        for name, hp in OPTIMIZERS.items():
            rows[name] = time_optimizer(optimizers.create(name, **hp), px, py, make_game, repeats)
        base = rows["simgd"]["ms_per_step"]
        for row in rows.values():
            row["ratio_to_simgd"] = row["ms_per_step"] / base
            k = statistics.mean(row["solver_iterations"])
            row["bound_2k_plus_3"] = 2 * k + 3
        game = {"params_gen": n_x, "params_disc": n_y, "optimizers": rows}

        if game_name == "icr_dcgan" and not args.no_torch:
            # The machine is noisy: the reference runs before and after ours, and the
            # ratio is taken between medians of all steps of both.
            ref = run_torch_reference(args.torch_python, args.torch_steps, args.batch)
            k = max(1, round(statistics.mean(ref["acgd_cg_iterations"])))
            forced = optimizers.create("acgd", lr_x=1e-4, lr_y=1e-4, tol=0.0, atol=0.0,
                                       max_iter=k)
            ours = time_optimizer(forced, px, py, make_game, 2 * args.repeats_dcgan)
            after = run_torch_reference(args.torch_python, args.torch_steps, args.batch)
            for field in ("acgd_s_per_step", "acgd_cpu_s_per_step", "acgd_cg_iterations",
                          "adam_wgan_gp_disc_s", "adam_gen_s"):
                ref[field] += after[field]
            torch_s = statistics.median(ref["acgd_s_per_step"])
            torch_cpu_s = statistics.median(ref["acgd_cpu_s_per_step"])
            game["torch_reference"] = ref
            game["acgd_equal_iterations"] = {
                "cg_iterations": k, "ours_ms": ours["ms_per_step"],
                "ours_iterations": ours["solver_iterations"], "torch_ms": 1e3 * torch_s,
                "ratio_ours_to_torch": ours["ms_per_step"] / (1e3 * torch_s),
                "ours_cpu_ms": ours["cpu_ms_per_step"], "torch_cpu_ms": 1e3 * torch_cpu_s,
                "ratio_ours_to_torch_cpu": ours["cpu_ms_per_step"] / (1e3 * torch_cpu_s),
            }
        results["games"][game_name] = game

        print(f"\n{game_name}: {n_x:,} generator / {n_y:,} discriminator parameters, "
              f"batch {args.batch}, {jax.default_backend()}")
        print(f"{'optimizer':<14}{'ms/step':>10}{'CPU ms':>9}{'x SimGD':>9}{'CG iters':>10}"
              f"{'grad-eq':>9}{'2k+3':>7}")
        for name, row in rows.items():
            k = statistics.mean(row["solver_iterations"])
            print(f"{name:<14}{row['ms_per_step']:>10.1f}{row['cpu_ms_per_step']:>9.1f}"
                  f"{row['ratio_to_simgd']:>9.2f}"
                  f"{k:>10.1f}{statistics.mean(row['grad_evals']):>9.1f}"
                  f"{row['bound_2k_plus_3'] if name in ('cgd', 'acgd') else float('nan'):>7.1f}")
        if "acgd_equal_iterations" in game:
            eq = game["acgd_equal_iterations"]
            ref = game["torch_reference"]
            print(f"ACGD at {eq['cg_iterations']} CG iterations: ours {eq['ours_ms']:.0f} ms "
                  f"({eq['ours_cpu_ms']:.0f} ms CPU), CGDs (torch {ref['torch']}) "
                  f"{eq['torch_ms']:.0f} ms ({eq['torch_cpu_ms']:.0f} ms CPU) "
                  f"(its iterations {ref['acgd_cg_iterations']}): ratio "
                  f"{eq['ratio_ours_to_torch']:.2f} (process CPU time "
                  f"{eq['ratio_ours_to_torch_cpu']:.2f}); torch Adam WGAN-GP disc step "
                  f"{1e3 * statistics.median(ref['adam_wgan_gp_disc_s']):.0f} ms, gen step "
                  f"{1e3 * statistics.median(ref['adam_gen_s']):.0f} ms")

    results["machine"]["load_average_end"] = cpu_info().get("load_average")
    print(f"\n{results['machine'].get('cpu')}, load average {results['machine'].get('load_average')}"
          f" at the start, {results['machine']['load_average_end']} at the end")
    write_json(args.out, "game_step.json", results)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
