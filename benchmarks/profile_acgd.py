"""Where ACGD's step on the ICR DCGAN spends its time: a profiler trace of the compiled step.

The program is `bench_game_step.py`'s ACGD step on the ICR CIFAR-10 DCGAN (WGAN, batch 64)
with the CG solve forced to `--iterations` iterations (tol = atol = 0), as in that script's
comparison with the PyTorch reference. Two steps are traced, one solving the y-system and
one the x-system (ACGD alternates). `jax.profiler` records every executed HLO instruction;
each instruction's exclusive time is sorted by

- where it runs: in a CG iteration (the body of the solver's while loop, scope
  `linalg.SOLVER_SCOPE`) or in the rest of the step (the linearisation, the right-hand
  side, the warm start's residual, the updates);
- what it computes: the mixed product Dxy f · v (`linalg.PRODUCT_SCOPE`), its transpose
  Dyx · u (`linalg.TRANSPOSE_SCOPE`) or neither (in a CG iteration: the vector updates and
  the stopping test);
- its kind: matmul (dot instructions and the library fusions holding one) or other (pads,
  slices, concatenates, elementwise and reductions).

Time is op time summed over the executor's threads (two can run independent instructions
at once), so the table gives shares; the step's wall time without the profiler is the
median of `--repeats` calls, and the wall time of one CG iteration the difference between
the medians of the step at `--iterations` and at `--baseline-iterations`, timed interleaved.
Matmul FLOPs come from each dot's shapes and are set against a matmul microbenchmark of the
loop's largest dot shape in the same process, the best of 30 calls (`--no-microbenchmark`
skips it).

    python benchmarks/profile_acgd.py [--iterations=9] [--baseline-iterations=1]

Prints a table and writes profile_acgd.json to --out (default runs/benchmarks/;
`--out=benchmarks/results` updates the committed file).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_game_step import build_game  # noqa: E402
from benchmarks.bench_seeds import cost  # noqa: E402
from benchmarks.profile_sweep import SHAPE, best_time, exclusive_times, parse_hlo  # noqa: E402
from benchmarks.results_io import add_out_argument, cpu_info, write_json  # noqa: E402
from gan_dynamics import linalg, optimizers  # noqa: E402
from gan_dynamics.models import registry  # noqa: E402

PARTS = ("mixed product", "transpose", "vector updates")
KINDS = ("matmul", "other")


def machine() -> dict[str, Any]:
    """What the numbers depend on: platform, CPU and its load."""
    return {"platform": platform.platform(), "jax": jax.__version__,
            "backend": jax.default_backend(), **cpu_info()}


def acgd_step(iterations: int, batch: int):
    """The jitted ACGD step at `iterations` CG iterations, its arguments and both states."""
    px, py, make_game = build_game("icr_dcgan", batch, jax.random.key(1))
    opt = optimizers.create("acgd", lr_x=1e-4, lr_y=1e-4, tol=0.0, atol=0.0,
                            max_iter=iterations)
    state = opt.init(px, py)

    def step(px, py, state, key):
        return opt.update(make_game(key), px, py, state)

    key = jax.random.key(0)
    compiled = jax.jit(step).lower(px, py, state, key).compile()
    # ACGD starts with the y-system; the state after one step solves the x-system
    states = (state, jax.block_until_ready(compiled(px, py, state, key))[2])
    return compiled, (px, py, key), states


def classify(inst: dict[str, Any]) -> tuple[str, str, str]:
    """(region, part, kind) of one instruction, from its op_name scopes."""
    name = inst["op_name"]
    region = "iteration" if f"{linalg.SOLVER_SCOPE}/while/body/" in name else "step"
    if f"/{linalg.TRANSPOSE_SCOPE}/" in name:
        part = "transpose"
    elif f"/{linalg.PRODUCT_SCOPE}/" in name:
        part = "mixed product"
    else:
        part = "vector updates" if region == "iteration" else "rest"
    return region, part, "matmul" if inst.get("flops") else "other"


def trace(compiled, args, states) -> dict[str, tuple[float, int]]:
    """Exclusive microseconds and counts of every instruction over one step per state."""
    px, py, key = args
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
        for state in states:
            jax.block_until_ready(compiled(px, py, state, key))
        jax.profiler.stop_trace()
        path = max(glob.glob(os.path.join(trace_dir, "**", "*.json.gz"), recursive=True))
        with gzip.open(path) as f:
            events = json.load(f)
    return exclusive_times(events["traceEvents"] if isinstance(events, dict) else events)


def wall_times(programs: dict[int, Any], args, states, repeats: int) -> dict[int, list[float]]:
    """Seconds per step of each program, interleaved so that load changes hit all alike."""
    px, py, key = args
    times = {k: [] for k in programs}
    for i in range(repeats):
        for k, compiled in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(compiled(px, py, states[i % 2], key))
            times[k].append(time.perf_counter() - start)
    return times


def matmul_rate(shape: tuple[int, int, int], repeats: int = 30) -> float:
    """FLOP/s of one jitted (m, k) x (k, n) float32 matmul, the best of `repeats` (other
    jobs on a shared machine only slow it down)."""
    m, k, n = shape
    a = jax.random.normal(jax.random.key(0), (m, k))
    b = jax.random.normal(jax.random.key(1), (k, n))
    return 2 * m * k * n / best_time(jax.jit(jnp.matmul), a, b, repeats=repeats)


def dot_shape(table: dict[str, dict[str, Any]], inst: dict[str, Any]) -> tuple[int, int, int]:
    """(m, k, n) of a dot (or of the dot inside a library fusion), from its result shape."""
    dims = [int(d) for d in SHAPE.search(inst["shape"]).group(2).split(",") if d]
    m = dims[0] if len(dims) > 1 else 1
    n = dims[-1]
    return m, inst["flops"] // (2 * m * n), n


def gflop(fn, *args) -> float:
    """XLA's count of a jitted function's FLOPs, in GFLOP."""
    return cost(jax.jit(fn).lower(*args).compile())["flops"] / 1e9


def network_gflops(batch: int) -> dict[str, float]:
    """What a mixed product must at least cost: each network's forward pass at `batch`,
    and one product and one transpose alone (the linearisation done outside)."""
    gen, disc = registry.get_model("icr_dcgan")
    z, images = jnp.zeros((batch, 128)), jnp.zeros((batch, 32, 32, 3))
    vars_g = gen.init(jax.random.key(0), z[:1], train=False)
    vars_d = disc.init(jax.random.key(0), images[:1], train=False)
    px, py, make_game = build_game("icr_dcgan", batch, jax.random.key(1))
    lin = linalg.linearize_zero_sum(make_game(jax.random.key(0)), px, py)
    return {
        "generator_forward": gflop(
            lambda v: gen.apply(v, z, train=True, mutable=["batch_stats"])[0], vars_g),
        "discriminator_forward": gflop(lambda v: disc.apply(v, images, train=True), vars_d),
        "mixed_product": gflop(lin.dxy_f, py),
        "transpose": gflop(lin.dyx_f, px),
    }


def profile(iterations: int, baseline: int | None, batch: int, repeats: int,
            microbenchmark: bool) -> dict[str, Any]:
    start_machine = machine()
    compiled, args, states = acgd_step(iterations, batch)
    table = parse_hlo(compiled.as_text())
    programs = {iterations: compiled}
    if baseline is not None:
        programs[baseline] = acgd_step(baseline, batch)[0]
    walls = wall_times(programs, args, states, repeats)
    times = trace(compiled, args, states)

    cells = collections.defaultdict(lambda: {"seconds": 0.0, "flops": 0.0})
    overhead = 0.0
    shapes = collections.Counter()
    for name, (micros, count) in times.items():
        inst = table.get(name)
        if inst is None:
            if name.startswith("ThunkExecutor::Execute") and "wait" not in name:
                overhead += micros / 1e6
            continue
        region, part, kind = classify(inst)
        cells[(region, part, kind)]["seconds"] += micros / 1e6
        cells[(region, part, kind)]["flops"] += inst.get("flops", 0) * count
        if region == "iteration" and kind == "matmul":
            shapes[dot_shape(table, inst)] += inst["flops"]

    steps = len(states)
    per_iteration = {}
    for part in PARTS:
        row = {}
        for kind in KINDS:
            cell = cells[("iteration", part, kind)]
            row[f"{kind}_ms"] = 1e3 * cell["seconds"] / (steps * iterations)
            if kind == "matmul":
                row["gflop"] = cell["flops"] / (steps * iterations) / 1e9
        row["ms"] = row["matmul_ms"] + row["other_ms"]
        per_iteration[part] = row
    total = sum(row["ms"] for row in per_iteration.values())
    for row in per_iteration.values():
        row["share"] = row["ms"] / total
    rest = {part: {kind: 1e3 * cells[("step", part, kind)]["seconds"] / steps for kind in KINDS}
            for part in ("rest", "mixed product", "transpose")}
    step_flops = sum(c["flops"] for c in cells.values()) / steps
    medians = {k: statistics.median(v) for k, v in walls.items()}
    result = {
        "machine": start_machine,
        "batch": batch,
        "iterations": iterations,
        "step_ms": 1e3 * medians[iterations],
        "step_ms_all": [1e3 * t for t in walls[iterations]],
        "step_gflop": step_flops / 1e9,
        "traced_op_ms_per_step": 1e3 * sum(c["seconds"] for c in cells.values()) / steps,
        "executor_overhead_ms_per_step": 1e3 * overhead / steps,
        "per_iteration": per_iteration,
        "per_iteration_op_ms": total,
        "rest_of_step_op_ms": rest,
        "largest_dot_shape": max(shapes, key=shapes.get) if shapes else None,
        "xla_gflop": network_gflops(batch),
    }
    if baseline is not None:
        result["baseline_iterations"] = baseline
        result["baseline_step_ms"] = 1e3 * medians[baseline]
        result["iteration_wall_ms"] = (1e3 * (medians[iterations] - medians[baseline])
                                       / (iterations - baseline))
    if microbenchmark and shapes:
        rate = matmul_rate(result["largest_dot_shape"])
        result["microbenchmark_gflop_per_s"] = rate / 1e9
        # the step if every FLOP ran at the microbenchmark's rate and nothing else cost
        result["matmul_floor_ms"] = 1e3 * step_flops / rate
    result["machine"]["load_average_end"] = cpu_info().get("load_average")
    return result


def format_profile(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [(
        f"ACGD step, ICR DCGAN, batch {r['batch']}, {r['iterations']} CG iterations: "
        f"{r['step_ms']:.0f} ms (median), {r['step_gflop']:.1f} GFLOP in matmuls; "
        f"{m.get('cpu')} x{m['cpus']}, load {m['load_average'][0]:.1f}")]
    if "iteration_wall_ms" in r:
        lines.append(f"one CG iteration (step at {r['iterations']} minus at "
                     f"{r['baseline_iterations']}, wall): {r['iteration_wall_ms']:.0f} ms")
    lines.append(f"per CG iteration, op time over the executor threads: "
                 f"{r['per_iteration_op_ms']:.0f} ms")
    lines.append(f"{'part':<16}{'share':>7}{'ms':>8}{'matmul ms':>11}{'GFLOP':>7}"
                 f"{'GFLOP/s':>9}{'other ms':>10}")
    for part, row in r["per_iteration"].items():
        rate = row["gflop"] / row["matmul_ms"] * 1e3 if row["matmul_ms"] else float("nan")
        lines.append(f"{part:<16}{row['share']:>7.1%}{row['ms']:>8.1f}{row['matmul_ms']:>11.1f}"
                     f"{row['gflop']:>7.2f}{rate:>9.1f}{row['other_ms']:>10.1f}")
    rest = r["rest_of_step_op_ms"]
    lines.append("rest of the step, op ms: " + ", ".join(
        f"{part} {v['matmul']:.0f} matmul + {v['other']:.0f} other" for part, v in rest.items())
        + f"; executor {r['executor_overhead_ms_per_step']:.0f}")
    g = r["xla_gflop"]
    lines.append(f"XLA's count at batch {r['batch']}: forward pass of the generator "
                 f"{g['generator_forward']:.2f} GFLOP, of the discriminator "
                 f"{g['discriminator_forward']:.2f}; one mixed product alone "
                 f"{g['mixed_product']:.2f}, its transpose {g['transpose']:.2f}")
    if "microbenchmark_gflop_per_s" in r:
        lines.append(f"matmul microbenchmark {r['largest_dot_shape']}: "
                     f"{r['microbenchmark_gflop_per_s']:.1f} GFLOP/s; the step's matmuls at "
                     f"that rate alone: {r['matmul_floor_ms']:.0f} ms")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=9)
    parser.add_argument("--baseline-iterations", type=int, default=1,
                        help="second iteration count for the per-iteration wall time; "
                             "-1 skips it")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--no-microbenchmark", action="store_true")
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    baseline = None if args.baseline_iterations < 0 else args.baseline_iterations
    result = profile(args.iterations, baseline, args.batch, args.repeats,
                     not args.no_microbenchmark)
    print(format_profile(result))
    write_json(args.out, "profile_acgd.json", result)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
