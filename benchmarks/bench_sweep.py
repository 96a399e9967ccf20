"""Speed of many-seed sweeps against a Python loop over seeds, and against this machine.

The setting is Fedus et al.'s Exp I at the defaults of experiments/synthetic_manifold.py
(d = 10, hidden 32, batch 64, NS-GAN, alternating Adam with n_disc = 5, random start).
Every side runs the same training step (`synthetic_train.make_run_fns`):
- loop: for each seed, the jitted init, then the jitted single step called from Python
  once per step (what a per-seed script does). It is linear in the number of seeds, so it
  is timed on at most `--loop-seeds` seeds and its rate applies to every row;
- sweep: the programs the runner "sweep" runs (`seed_sharding.compile_cell`): one compiled chunk
  over every seed, the seeds in groups of `--group` vmapped together, one group after
  another; one warm-up chunk, then 3 timed chunks of `--steps` steps, each followed by
  fetching its logs as the runner does;
- one vmap: the previous sweep, every seed vmapped at once in one program
  (`seed_sharding.compile_sweep`), up to 1000 seeds.
Compilation is excluded (each program runs once before timing). Then, in the same run,
`profile_sweep.profile` traces one group's chunk and sets its matmuls' FLOP/s and its
elementwise bytes/s against a microbenchmark of the same shapes on this machine.

Also reported: peak resident memory (getrusage: a process high-water mark, so it only
grows down the table), the chunk program's memory (XLA's memory_analysis), the load
average (other processes share the CPU), and the projected time of one full setting of
the paper (1000 seeds x 200k iterations, n_disc = 5) per learning rate.

    python benchmarks/bench_sweep.py [--seeds=10,100,1000,10000] [--steps=20] [--group=1000]

Writes bench_sweep.json to --out (default runs/benchmarks/; `--out=benchmarks/results`
updates the committed file); took 18 min on 2 cores shared with other jobs
(load average 20-24).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import profile_sweep  # noqa: E402
from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from experiments import sweep_manifold_lr, synthetic_manifold  # noqa: E402
from gan_dynamics.runners import seed_sharding, sweep_settings, synthetic_train  # noqa: E402

FULL_SEEDS, FULL_STEPS = 1000, 200_000


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_loop(fns, num_seeds: int, steps: int, lr) -> float:
    init, step = jax.jit(fns.init), jax.jit(fns.step)
    warm, _ = init(synthetic_train.seed_key(1, 0), lr)
    jax.block_until_ready(step(warm, jnp.int32(0), lr))
    start = time.perf_counter()
    for seed in range(num_seeds):
        state, _ = init(synthetic_train.seed_key(0, seed), lr)
        for t in range(steps):
            state, _ = step(state, jnp.int32(t), lr)
        jax.block_until_ready(state)
    return time.perf_counter() - start


def time_one_vmap(config, num_seeds: int, lr) -> float:
    mesh = seed_sharding.seed_mesh()
    fn = seed_sharding.compile_sweep(synthetic_train.make_train(config), mesh, over_lr=False)
    seed_sharding.run_seeds(fn, 1, num_seeds, lr, mesh, num_seeds)  # compile
    start = time.perf_counter()
    seed_sharding.run_seeds(fn, 0, num_seeds, lr, mesh, num_seeds)
    return time.perf_counter() - start


def time_sweep(single, num_seeds: int, steps: int, group: int, chunks: int = 3) -> dict:
    """The runner's programs (`seed_sharding.compile_cell`) on `num_seeds` seeds: one untimed
    chunk of `steps` steps (the first call of a program pays one-time costs), then
    `chunks` timed ones."""
    config = sweep_manifold_lr.get_config()
    config.update({k: single[k] for k in ("dim", "hidden", "batch", "model", "init")})
    config.update(dict(steps=(chunks + 1) * steps, log_every=steps, chunk_steps=steps,
                       num_seeds=num_seeds, chunk_seeds=group, models=single.model,
                       run_optimizers="altgd"))
    part = sweep_settings.cell_parts(config, single.model, "altgd")[0]
    mesh = seed_sharding.seed_mesh()
    layout = seed_sharding.run_layout(num_seeds, mesh.shape[seed_sharding.SEED_AXIS], group)
    start = time.perf_counter()
    programs = seed_sharding.compile_cell(part.cell, mesh, layout)
    compile_seconds = time.perf_counter() - start
    runs = jax.sharding.NamedSharding(mesh, jax.P(seed_sharding.SEED_AXIS))
    keys = jax.device_put(seed_sharding.seed_keys(0, np.arange(layout.padded)), runs)
    lrs = jax.device_put(np.full(layout.padded, single.optimizer.lr, np.float32), runs)
    carry = programs.start(keys, lrs)[0]
    carry, logged = programs.advance(carry, jnp.int32(0), lrs)
    jax.block_until_ready(logged)
    start = time.perf_counter()
    for chunk in range(1, chunks + 1):
        carry, logged = programs.advance(carry, jnp.int32(chunk), lrs)
        jax.device_get(logged)  # what the runner does after every chunk
    seconds = time.perf_counter() - start
    return {"seed_steps_per_s": num_seeds * chunks * steps / seconds, "group": layout.group,
            "padded_runs": layout.padded, "compile_seconds": compile_seconds,
            "program_memory_bytes": programs.memory}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="10,100,1000,10000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--group", type=int, default=1000)
    parser.add_argument("--loop-seeds", type=int, default=50)
    parser.add_argument("--one-vmap-max", type=int, default=1000)
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    config = synthetic_manifold.get_config()
    config.init = "random"
    config.steps = config.log_every = args.steps
    lr = jnp.float32(config.optimizer.lr)
    fns = synthetic_train.make_run_fns(config)
    loop_seeds = args.loop_seeds
    loop_rate = loop_seeds * args.steps / time_loop(fns, loop_seeds, args.steps, lr)
    print(f"{jax.device_count()} x {jax.devices()[0].platform}; {args.steps} steps per seed; "
          f"n_disc = {config.optimizer.n_disc}; groups of {args.group} seeds; load average "
          f"{load_before[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"per-seed loop: {loop_rate:,.0f} seed-steps/s (timed on {loop_seeds} seeds; linear "
          "in seeds, so the same rate for every row)")
    print(f"{'seeds':>6} {'sweep seed-steps/s':>19} {'x loop':>7} {'one-vmap seed-steps/s':>22} "
          f"{'sweep/one-vmap':>15} {'program MB':>11} {'peak RSS MB':>12}")
    rows = []
    for num_seeds in (int(s) for s in args.seeds.split(",")):
        stats = time_sweep(config, num_seeds, args.steps, args.group)
        rate = stats["seed_steps_per_s"]
        one_vmap = None
        if num_seeds <= args.one_vmap_max:
            one_vmap = num_seeds * args.steps / time_one_vmap(config, num_seeds, lr)
        program_mb = sum(stats["program_memory_bytes"].values()) / 2**20
        row = {"seeds": num_seeds, "steps": args.steps, "sweep_seed_steps_per_s": rate,
               "loop_seed_steps_per_s": loop_rate, "speedup_vs_loop": rate / loop_rate,
               "one_vmap_seed_steps_per_s": one_vmap,
               "speedup_vs_one_vmap": rate / one_vmap if one_vmap else None,
               "group": stats["group"], "padded_runs": stats["padded_runs"],
               "compile_seconds": stats["compile_seconds"],
               "program_memory_bytes": stats["program_memory_bytes"],
               "peak_memory_mb": peak_memory_mb(), "load_average": os.getloadavg()}
        rows.append(row)
        one = f"{one_vmap:>22,.0f} {rate / one_vmap:>14.1f}x" if one_vmap else f"{'-':>22} {'-':>15}"
        print(f"{num_seeds:>6} {rate:>19,.0f} {rate / loop_rate:>6.1f}x {one} {program_mb:>11.1f} "
              f"{row['peak_memory_mb']:>12.0f}", flush=True)
    profile = profile_sweep.profile(args.group, 10, "threefry2x32")
    print(profile_sweep.format_profile(profile))
    at_1000 = min(rows, key=lambda r: abs(r["seeds"] - FULL_SEEDS))
    projected_h = FULL_SEEDS * FULL_STEPS / at_1000["sweep_seed_steps_per_s"] / 3600
    loop_h = FULL_SEEDS * FULL_STEPS / loop_rate / 3600
    print(f"Projected full setting ({FULL_SEEDS} seeds x {FULL_STEPS} iterations, n_disc = "
          f"{config.optimizer.n_disc}, one lr, from the {at_1000['seeds']}-seed row): sweep "
          f"{projected_h:.1f} h, loop {loop_h:.1f} h on this machine; load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after.")
    result = {"benchmark": "bench_sweep", "setting": "Fedus Exp I, NS-GAN, altgd adam n_disc=5",
              "config": {k: config[k] for k in ("dim", "hidden", "batch", "model")},
              "devices": jax.device_count(), "platform": jax.devices()[0].platform,
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "jax": jax.__version__, "group": args.group, "loop_seeds": loop_seeds,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "rows": rows, "profile": profile,
              "projected_full_setting_hours": {"sweep": projected_h, "loop": loop_h}}
    write_json(args.out, "bench_sweep.json", result)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
