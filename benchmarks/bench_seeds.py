"""Seed-steps per second of K seeds in one program (`train.num_seeds`) vs K runs in turn.

The offline-digits DCGAN (`experiments/offline_digits.py`: 16x16 MNIST digits, DCGAN
width 32, non-saturating GAN-GP, AltGD with Adam) and its ACGD twin
(`experiments/offline_digits_acgd.py`), each step jitted exactly as the image runner
jits it: K = 1, 2, 4, 8, 16 seeds in one program (`runners.seeds_step`), all K in one
vmapped call (`train.seeds_at_once = K`) and one seed at a time (`seeds_at_once = 1`,
a `lax.map` over the seeds), against one seed's step (`runners.train_step`), which K
runs one after another each take, so their seed-steps/s is one seed's steps/s whatever K
(timed beside each row, the best of --repeats runs of --steps steps each, as other jobs
on a shared machine only slow a run down). Per row: compile time, seed-steps/s, the
ratio to runs in turn, and for ACGD the solver's iterations per seed (a while_loop under
vmap runs until the slowest seed has converged: `lane_use` = mean over seeds / max over
seeds, the share of the loop's lanes doing a seed's own work).

Where no GPU is present, an ESTIMATE of each program's time on an H100 SXM: the larger
of its FLOPs at the TF32 tensor peak, its bytes accessed at the HBM bandwidth (both from
XLA's compiled `cost_analysis` on this machine) and its kernels (fusions, convolutions,
dots and custom calls of the compiled program) at 5 us of launch and tail each; the
estimated speed-up at K is K x t(one seed) / t(K seeds vmapped). XLA counts a while_loop's body
once, so ACGD (whose solver is one) gets no estimate.

    python benchmarks/bench_seeds.py                      # table, runs/benchmarks/bench_seeds_<host>.{json,png}
    python benchmarks/bench_seeds.py --ks=1,8 --optimizers=altgd --steps=5
    python benchmarks/bench_seeds.py --out=benchmarks/results --page=docs/scaling.md
    python benchmarks/bench_seeds.py --from-json=benchmarks/results/bench_seeds_vm.json --page=docs/scaling.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from typing import Any, Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_train import load_config  # noqa: E402
from benchmarks.results_io import add_out_argument, cpu_info, update_page, write_json  # noqa: E402
from gan_dynamics import parallel  # noqa: E402
from gan_dynamics.data import loader  # noqa: E402
from gan_dynamics.runners import seeds_step, train_config, train_step  # noqa: E402

CONFIGS = {"altgd": "offline_digits", "acgd": "offline_digits_acgd"}
# NVIDIA H100 SXM5 data sheet: dense TF32 tensor FLOP/s and HBM3 bytes/s.
H100 = {"name": "H100 SXM (data sheet)", "flops_per_s": 494.7e12, "bytes_per_s": 3.35e12,
        "seconds_per_kernel": 5e-6}
_KERNEL = re.compile(r"=\s*\S+\s+(fusion|convolution|dot|custom-call)\(")


def kernels(hlo_text: str) -> int:
    """Kernels a compiled program launches: the fusions, convolutions, dots and custom
    calls of its computations other than the bodies of fusions."""
    count, fused = 0, False
    for line in hlo_text.splitlines():
        if line and not line[0].isspace():  # a computation's header
            fused = line.lstrip("%").startswith("fused") or "fused_computation" in line
            continue
        if not fused and _KERNEL.search(line):
            count += 1
    return count


def cost(compiled: Any) -> dict[str, float]:
    """FLOPs, bytes accessed and kernels of a compiled program (XLA's estimates)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return {"flops": float(analysis.get("flops", 0.0)),
            "bytes_accessed": float(analysis.get("bytes accessed", 0.0)),
            "kernels": kernels(compiled.as_text())}


def h100_seconds(c: dict[str, float]) -> float:
    """An ESTIMATE of a program's time on an H100 (see the module docstring)."""
    return max(c["flops"] / H100["flops_per_s"], c["bytes_accessed"] / H100["bytes_per_s"],
               c["kernels"] * H100["seconds_per_kernel"])


def _compile(jitted, state, batches) -> tuple[Any, Any, float]:
    """(compiled step, state after its first step, compile + first step seconds)."""
    start = time.perf_counter()
    step_fn = jitted.lower(state, batches[0]).compile()
    state, _ = step_fn(state, batches[0])
    jax.block_until_ready(state)
    return step_fn, state, time.perf_counter() - start


def _per_step(step_fn, state, batches, steps: int, repeats: int) -> tuple[float, Any, list]:
    """(seconds per step, the best of `repeats` runs of `steps` steps: other jobs on a
    shared machine only slow a run down; the state after; the last run's metrics)."""
    best = float("inf")
    for _ in range(repeats):
        kept = []
        start = time.perf_counter()
        for i in range(steps):
            state, metrics = step_fn(state, batches[1 + i % (len(batches) - 1)])
            kept.append(metrics)
        jax.block_until_ready(state)
        best = min(best, (time.perf_counter() - start) / steps)
    return best, state, jax.device_get(kept)


def bench(optimizer: str, ks: Sequence[int], steps: int, repeats: int, batch_size: int) -> dict:
    config = load_config(CONFIGS[optimizer])
    if batch_size:
        config.data.batch_size = batch_size
    exp = train_config.build(config)
    mesh = parallel.make_mesh(0)
    b = int(config.data.batch_size)

    state, abstract = train_step.create_state(exp, config.seed, mesh)
    batches = list(loader.device_batches(loader.step_batches(
        exp.source, 0, min(steps, 4) + 1, exp.n_sub, batch_size=b, seed=config.seed), mesh))
    one_fn, one_state, compile_one = _compile(
        train_step.jit_train_step(exp, mesh, abstract), state, batches)
    one_cost = cost(one_fn)
    rows = []
    for k in ks:
        seeds = [config.seed + i for i in range(k)]
        stacked = list(loader.device_batches(
            loader.seeds_step_batches(exp.source, 0, min(steps, 4) + 1, exp.n_sub,
                                      batch_size=b, seeds=seeds), mesh,
            split_axis=seeds_step.batch_split_axis(k, mesh)))
        # All K in one vmapped call, then one seed at a time in the same program (the
        # same program at K = 1).
        for at_once in sorted({k, 1}, reverse=True):
            state, _ = seeds_step.create_seeds(exp, seeds, mesh)
            step_fn, state, compile_k = _compile(seeds_step.jit_seeds_step(
                exp, k, mesh, share_flags=seeds_step.flags_agree(state), at_once=at_once),
                state, stacked)
            k_s, state, metrics = _per_step(step_fn, state, stacked, steps, repeats)
            # One seed's step timed beside it: runs in turn take K of these.
            one_s, one_state, _ = _per_step(one_fn, one_state, batches, steps, repeats)
            row = {"num_seeds": k, "seeds_at_once": at_once,
                   "compile_and_first_step_s": compile_k, "ms_per_step": 1e3 * k_s,
                   "one_seed_ms_per_step": 1e3 * one_s, "seed_steps_per_s": k / k_s,
                   "seed_steps_per_s_in_turn": 1 / one_s,
                   "speedup_over_in_turn": (k / k_s) * one_s}
            if "solver_iterations" in metrics[0]:
                its = np.stack([np.asarray(m["solver_iterations"], float) for m in metrics])
                row.update(solver_iterations_mean=float(its.mean()),
                           solver_iterations_max_over_seeds=float(its.max(axis=1).mean()),
                           lane_use=float(its.mean() / its.max(axis=1).mean()))
            if at_once == k:
                row["cost"] = cost(step_fn)
                if optimizer != "acgd":
                    row["h100_estimated_speedup"] = (k * h100_seconds(one_cost)
                                                     / h100_seconds(row["cost"]))
            rows.append(row)
            print(f"  {optimizer} K={k}, {at_once} at once: {row['seed_steps_per_s']:.2f} "
                  f"seed-steps/s ({row['speedup_over_in_turn']:.2f}x runs in turn)", flush=True)
    return {"optimizer": optimizer, "config": CONFIGS[optimizer], "batch_size": b,
            "n_sub": exp.n_sub, "timed_steps": steps, "repeats": repeats,
            "one_seed_compile_and_first_step_s": compile_one, "one_seed_cost": one_cost,
            "rows": rows}


def plot(results: Sequence[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        vmapped = [row for row in r["rows"] if row["seeds_at_once"] == row["num_seeds"]]
        one = [row for row in r["rows"] if row["seeds_at_once"] == 1]
        ks = [row["num_seeds"] for row in vmapped]
        line, = ax.plot(ks, [row["seed_steps_per_s"] for row in vmapped], "o-",
                        label=f"{r['optimizer']}: K seeds in one vmapped step")
        ax.plot([row["num_seeds"] for row in one], [row["seed_steps_per_s"] for row in one],
                "s:", color=line.get_color(),
                label=f"{r['optimizer']}: K seeds one at a time in one program")
        ax.plot(ks, [row["seed_steps_per_s_in_turn"] for row in vmapped], "--",
                color=line.get_color(), label=f"{r['optimizer']}: K runs in turn")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("seeds K")
    ax.set_ylabel("seed-steps / s")
    ax.set_title(f"offline-digits DCGAN, {jax.devices()[0].device_kind}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def markdown_table(summary: dict) -> str:
    """The docs' table of a results JSON: one row per optimizer, K and grouping."""
    gpu = summary["h100_estimate"] is None
    lines = ["| optimizer | seeds K | at once | ms/step | seed-steps/s | K runs in turn | ratio "
             f"| lane use | {'compile s' if gpu else 'H100 estimate'} |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"altgd": "AltGD/Adam", "acgd": "ACGD"}
    for r in summary["results"]:
        for row in r["rows"]:
            # lanes only wait for the slowest seed in a vmapped call
            lane = row.get("lane_use") if row["seeds_at_once"] > 1 else None
            last = (f"{row['compile_and_first_step_s']:.0f}" if gpu else
                    f"{row['h100_estimated_speedup']:.1f}x" if "h100_estimated_speedup" in row
                    else "-")
            lines.append(
                f"| {names.get(r['optimizer'], r['optimizer'])} | {row['num_seeds']} | "
                f"{row['seeds_at_once']} | {row['ms_per_step']:.0f} | "
                f"{row['seed_steps_per_s']:.2f} | {row['seed_steps_per_s_in_turn']:.2f} | "
                f"{row['speedup_over_in_turn']:.2f} | "
                f"{'-' if lane is None else f'{lane:.2f}'} | {last} |")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the best is kept)")
    parser.add_argument("--ks", default="1,2,4,8,16", help="numbers of seeds")
    parser.add_argument("--optimizers", default="altgd,acgd", help="altgd, acgd or both")
    parser.add_argument("--batch_size", type=int, default=0, help="0: the config's (32)")
    parser.add_argument("--page", default="",
                        help="also write the table into this markdown page, between "
                             "<!-- bench_seeds --> and <!-- /bench_seeds -->")
    parser.add_argument("--from-json", default="",
                        help="take the results from this JSON instead of measuring")
    add_out_argument(parser)
    return parser.parse_args(argv)


def main():
    args = parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            summary = json.load(f)
        print(markdown_table(summary))
        if args.page:
            update_page(args.page, "bench_seeds", markdown_table(summary))
        return
    ks = [int(k) for k in args.ks.split(",")]
    results = [bench(name, ks, args.steps, args.repeats, args.batch_size)
               for name in args.optimizers.split(",")]
    gpu = jax.devices()[0].platform == "gpu"
    summary = {"host": platform.node(), "device": str(jax.devices()[0].device_kind),
               "device_count": jax.device_count(), "jax": jax.__version__,
               "machine": cpu_info(),
               "h100_estimate": None if gpu else {
                   **H100, "note": "an ESTIMATE from XLA's cost analysis of the programs "
                                   "compiled on this machine, not a measurement"},
               "results": results}
    print(markdown_table(summary))
    if not gpu:
        print("H100 estimate: an ESTIMATE of the speed-up over runs in turn on an H100 from "
              "the vmapped programs' FLOPs, bytes and kernels (XLA cost analysis), not a "
              "measurement.")
    name = f"bench_seeds_{platform.node() or 'host'}"
    write_json(args.out, f"{name}.json", summary)
    plot(results, os.path.join(args.out, f"{name}.png"))
    if args.page:
        update_page(args.page, "bench_seeds", markdown_table(summary))


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
