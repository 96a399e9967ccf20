"""What each training step communicates, and its time, on 1, 2, 4 and 8 devices.

For SimGD, AltGD (+ GAN-GP), CGD and ACGD image-GAN steps (the 16x16 digits DCGAN of
`experiments/offline_digits.py`, batch 32), the jitted step is compiled exactly as the
image runner compiles it (`runners.train_step.jit_train_step`) on a data-parallel mesh of
n devices, and the collectives in XLA's optimised program (all-reduce, all-gather,
reduce-scatter, collective-permute, all-to-all) are counted with the bytes they return:
those outside any loop (once per step) and those inside a loop body (once per solver
iteration). The minimum is one all-reduce of a player's parameter vector per
gradient and per mixed product that the step makes (a data-parallel step cannot do with
less: each such vector is a sum over the batch, so over the devices); the "min MB" column
is that, from the step's own product count. Then the step is timed.

    python benchmarks/bench_parallel.py [--devices=1,2,4,8] [--processes=1,2] [--steps=3]

Fake CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8, set here before
JAX starts) share this machine's cores, so times show the overhead of partitioning, not a
speed-up. `--processes=P` (P > 1) measures each device count n that P divides again
with P processes of n / P devices each on localhost (`jax.distributed`, gloo collectives
between the processes), launched by this script as its own subprocesses: the same
global program, with the collectives now crossing processes. Writes
bench_parallel.json (every row names its `processes`) to --out (default runs/benchmarks/;
`--out=benchmarks/results` updates the committed file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from gan_dynamics import errors, parallel  # noqa: E402
from gan_dynamics.data import images, loader  # noqa: E402
from gan_dynamics.runners import train_config, train_step  # noqa: E402

_BYTES = {"f64": 8, "f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "pred": 1, "s64": 8}
_SHAPE = re.compile(r"\b(f64|f32|bf16|f16|s32|u32|s64|pred)\[([0-9,]*)\]")


def _optimizers() -> dict:
    adam = {"name": "adam", "lr": 2e-4, "b1": 0.5, "b2": 0.999}
    return {
        "simgd": ("wgan", "none", {"name": "simgd", "transform_x": dict(adam),
                                   "transform_y": dict(adam)}),
        "altgd+gp": ("non_saturating", "gan_gp", {"name": "altgd", "transform_x": dict(adam),
                                                  "transform_y": dict(adam), "n_disc": 1,
                                                  "order": "disc_first"}),
        "cgd": ("wgan", "none", {"name": "cgd", "lr_x": 1e-3, "lr_y": 1e-3, "max_iter": 10}),
        "acgd": ("wgan", "none", {"name": "acgd", "lr_x": 1e-4, "lr_y": 1e-4, "max_iter": 10}),
    }


def digits_config(loss: str, penalty: str, optimizer: dict):
    from experiments import offline_digits

    config = offline_digits.get_config()
    train_config.set_loss(config, loss, penalty=penalty, weight=10.0)
    config.optimizer = optimizer
    return config


def noise_digits(num_examples: int = 512) -> images.ImageSource:
    data = np.random.default_rng(0).uniform(-1, 1, (num_examples, 16, 16, 1)).astype(np.float32)
    return images.ImageSource("noise", num_examples, (16, 16, 1), lambda idx: data[idx])


_COLLECTIVE = re.compile(r"\b(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)"
                         r"(-start)?\(")
_CALLEE = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)="
                     r"\{?%?([\w.\-]+(?:, ?%?[\w.\-]+)*)\}?")


def collectives(hlo: str) -> dict:
    """Collective ops and the bytes they return in an optimised HLO module.

    "step": outside every loop (run once per step; both branches of a conditional are
    counted, so alternating ACGD's is an upper bound); "loop": in the computations
    reachable from the largest while-loop body (once per solver iteration; JAX's own
    small loops such as the random-bits generator hold no collectives).
    """
    calls: dict[str, set[str]] = {}
    ops: dict[str, list[int]] = {}
    computation, bodies = None, set()
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header:
            computation = header.group(1)
            calls[computation], ops[computation] = set(), []
            continue
        if computation is None:
            continue
        for group in _CALLEE.findall(line):
            calls[computation].update(name.strip(" %") for name in group.split(","))
        bodies.update(re.findall(r"body=%?([\w.\-]+)", line))
        if _COLLECTIVE.search(line) and "-done(" not in line:
            result = line.split("=", 1)[1][:_COLLECTIVE.search(line.split("=", 1)[1]).start()]
            ops[computation].append(sum(
                _BYTES[t] * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))
                for t, dims in _SHAPE.findall(result)))
    def reachable(start: str) -> set[str]:
        seen, frontier = set(), [start]
        while frontier:
            name = frontier.pop()
            if name not in seen:
                seen.add(name)
                frontier.extend(calls.get(name, ()))
        return seen

    def total(names) -> list[int]:
        return [sum(len(ops.get(n, ())) for n in names), sum(sum(ops.get(n, ())) for n in names)]

    in_loops = [reachable(body) for body in bodies]
    # Alternating ACGD holds two solver loops (x- and y-system) of which a step runs one:
    # per iteration is the largest single loop's, not their sum.
    per_loop = [total(names) for names in in_loops]
    loop = max(per_loop, key=lambda t: t[1], default=[0, 0])
    outside = total(set(ops) - set().union(*in_loops))
    return {"step": outside, "loop": loop}


def minimum_bytes(name: str, n_x: int, n_y: int, iterations: float) -> float:
    """Parameter vectors a data-parallel step must sum over devices, in bytes (float32)."""
    if name in ("simgd", "altgd+gp"):
        return 4.0 * (n_x + n_y)  # one gradient per player
    # CGD solves the x-system (right-hand side of size n_x); ACGD alternates x and y.
    rhs = n_x if name == "cgd" else (n_x + n_y) / 2
    # gradients, the right-hand side's mixed product, then one product with each mixed
    # block for the warm-start residual and for each of the k iterations
    return 4.0 * ((n_x + n_y) + rhs + (n_x + n_y) * (1 + iterations))


def bench(name: str, loss: str, penalty: str, optimizer: dict, devices: int,
          steps: int) -> dict:
    config = digits_config(loss, penalty, optimizer)
    exp = train_config.build(config, source=noise_digits())
    mesh = parallel.make_mesh(devices)
    state, abstract = train_step.create_state(exp, config.seed, mesh)
    step_fn = train_step.jit_train_step(exp, mesh, abstract)
    batch = int(config.data.batch_size)
    batches = list(loader.device_batches(loader.step_batches(
        exp.source, 0, steps + 1, exp.n_sub, batch_size=batch, seed=config.seed), mesh))
    compiled = step_fn.lower(state, batches[0]).compile()
    comm = collectives(compiled.as_text())
    n_x = sum(x.size for x in jax.tree.leaves(state.params_x))
    n_y = sum(x.size for x in jax.tree.leaves(state.params_y))
    state, metrics = step_fn(state, batches[0])
    jax.block_until_ready(state)
    iterations = []
    start = time.perf_counter()
    for i in range(steps):
        state, metrics = step_fn(state, batches[i + 1])
        iterations.append(float(jax.device_get(metrics).get("solver_iterations", 0.0)))
    seconds = (time.perf_counter() - start) / steps
    k = float(np.mean(iterations))
    moved = comm["step"][1] + k * comm["loop"][1]
    return {
        "optimizer": name, "devices": devices, "params_x": n_x, "params_y": n_y,
        "collectives_per_step": comm["step"][0], "collective_bytes_per_step": comm["step"][1],
        "collectives_per_iteration": comm["loop"][0],
        "collective_bytes_per_iteration": comm["loop"][1], "solver_iterations": k,
        "bytes_moved": moved, "minimum_bytes": minimum_bytes(name, n_x, n_y, k),
        "ms_per_step": 1e3 * seconds,
    }


_ROWS = "rows.json"  # a worker process's rows, in the --out folder bench_processes gives it
PROCESS_TIMEOUT = 1800  # seconds for one multi-process measurement (compiles on a CPU)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def bench_processes(processes: int, devices: int, steps: int) -> list[dict]:
    """Every optimizer's row measured by `processes` processes of `devices // processes`
    CPU devices each on localhost (this script's `--worker` mode); process 0's rows."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices // processes}")
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, os.path.abspath(__file__), "--worker", f"--devices={devices}",
                f"--steps={steps}", f"--out={tmp}", f"--coordinator=localhost:{_free_port()}",
                f"--processes={processes}"]
        logs = [os.path.join(tmp, f"stderr{i}.txt") for i in range(processes)]
        procs = []
        for i, log in enumerate(logs):
            with open(log, "w") as err:  # a file, not a pipe: no process blocks on it
                procs.append(subprocess.Popen(argv + [f"--process_id={i}"], env=env,
                                              stdout=subprocess.DEVNULL, stderr=err))
        try:
            for proc in procs:
                proc.wait(timeout=PROCESS_TIMEOUT)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for i, (proc, log) in enumerate(zip(procs, logs)):
            if proc.returncode != 0:
                with open(log) as f:
                    raise RuntimeError(f"process {i} of {processes} exited with "
                                       f"{proc.returncode}:\n{f.read()[-3000:]}")
        with open(os.path.join(tmp, _ROWS)) as f:
            return json.load(f)


def worker(args: argparse.Namespace) -> None:
    """One process of `bench_processes`: JAX's distributed runtime first (before anything
    starts the backend), then every optimizer's row; process 0 writes them to --out."""
    jax.distributed.initialize(args.coordinator, int(args.processes), args.process_id)
    rows = [dict(bench(name, *spec, devices=int(args.devices), steps=args.steps),
                 processes=jax.process_count())
            for name, spec in _optimizers().items()]
    if jax.process_index() == 0:
        with open(os.path.join(args.out, _ROWS), "w") as f:
            json.dump(rows, f)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--processes", default="1",
                        help="process counts; P > 1 runs every device count P divides in P "
                             "processes on localhost")
    parser.add_argument("--steps", type=int, default=3)
    add_out_argument(parser)
    # The subprocesses of --processes=P (not for direct use).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    parser.add_argument("--process_id", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker(args)
    counts = [int(d) for d in args.devices.split(",")]
    process_counts = [int(p) for p in args.processes.split(",")]
    if max(counts) > jax.device_count():
        raise errors.UserError(f"--devices={args.devices} asks for {max(counts)} devices but "
                               f"{jax.device_count()} are visible; lower it.")
    if min(process_counts) < 1 or not any(n % p == 0 for n in counts for p in process_counts):
        raise errors.UserError(f"--processes={args.processes} divides none of --devices="
                               f"{args.devices}; each process gets devices / processes "
                               "devices (e.g. --devices=2,4 --processes=1,2).")
    rows = []
    for p in process_counts:
        for n in counts:
            if n % p:
                continue
            if p == 1:
                rows += [dict(bench(name, *spec, devices=n, steps=args.steps), processes=1)
                         for name, spec in _optimizers().items()]
            else:
                rows += bench_processes(p, n, args.steps)
    order = list(_optimizers())
    rows.sort(key=lambda r: (order.index(r["optimizer"]), r["devices"], r["processes"]))
    print(f"{'optimizer':10s} {'dev':>3s} {'proc':>4s} {'ops/step':>8s} {'MB/step':>8s} "
          f"{'ops/iter':>8s} {'MB/iter':>8s} {'iters':>5s} {'MB moved':>9s} {'min MB':>7s} "
          f"{'ms/step':>8s}")
    for r in rows:
        print(f"{r['optimizer']:10s} {r['devices']:3d} {r['processes']:4d} "
              f"{r['collectives_per_step']:8d} "
              f"{r['collective_bytes_per_step'] / 1e6:8.3f} {r['collectives_per_iteration']:8d} "
              f"{r['collective_bytes_per_iteration'] / 1e6:8.3f} {r['solver_iterations']:5.1f} "
              f"{r['bytes_moved'] / 1e6:9.3f} {r['minimum_bytes'] / 1e6:7.3f} "
              f"{r['ms_per_step']:8.1f}")
    write_json(args.out, "bench_parallel.json",
               {"jax": jax.__version__, "backend": jax.default_backend(), "rows": rows})


if __name__ == "__main__":
    errors.run_main(main)
