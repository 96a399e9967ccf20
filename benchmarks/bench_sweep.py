"""Speed of many-seed sweeps: vmapped and sharded vs a Python loop over seeds.

The setting is Fedus et al.'s Exp I at the defaults of experiments/synthetic_manifold.py
(d = 10, hidden 32, batch 64, NS-GAN, alternating Adam with n_disc = 5, random start).
Both sides run the same training step (`synthetic_run.make_run_fns`):
- loop: for each seed, the jitted init, then the jitted single step called from Python
  once per step (what a per-seed script does);
- sweep: `gan_dynamics.runners.sweep`, one jitted program vmapped over seeds with every step
  scanned inside, seeds sharded over all devices.
Compilation is excluded from both (each is called once before timing). Reported:
seed-steps per second, speed-up, peak resident memory (getrusage, a process high-water
mark, so it only grows down the table), and the projected time of one full setting of
the paper (1000 seeds x 200k iterations, n_disc = 5) at the measured sweep rate.

    python benchmarks/bench_sweep.py [--seeds=10,100,1000] [--steps=20]

Writes benchmarks/results/bench_sweep.json. Takes ~3-5 min on 2 shared CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import synthetic_manifold  # noqa: E402
from gan_dynamics.runners import sweep, synthetic_run  # noqa: E402

FULL_SEEDS, FULL_STEPS = 1000, 200_000


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_loop(fns, num_seeds: int, steps: int, lr) -> float:
    init, step = jax.jit(fns.init), jax.jit(fns.step)
    warm, _ = init(synthetic_run.seed_key(1, 0), lr)
    jax.block_until_ready(step(warm, jnp.int32(0), lr))
    start = time.perf_counter()
    for seed in range(num_seeds):
        state, _ = init(synthetic_run.seed_key(0, seed), lr)
        for t in range(steps):
            state, _ = step(state, jnp.int32(t), lr)
        jax.block_until_ready(state)
    return time.perf_counter() - start


def time_sweep(config, num_seeds: int, lr) -> float:
    mesh = sweep.seed_mesh()
    fn = sweep.compile_sweep(synthetic_run.make_train(config), mesh, over_lr=False)
    sweep.run_seeds(fn, 1, num_seeds, lr, mesh, num_seeds)  # compile
    start = time.perf_counter()
    sweep.run_seeds(fn, 0, num_seeds, lr, mesh, num_seeds)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="10,100,1000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "bench_sweep.json"))
    args = parser.parse_args()
    config = synthetic_manifold.get_config()
    config.init = "random"
    config.steps = config.log_every = args.steps
    lr = jnp.float32(config.optimizer.lr)
    fns = synthetic_run.make_run_fns(config)
    rows = []
    print(f"{jax.device_count()} x {jax.devices()[0].platform}; {args.steps} steps per seed; "
          f"n_disc = {config.optimizer.n_disc}")
    print(f"{'seeds':>6} {'loop seed-steps/s':>18} {'sweep seed-steps/s':>19} {'speed-up':>9} "
          f"{'peak MB':>8}")
    for num_seeds in (int(s) for s in args.seeds.split(",")):
        loop_s = time_loop(fns, num_seeds, args.steps, lr)
        sweep_s = time_sweep(config, num_seeds, lr)
        row = {"seeds": num_seeds, "steps": args.steps, "loop_seconds": loop_s,
               "sweep_seconds": sweep_s,
               "loop_seed_steps_per_s": num_seeds * args.steps / loop_s,
               "sweep_seed_steps_per_s": num_seeds * args.steps / sweep_s,
               "speedup": loop_s / sweep_s, "peak_memory_mb": peak_memory_mb()}
        rows.append(row)
        print(f"{num_seeds:>6} {row['loop_seed_steps_per_s']:>18.0f} "
              f"{row['sweep_seed_steps_per_s']:>19.0f} {row['speedup']:>8.1f}x "
              f"{row['peak_memory_mb']:>8.0f}", flush=True)
    best = max(rows, key=lambda r: r["seeds"])
    projected_h = FULL_SEEDS * FULL_STEPS / best["sweep_seed_steps_per_s"] / 3600
    loop_h = FULL_SEEDS * FULL_STEPS / best["loop_seed_steps_per_s"] / 3600
    print(f"Projected full setting ({FULL_SEEDS} seeds x {FULL_STEPS} iterations, n_disc = "
          f"{config.optimizer.n_disc}, one lr): sweep {projected_h:.1f} h, loop {loop_h:.1f} h "
          f"on this machine.")
    result = {"benchmark": "bench_sweep", "setting": "Fedus Exp I, NS-GAN, altgd adam n_disc=5",
              "config": {k: config[k] for k in ("dim", "hidden", "batch", "model")},
              "devices": jax.device_count(), "platform": jax.devices()[0].platform,
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "jax": jax.__version__, "rows": rows,
              "projected_full_setting_hours": {"sweep": projected_h, "loop": loop_h}}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
