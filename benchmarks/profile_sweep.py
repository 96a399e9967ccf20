"""Where the sweep's training step spends its time: a profiler trace of the compiled chunk.

The program profiled is the one `gan_dynamics.runners.sweep` runs: one group of runs
(`--group` seeds vmapped together) advancing `--steps` steps of Fedus et al.'s Exp I at the
defaults of experiments/synthetic_manifold.py (d = 10, hidden 32, batch 64, NS-GAN,
alternating Adam with n_disc = 5). `jax.profiler` records every executed HLO instruction;
each instruction's exclusive time goes to one category:

- matmuls: `dot` instructions and the fusions XLA:CPU hands to its matmul library;
- random numbers: everything traced under jax.random (key splits and fold-ins, the bits,
  the normal transform);
- activation-sized elementwise: other fusions with a batch axis (the MLP's bias, ReLU and
  loss in the forward and backward passes, the samples mu + w z);
- parameter-sized elementwise: other fusions without one (Adam's updates, gradient and
  error summaries);
- layout copies: copy and transpose instructions;
- loop and executor overhead: time in while loops and the executor outside any instruction.

Matmul FLOPs are counted from each dot's shapes; elementwise bytes as every operand read
and the result written once. Both are set against a microbenchmark of the same shapes
(`peak_rates`): a batched matmul shaped like the step's largest, and an elementwise
multiply-add over arrays of the step's activation size.

    python benchmarks/profile_sweep.py [--group=1000] [--steps=10] [--prng=threefry2x32]

Prints a table and writes profile_sweep.json to --out (default runs/benchmarks/;
`--out=benchmarks/results` updates the committed file).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import math
import os
import re
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from experiments import synthetic_manifold  # noqa: E402
from gan_dynamics.runners import synthetic_train  # noqa: E402

CATEGORIES = ("matmuls", "random numbers", "activation-sized elementwise",
              "parameter-sized elementwise", "layout copies", "loop and executor overhead")
RANDOM = re.compile(r"jit\(_normal|jit\(_uniform|threefry|random_bits|_fold_in|_split|"
                    r"rng_bit_generator|random_wrap|random_unwrap|jit\(_randint")
SHAPE = re.compile(r"([a-z]+[0-9]*)\[([0-9,]*)\]")
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+?|\(.*?\)) ([\w\-]+)\((.*?)\)(.*)$")


def best_time(fn, *args, repeats: int = 5) -> float:
    """The fastest of `repeats` timed calls (after one untimed call): the least disturbed by
    other processes on a shared machine."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def _size(shape_text: str) -> tuple[int, int]:
    """(elements, bytes) of an HLO shape such as f32[128,64,32]{2,1,0} (tuples summed)."""
    elements = nbytes = 0
    for dtype, dims in SHAPE.findall(shape_text):
        n = math.prod(int(d) for d in dims.split(",") if d) if dims else 1
        width = int(re.sub(r"\D", "", dtype) or 8) // 8 if dtype != "pred" else 1
        elements, nbytes = elements + n, nbytes + n * max(width, 1)
    return elements, nbytes


def parse_hlo(text: str) -> dict[str, dict[str, Any]]:
    """name -> opcode, result shape, operands, op_name and (dots) FLOPs per execution."""
    table = {}
    fused_dots: dict[str, int] = {}
    computation = None
    for line in text.splitlines():
        # computations start unindented (their parameter lists may hold "/*index=5*/"
        # comments), instructions are indented
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header and not line.startswith(" "):
            computation = header.group(1)
            continue
        match = INSTRUCTION.match(line)
        if not match:
            continue
        name, shape, opcode, operands, rest = match.groups()
        op_name = re.search(r'op_name="([^"]*)"', rest)
        table[name] = {"opcode": opcode, "shape": shape, "computation": computation,
                       "operands": re.findall(r"%([\w.\-]+)", operands),
                       "op_name": op_name.group(1) if op_name else "",
                       "calls": (re.search(r"calls=%([\w.\-]+)", rest) or [None, None])[1],
                       "rest": rest}
    for inst in table.values():
        if inst["opcode"] != "dot":
            continue
        lhs = table.get(inst["operands"][0])
        contracting = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", inst["rest"])
        if lhs is None or contracting is None:
            continue
        dims = [int(d) for d in SHAPE.search(lhs["shape"]).group(2).split(",") if d]
        k = math.prod(dims[int(i)] for i in contracting.group(1).split(",") if i)
        inst["flops"] = 2 * _size(inst["shape"])[0] * k
        fused_dots[inst["computation"]] = fused_dots.get(inst["computation"], 0) + inst["flops"]
    for inst in table.values():
        if inst["opcode"] == "fusion" and inst["calls"] in fused_dots:
            inst["flops"] = fused_dots[inst["calls"]]
    return table


def categorise(inst: dict[str, Any], batch: int) -> str:
    if inst.get("flops"):
        return "matmuls"
    if RANDOM.search(inst["op_name"]):
        return "random numbers"
    if inst["opcode"] in ("copy", "transpose") or re.match(r"(copy|transpose)", inst["opcode"]):
        return "layout copies"
    if inst["opcode"] in ("while", "conditional", "call", "tuple", "get-tuple-element",
                          "parameter", "constant", "bitcast"):
        return "loop and executor overhead"
    dims = [int(d) for _, ds in SHAPE.findall(inst["shape"]) for d in ds.split(",") if d]
    return ("activation-sized elementwise" if batch in dims[1:] or 2 * batch in dims[1:]
            else "parameter-sized elementwise")


def exclusive_times(events: list[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    """name -> (exclusive microseconds summed, count) of the trace's complete events."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    def close(stack: list[list[Any]]) -> None:
        event, children = stack.pop()
        totals[event["name"]][0] += event["dur"] - children
        totals[event["name"]][1] += 1
        if stack:
            stack[-1][1] += event["dur"]

    for thread in by_thread.values():
        thread.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[list[Any]] = []  # [event, time of its children]
        for e in thread:
            while stack and stack[-1][0]["ts"] + stack[-1][0]["dur"] <= e["ts"]:
                close(stack)
            stack.append([e, 0.0])
        while stack:
            close(stack)
    return {name: (t, int(c)) for name, (t, c) in totals.items()}


def step_program(group: int, steps: int, prng: str):
    """The compiled advance of `group` vmapped runs over `steps` steps, and its carry."""
    config = synthetic_manifold.get_config()
    config.init = "random"
    config.steps = config.log_every = steps
    fns = synthetic_train.make_chunk_fns(config, 1)
    lr = jnp.float32(config.optimizer.lr)
    keys = jax.vmap(lambda i: synthetic_train.seed_key(0, i, prng))(jnp.arange(group))
    carry = jax.jit(jax.vmap(lambda k: fns.start(k, lr)[0]))(keys)
    advance = jax.jit(jax.vmap(lambda c: fns.advance(c, jnp.int32(0), lr)[0]))
    return advance.lower(carry).compile(), carry, config


def peak_rates(group: int, batch: int, dim: int, hidden: int) -> dict[str, float]:
    """This machine's rates at the step's shapes: a batched matmul (group, batch, dim) x
    (group, dim, hidden) in FLOP/s (the step's hidden layer), an elementwise
    multiply-add-max over (group, batch, hidden) arrays in bytes/s (3 reads, 1 write), and
    a large square matmul for scale."""
    key = jax.random.key(0)
    a = jax.random.normal(key, (group, batch, dim))
    b = jax.random.normal(key, (group, dim, hidden))
    batched = jax.jit(lambda a, b: jnp.einsum("sbi,sih->sbh", a, b))
    x, y, z = (jax.random.normal(k, (group, batch, hidden))
               for k in jax.random.split(key, 3))
    fma = jax.jit(lambda x, y, z: jnp.maximum(x * y + z, 0.0))
    big = jax.random.normal(key, (2048, 2048))
    square = jax.jit(lambda m: m @ m)
    return {
        "batched_matmul_flops": 2 * group * batch * dim * hidden / best_time(batched, a, b),
        "elementwise_bytes_per_s": 4 * x.nbytes / best_time(fma, x, y, z),
        "square_matmul_flops": 2 * 2048 ** 3 / best_time(square, big, repeats=3),
    }


def profile(group: int, steps: int, prng: str) -> dict[str, Any]:
    """Per-category time, FLOPs and bytes of one compiled chunk, and the achieved rates."""
    compiled, carry, config = step_program(group, steps, prng)
    seconds = best_time(compiled, carry)
    table = parse_hlo(compiled.as_text())
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
        jax.block_until_ready(compiled(carry))
        jax.profiler.stop_trace()
        path = sorted(glob.glob(os.path.join(trace_dir, "**", "*.json.gz"), recursive=True))[-1]
        with gzip.open(path) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times = exclusive_times(events)
    per = {c: {"seconds": 0.0, "flops": 0.0, "bytes": 0.0} for c in CATEGORIES}
    for name, (micros, count) in times.items():
        if name in table:
            inst = table[name]
            category = categorise(inst, int(config.batch))
            per[category]["seconds"] += micros / 1e6
            per[category]["flops"] += inst.get("flops", 0) * count
            if category.endswith("elementwise") or category == "random numbers":
                operands = sum(_size(table[o]["shape"])[1] for o in inst["operands"] if o in table)
                per[category]["bytes"] += (operands + _size(inst["shape"])[1]) * count
        elif name.startswith("ThunkExecutor::Execute") and "wait" not in name:
            per["loop and executor overhead"]["seconds"] += micros / 1e6
    traced = sum(c["seconds"] for c in per.values())
    for c in per.values():
        c["fraction"] = c["seconds"] / traced if traced else float("nan")
        c["flops_per_s"] = c["flops"] / c["seconds"] if c["seconds"] and c["flops"] else None
        c["bytes_per_s"] = c["bytes"] / c["seconds"] if c["seconds"] and c["bytes"] else None
    return {"group": group, "steps": steps, "prng": prng, "seconds": seconds,
            "seed_steps_per_s": group * steps / seconds, "traced_op_seconds": traced,
            "categories": per,
            "peak": peak_rates(group, int(config.batch), int(config.dim), int(config.hidden))}


def format_profile(result: dict[str, Any]) -> str:
    peak = result["peak"]
    lines = [f"group {result['group']} seeds, {result['steps']} steps, {result['prng']}: "
             f"{result['seconds'] * 1e3:.1f} ms ({result['seed_steps_per_s']:,.0f} seed-steps/s); "
             f"op time traced {result['traced_op_seconds'] * 1e3:.1f} ms (both threads)",
             f"{'category':<30} {'share':>6} {'ms':>8} {'GFLOP/s':>8} {'GB/s':>6} {'of peak':>8}"]
    for name, c in result["categories"].items():
        rate, of_peak = "", ""
        if c["flops_per_s"]:
            rate = f"{c['flops_per_s'] / 1e9:8.1f}"
            of_peak = f"{c['flops_per_s'] / peak['batched_matmul_flops']:.0%}"
        gbs = f"{c['bytes_per_s'] / 1e9:6.1f}" if c["bytes_per_s"] else ""
        if c["bytes_per_s"] and name.endswith("elementwise"):
            of_peak = f"{c['bytes_per_s'] / peak['elementwise_bytes_per_s']:.0%}"
        lines.append(f"{name:<30} {c['fraction']:>6.0%} {c['seconds'] * 1e3:>8.1f} "
                     f"{rate:>8} {gbs:>6} {of_peak:>8}")
    lines.append(f"peak here: batched matmul {peak['batched_matmul_flops'] / 1e9:.1f} GFLOP/s, "
                 f"elementwise {peak['elementwise_bytes_per_s'] / 1e9:.1f} GB/s, 2048² matmul "
                 f"{peak['square_matmul_flops'] / 1e9:.0f} GFLOP/s")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--group", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prng", default="threefry2x32")
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    result = profile(args.group, args.steps, args.prng)
    result["load_average"] = os.getloadavg()
    print(format_profile(result))
    write_json(args.out, "profile_sweep.json", result)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
