"""Figures from saved results.

Sweeps (gan_dynamics/runners/sweep.py; Fedus et al. 2018, Figs. 10 and 11): mean final error
over seeds against the learning rate or the dimension, with its 95% bootstrap interval,
and the mean error of a freshly initialised generator (the paper's random-init
reference), one panel per model, one line per optimizer:

    python experiments/plots.py --workdir=runs/sweep_manifold_lr [--metric=w2]

writes `<workdir>/sweep_<metric>.png`.

Sample metrics of image runs (Fedus et al. 2018, Figs. 8 and 9): for each model (loss,
penalty and optimizer, read from each run's config.json) a box over its runs (its
hyperparameter settings) of the last evaluation of `--metric` (an `eval/` name of
metrics.jsonl or of an `eval_step_*.json` from experiments/evaluate.py: fid,
classifier_fid, classifier_is, inception_score, critic, ms_ssim), the best 10 runs as
black dots and the held-out images' value (`<metric>_test`; 0 for the critic) as a line:

    python experiments/plots.py --workdirs='runs/cifar_*' --metric=fid

writes `sample_<metric>.png` in the common parent of the workdirs (or --out).

Curves of several runs (image, synthetic or toy runs, e.g. a study's tasks): each run's
`--metric` against the step, the cumulative gradient evaluations or the wall-clock
seconds (`--x`; compilation excluded), overlaid, each curve's last point (and, for
metrics with a direction, its best) labelled with the step the score comes from:

    python experiments/plots.py --curves --workdirs='runs/studies/icr_digits/*/seed_0' \
        --metric=eval/classifier_fid --x=grad_evals

writes `curves_<metric>_<x>.png` in the common parent of the workdirs (or --out).
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


# Lower is better for distances; for ms_ssim the best is the closest to the test value.
_LOWER_IS_BETTER = ("fid", "classifier_fid")
_BEST_SHOWN = 10


def model_label(workdir: str) -> str:
    """'<loss>[+<penalty>] / <optimizer>' from the run's config.json, else the directory's
    name without its last '_' part."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return os.path.basename(os.path.normpath(workdir)).rsplit("_", 1)[0]
    with open(path) as f:
        config = json.load(f)
    loss = config["loss"]["name"] + ("" if config["loss"].get("penalty", "none") == "none"
                                     else "+" + config["loss"]["penalty"])
    opt = config["optimizer"]
    name = opt["name"]
    if name == "altgd":
        name = f"{opt.get('transform_x', {}).get('name', 'sgd')} (n_disc={opt.get('n_disc', 1)})"
    return f"{loss} / {name}"


def last_evaluation(workdir: str, metric: str) -> tuple[float, float | None] | None:
    """(value, test reference) of the run's last evaluation that has `metric`."""
    from gan_dynamics.runners.image_eval import read_evals

    evals = read_evals(workdir)
    steps = [s for s in sorted(evals) if metric in evals[s]]
    if not steps:
        return None
    row = evals[steps[-1]]
    return row[metric], (0.0 if metric == "critic" else row.get(f"{metric}_test"))


def plot_sample_metric(patterns: str, metric: str, path: str | None = None) -> str:
    """One box per model over its runs' final `metric`, best runs as dots, test line."""
    import glob

    import numpy as np

    workdirs = sorted({d for p in patterns.split(",") for d in glob.glob(p) if os.path.isdir(d)})
    groups: dict[str, list[float]] = {}
    references = []
    for workdir in workdirs:
        found = last_evaluation(workdir, metric)
        if found is None:
            continue
        groups.setdefault(model_label(workdir), []).append(found[0])
        if found[1] is not None:
            references.append(found[1])
    if not groups:
        raise UserError(f"No run matching {patterns!r} has an evaluation of {metric!r}: train "
                        "with config.eval.metrics set, or run experiments/evaluate.py "
                        f"--workdir=<run> --metrics={metric} first.")
    reference = float(np.mean(references)) if references else None
    labels = sorted(groups)
    fig, ax = plt.subplots(figsize=(1.6 * len(labels) + 2, 4))
    ax.boxplot([groups[k] for k in labels], whis=(0, 100))
    for i, label in enumerate(labels, start=1):
        values = np.asarray(groups[label])
        if metric in _LOWER_IS_BETTER:
            order = np.argsort(values)
        elif metric == "ms_ssim" and reference is not None:
            order = np.argsort(np.abs(values - reference))
        else:
            order = np.argsort(-values)
        best = values[order[:_BEST_SHOWN]]
        ax.plot(np.full(len(best), i), best, "k.", ms=6)
    if reference is not None:
        ax.axhline(reference, color="tab:red", ls="--", label="held-out data")
        ax.legend(fontsize=8)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric + (" (negative Wasserstein)" if metric == "critic" else ""))
    ax.set_title(f"{metric}: {sum(len(v) for v in groups.values())} runs, best "
                 f"{_BEST_SHOWN} per model as dots", fontsize=9)
    fig.tight_layout()
    path = path or os.path.join(os.path.commonpath(workdirs) if len(workdirs) > 1
                                else os.path.dirname(workdirs[0]), f"sample_{metric}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_run_curves(patterns: str, metric: str, x_axis: str = "step",
                    path: str | None = None) -> str:
    """Every run's `metric` against `x_axis`, one line each, with the step of the last
    (and the best) score written beside it."""
    import glob

    import numpy as np

    from gan_dynamics.runners import study_summary

    if x_axis not in ("step", "grad_evals", "wall_seconds"):
        raise UserError(f"--x={x_axis} must be step, grad_evals or wall_seconds.")
    workdirs = sorted({d for p in patterns.split(",") for d in glob.glob(p) if os.path.isdir(d)})
    runs = {d: study_summary.read_run(d, r) for d in workdirs
            if (r := study_summary.runner_of(d)) is not None}
    runs = {d: s for d, s in runs.items() if metric in s.metrics}
    if not runs:
        raise UserError(f"No run matching {patterns!r} logged {metric!r}; pass run "
                        "directories (metrics.jsonl, metrics.npz or trajectories.npz) and "
                        "a metric they log.")
    common = os.path.commonpath(list(runs)) if len(runs) > 1 else os.path.dirname(next(iter(runs)))
    how = {"min": np.nanargmin, "max": np.nanargmax}.get(study_summary.direction(metric))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for workdir, series in runs.items():
        steps, values = series.metrics[metric]
        x = study_summary.x_values(series, steps, x_axis)
        if x is None:
            raise UserError(f"{workdir} did not log {x_axis}; use --x=step.")
        (line,) = ax.plot(x, values, lw=1, label=os.path.relpath(workdir, common))
        picks = [len(values) - 1] + ([int(how(values))] if how and np.isfinite(values).any()
                                     else [])
        for i in dict.fromkeys(picks):
            ax.plot(x[i], values[i], "o", color=line.get_color(), ms=4)
            ax.annotate(f"step {int(steps[i])}", (x[i], values[i]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color=line.get_color())
    ax.set_xlabel({"step": "generator step", "grad_evals": "gradient evaluations",
                   "wall_seconds": "wall-clock seconds (compilation excluded)"}[x_axis])
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in metric)
    path = path or os.path.join(common, f"curves_{name}_{x_axis}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", help="A sweep's output directory.")
    parser.add_argument("--workdirs", help="Image runs: comma-separated glob patterns.")
    parser.add_argument("--metric", default=None,
                        help="Sweeps: param_error (default) or w2. Image runs: an eval name.")
    parser.add_argument("--out", default=None, help="Output PNG (image runs).")
    parser.add_argument("--curves", action="store_true",
                        help="With --workdirs: overlay --metric against --x for every run.")
    parser.add_argument("--x", default="step",
                        help="--curves' x axis: step, grad_evals or wall_seconds.")
    args = parser.parse_args()
    if bool(args.workdir) == bool(args.workdirs):
        raise UserError("Pass --workdir=<sweep> or --workdirs='<runs glob>', one of them.")
    if args.curves:
        if not args.workdirs or not args.metric:
            raise UserError("--curves needs --workdirs='<runs glob>' and --metric=<name>.")
        print(plot_run_curves(args.workdirs, args.metric, args.x, args.out))
        return
    if args.workdirs:
        print(plot_sample_metric(args.workdirs, args.metric or "fid", args.out))
        return
    metric = args.metric or "param_error"
    if metric not in ("param_error", "w2"):
        raise UserError(f"--metric={metric} of a sweep must be param_error or w2.")
    print(plot_sweep(args.workdir, metric))


if __name__ == "__main__":
    run_main(main)
