"""Top eigenvalues of the ICR DCGAN's game Jacobian: our Krylov-Schur against ARPACK.

    python benchmarks/bench_diagnostics.py [--batch=8] [--k=20] [--tol=1e-4]

The WGAN game of the ICR CIFAR-10 DCGAN (`models/icr_dcgan.py`, 1.86 M parameters) on a
random batch in [-1, 1] at initialisation. Both methods get the same jitted
Jacobian-vector product (one `jax.linearize` of the field, reused), the same start
vector, basis size (ncv = 2k + 1) and tolerance (ARPACK's relative residual criterion),
and look for the k eigenvalues of largest magnitude. Measured: the time of one gradient
(both players' ∇ of the game, jitted), of one product, and of each method (ours compiled
ahead of time, its compile time reported apart), the number of products each made, and
the largest relative difference between the two sets of eigenvalues.

Targets: no more products than ARPACK; the product at most 3 gradient-equivalents.
Prints a table and writes bench_diagnostics.json to --out (default runs/benchmarks/;
`--out=benchmarks/results` updates the committed file).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from gan_dynamics import objectives
from gan_dynamics.diagnostics import field, spectrum
from gan_dynamics.models import registry


def build_game(batch: int, key: jax.Array):
    """(params_x, params_y, game) of the ICR DCGAN's WGAN game on random images."""
    k_gen, k_disc, k_data, k_z = jax.random.split(key, 4)
    gen, disc = registry.get_model("icr_dcgan")
    z_dim = int(gen.z_dim)
    real = jax.random.uniform(k_data, (batch, 32, 32, 3), minval=-1.0, maxval=1.0)
    vars_x = gen.init(k_gen, jnp.zeros((1, z_dim)), train=False)
    vars_y = disc.init(k_disc, real[:1], train=False)
    px, sx = vars_x["params"], {k: v for k, v in vars_x.items() if k != "params"}
    py, sy = vars_y["params"], {k: v for k, v in vars_y.items() if k != "params"}
    z = jax.random.normal(k_z, (batch, z_dim))
    game = objectives.make_gan_game(
        "wgan", objectives.linen_apply(gen, train=True), objectives.linen_apply(disc, train=True),
        real, z, state_x=sx, state_y=sy)
    return px, py, game


def median_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # warm (compiled)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=5)
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()

    px, py, game = build_game(args.batch, jax.random.key(0))
    fg = field.flat_game(game, px, py)
    n, ncv = fg.n, 2 * args.k + 1
    field_fn = jax.jit(fg.field)
    lin = field.jitted_linearization(fg)[1]
    product = field.apply_map
    v0 = jax.random.normal(jax.random.key(1), (n,), fg.z.dtype)

    t_grad = median_time(lambda: field_fn(fg.z), args.repeats)
    t_prod = median_time(lambda: product(lin, v0), args.repeats)
    print(f"n = {n} parameters; gradient {t_grad * 1e3:.1f} ms, product {t_prod * 1e3:.1f} ms "
          f"({t_prod / t_grad:.2f} gradients)", flush=True)
    result = {
        "game": "icr_dcgan wgan", "n": n, "batch": args.batch, "k": args.k, "tol": args.tol,
        "ncv": ncv, "backend": jax.default_backend(), "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "jax": jax.__version__,
        "gradient_s": t_grad, "product_s": t_prod, "product_in_gradients": t_prod / t_grad,
    }
    # The timings survive an interrupted comparison.
    write_json(args.out, "bench_diagnostics.json", result)

    solve = jax.jit(lambda lin, v: spectrum.krylov_schur(
        lin, v, k=args.k, which="LM", ncv=ncv, tol=args.tol, max_restarts=300))
    t0 = time.perf_counter()
    compiled = solve.lower(lin, v0).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = jax.block_until_ready(compiled(lin, v0))
    t_ours = time.perf_counter() - t0
    print(f"krylov-schur: {int(ours.matvecs)} products, {t_ours:.1f} s "
          f"(+{t_compile:.1f} s compile), converged {bool(ours.converged)}", flush=True)

    t0 = time.perf_counter()
    ref = spectrum.arpack_eigs(lambda u: product(lin, jnp.asarray(u, fg.z.dtype)), n,
                               k=args.k, which="LM", ncv=ncv, tol=args.tol,
                               v0=np.asarray(v0), dtype=np.float32)
    t_arpack = time.perf_counter() - t0
    print(f"ARPACK: {ref.matvecs} products, {t_arpack:.1f} s", flush=True)

    a = np.sort_complex(np.asarray(ours.eigenvalues))
    b = np.sort_complex(np.asarray(ref.eigenvalues))
    # match each of ours to the nearest of ARPACK's (order-free)
    rel = max(float(np.min(np.abs(b - lam)) / abs(lam)) for lam in a)
    rows = [
        ("gradient (ms)", f"{t_grad * 1e3:.1f}", ""),
        ("Jacobian-vector product (ms)", f"{t_prod * 1e3:.1f}", f"{t_prod / t_grad:.2f} gradients"),
        ("products, Krylov-Schur (ours)", f"{int(ours.matvecs)}", f"restarts {int(ours.restarts)}"),
        ("products, ARPACK", f"{ref.matvecs}", ""),
        ("time, Krylov-Schur (s)", f"{t_ours:.1f}", f"compile {t_compile:.1f} s"),
        ("time, ARPACK (s)", f"{t_arpack:.1f}", ""),
        ("max rel. difference of eigenvalues", f"{rel:.1e}", ""),
    ]
    print(f"\nICR DCGAN WGAN game, n = {n}, batch {args.batch}, top {args.k} |λ|, tol "
          f"{args.tol}, ncv {ncv}, {jax.default_backend()} ({os.cpu_count()} cores)")
    for name, value, note in rows:
        print(f"  {name:<36} {value:>10}  {note}")
    result.update({
        "ours": {"products": int(ours.matvecs), "restarts": int(ours.restarts),
                 "seconds": t_ours, "compile_seconds": t_compile,
                 "converged": bool(ours.converged),
                 "eigenvalues_re": a.real.tolist(), "eigenvalues_im": a.imag.tolist()},
        "arpack": {"products": ref.matvecs, "seconds": t_arpack,
                   "eigenvalues_re": b.real.tolist(), "eigenvalues_im": b.imag.tolist()},
        "max_relative_difference": rel,
    })
    write_json(args.out, "bench_diagnostics.json", result)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
