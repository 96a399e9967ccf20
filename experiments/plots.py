"""Figures from saved results.

Sweeps (gan_dynamics/runners/sweep.py; Fedus et al. 2018, Figs. 10 and 11): mean final error
over seeds against the learning rate or the dimension, with its 95% bootstrap interval,
and the mean error of a freshly initialised generator (the paper's random-init
reference), one panel per model, one line per optimizer:

    python experiments/plots.py --workdir=runs/sweep_manifold_lr [--metric=w2]

writes `<workdir>/sweep_<metric>.png`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_dynamics.errors import UserError, run_main  # noqa: E402


def load_summary(workdir: str) -> dict[str, Any]:
    path = os.path.join(workdir, "summary.json")
    if not os.path.exists(path):
        raise UserError(f"No {path}: run a sweep first, e.g. python experiments/run.py "
                                f"--config=experiments/sweep_manifold_lr.py --workdir={workdir}")
    with open(path) as f:
        return json.load(f)


def plot_sweep(workdir: str, metric: str = "param_error", path: str | None = None) -> str:
    """One panel per model, one line per optimizer; shaded 95% bootstrap intervals."""
    summary = load_summary(workdir)
    axis = summary["sweep"]
    cells = summary["cells"].values()
    models = list(dict.fromkeys(cell["model"] for cell in cells))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.6), squeeze=False,
                             sharey=True)
    for ax, model in zip(axes[0], models):
        reference = {}  # x -> mean random-init error (the same for every optimizer)
        for cell in cells:
            if cell["model"] != model:
                continue
            rows = cell["rows"]
            x = [row[axis] for row in rows]
            mean = [row[metric]["mean"] for row in rows]
            low = [row[metric]["ci_low"] for row in rows]
            high = [row[metric]["ci_high"] for row in rows]
            label = cell["optimizer"] + (f" (n_disc={cell['n_disc']})" if cell["n_disc"] else "")
            (line,) = ax.plot(x, mean, marker="o", label=label)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
            reference.update({row[axis]: row[f"reference_{metric}"]["mean"] for row in rows})
        xs = sorted(reference)
        ax.plot(xs, [reference[v] for v in xs], "k--", label="random init")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.minorticks_off()
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.set_title(model)
        ax.set_xlabel("learning rate" if axis == "lr" else "dimension d")
    # Cells of earlier commands in the same workdir may have other numbers of seeds.
    seeds = sorted({cell.get("num_seeds", summary["num_seeds"]) for cell in cells})
    seeds = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    axes[0][0].set_ylabel(f"final {metric} (mean, 95% CI, {seeds} seeds)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    path = path or os.path.join(workdir, f"sweep_{metric}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="A sweep's output directory.")
    parser.add_argument("--metric", default="param_error", choices=("param_error", "w2"))
    args = parser.parse_args()
    print(plot_sweep(args.workdir, args.metric))


if __name__ == "__main__":
    run_main(main)
