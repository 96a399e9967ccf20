"""Print the toy-game and per-step cost tables (docs/experiments.md, docs/optimizers.md).

    python experiments/readme_tables.py                        # all (~4 min on a 2-core CPU)
    python experiments/readme_tables.py --tables=bilinear,icr_quadratic

Each table is the one `experiments/run.py` prints for the command shown above it (the
toy runner runs in-process, without writing plots). `costs` is the per-step cost of every
optimizer: the first-order methods on the bilinear game, CGD and ACGD on the Dirac-GAN
without a penalty (zero-sum: conjugate gradient) and with R1 (general-sum: GMRES), and
with GMRES at two restart lengths on 100 steps of the covariance game, as
`info["grad_evals"]` reports it per step, next to the solver's iterations k and restart
cycles c (both per step), so that 4 + 2k (CG) and 4 + 2k + 2c (GMRES) can be read off.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_dynamics import optimizers  # noqa: E402
from gan_dynamics.runners import toy_run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def load_config(name: str):
    """`get_config()` of experiments/<name>.py."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _command(name: str, overrides: dict[str, object]) -> str:
    flags = "".join(f" --config.{key}={value}" for key, value in overrides.items())
    return f"python experiments/run.py --config=experiments/{name}.py{flags}"


def _set(config, key: str, value) -> None:
    *parents, leaf = key.split(".")
    for parent in parents:
        config = config[parent]
    config[leaf] = value


def toy_table(name: str, **overrides) -> str:
    """The table `run.py` prints for experiments/<name>.py with these overrides."""
    config = load_config(name)
    for key, value in overrides.items():
        _set(config, key, value)
    results, _ = toy_run.simulate_entries(config)
    return "\n".join([f"$ {_command(name, overrides)}", toy_run.table_title(config),
                      toy_run.format_table(results)])


def cost_table() -> str:
    """grad_evals per step of every optimizer, with CGD/ACGD's iterations and cycles."""
    rows = []
    bilinear = load_config("bilinear")
    results, _ = toy_run.simulate_entries(bilinear)
    rows += [(name, "bilinear", row) for name, row in results.items()
             if name not in ("cgd", "acgd")]

    # CGD/ACGD: zero-sum (CG) and general-sum (GMRES) Dirac-GAN, and GMRES with a short
    # restart on the covariance game, where the solves take several iterations.
    dirac = load_config("dirac_gan")
    solve = {"lr_x": 0.1, "lr_y": 0.1, "tol": 1e-12, "atol": 0.0, "max_iter": 20}
    dirac.optimizers = {}
    for name in ("cgd", "acgd"):
        dirac.optimizers[name] = {"optimizer": name, **solve}
        dirac.optimizers[f"{name}_r1"] = {"optimizer": name, **solve, "game": {"r1_gamma": 0.3}}
    results, _ = toy_run.simulate_entries(dirac)
    for entry, row in results.items():
        name, _, r1 = entry.partition("_")
        rows.append((name, "dirac_gan R1 0.3 (GMRES)" if r1 else "dirac_gan (CG)", row))

    covariance = load_config("covariance")
    covariance.steps = 100
    covariance.optimizers = {}
    for name in ("cgd", "acgd"):
        for restart in (20, 2):
            covariance.optimizers[f"{name}_{restart}"] = {
                "optimizer": name, "lr_x": 0.025, "lr_y": 0.025, "tol": 1e-6, "atol": 1e-12,
                "max_iter": 200, "solver": "gmres", "restart": restart}
    results, _ = toy_run.simulate_entries(covariance)
    for entry, row in results.items():
        name, _, restart = entry.partition("_")
        rows.append((name, f"covariance (GMRES, restart {restart})", row))

    order = {name: i for i, name in enumerate(optimizers.NAMES)}
    rows.sort(key=lambda r: order[r[0]])
    header = (f"{'optimizer':<14} {'game':<30} {'steps':>5} {'grad evals/step':>15} "
              f"{'k/step':>7} {'c/step':>7} {'4+2k+2c':>8}")
    lines = [header, "-" * len(header)]
    for name, game, row in rows:
        steps = row["steps"]
        per_step = row["grad_evals"] / steps
        if "solver_iterations" in row:
            k = row["solver_iterations"] / steps
            # matvecs = warm-start residual + iterations + one true residual per GMRES cycle
            c = (row["solver_matvecs"] - row["solver_iterations"]) / steps - 1
            solver = f"{k:>7.2f} {c:>7.2f} {4 + 2 * k + 2 * c:>8.2f}"
        else:
            solver = f"{'-':>7} {'-':>7} {'-':>8}"
        lines.append(f"{name:<14} {game:<30} {steps:>5d} {per_step:>15.2f} {solver}")
    return "\n".join(["$ python experiments/readme_tables.py --tables=costs"] + lines)


TABLES: dict[str, Callable[[], str]] = {
    "costs": cost_table,
    "bilinear": lambda: "\n\n".join(toy_table("bilinear", **({"game.alpha": a} if a != 1 else {}))
                                    for a in (1.0, 3.0, 6.0)),
    "icr_quadratic": lambda: toy_table("icr_quadratic"),
    "dirac_gan": lambda: toy_table("dirac_gan"),
    "covariance": lambda: toy_table("covariance"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default=",".join(TABLES),
                        help=f"comma-separated, from {list(TABLES)}")
    args = parser.parse_args()
    chosen = [t for t in args.tables.split(",") if t]
    unknown = sorted(set(chosen) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; choose from {list(TABLES)}")
    for name in chosen:
        print(f"## {name}\n{TABLES[name]()}\n", flush=True)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
