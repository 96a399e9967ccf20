"""A study's answer with its uncertainty: tables, paired comparisons and plots over seeds.

For every cell and every logged metric, over the cell's finished seeds: mean, standard
deviation (ddof 1), median and a 95% bootstrap interval of the mean
(`scipy.stats.bootstrap`, percentile method, 9999 resamples, fixed seed), at the last
evaluation and at the best one (for metrics with a direction: lower FID, higher IS, ...),
with the number of seeds that diverged (those are left out of the statistics and
counted). Written as `summary.csv` (one row per cell, metric and evaluation),
`summary.md` (a table per cell) and printed.

Comparisons, as in Lucic et al. 2018 ("Are GANs created equal?") and Fedus et al. 2018:

- `config.summary.compare = (A, B)`: per metric the paired difference A - B over the
  seeds both finished (seed k of A and of B share their seed), its bootstrap interval
  and a permutation test's p-value (`scipy.stats.permutation_test`, sign flips of the
  paired differences; exact when 2^n <= 9999): "A beats B by x [lo, hi], p = ...".
- plots in `plots/`: each metric against step (or gradient evaluations, or wall seconds:
  `config.summary.x_axis`) per cell, the median over seeds with the bootstrap interval
  of the median as a band (`curves_<metric>.png`); Fedus-style boxes per model over its
  runs (settings x seeds) at the last evaluation (`boxes_<metric>.png`); Lucic's expected
  best score of k settings drawn without replacement against k, per model, with the
  5-95% band of the draws (`best_of_k_<metric>.png`, when a model has several settings);
  the paired differences of the compared cells (`paired_<metric>.png`).

A model is a level of `config.summary.model_axis` (default the first axis); its settings
are the cells that share that level.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import ml_collections
import numpy as np
from scipy import stats

from gan_dynamics.errors import UserError
from gan_dynamics.runners import study
from gan_dynamics.runners.study import Task

# Metric directions by their last name component ("eval/classifier_fid" -> "classifier_fid").
LOWER_IS_BETTER = ("fid", "classifier_fid", "param_error", "w2", "mean_error", "distance")
HIGHER_IS_BETTER = ("classifier_is", "inception_score", "critic")
# Logged columns that are x axes, not metrics (wall time and cumulative cost of each row).
X_COLUMNS = {"wall_seconds": "wall_seconds", "total_grad_evals": "grad_evals"}
NOT_METRICS = ("compile_seconds",)
RESAMPLES = 9999
LEVEL = 0.95
_SEED = 0


class RunSeries(NamedTuple):
    """One finished run's logged values: metric -> (steps, values); x axis -> (steps, x)."""

    metrics: dict[str, tuple[np.ndarray, np.ndarray]]
    x: dict[str, tuple[np.ndarray, np.ndarray]]


# -- reading the runs ---------------------------------------------------------------------

def _image_evals(directory: str) -> dict[int, dict[str, float]]:
    """{step: metrics} of an image run's evaluations (the metrics package's reader)."""
    from gan_dynamics.runners.image_eval import read_evals

    return read_evals(directory)


def _columns(rows: Mapping[int, Mapping[str, float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for step in sorted(rows):
        for name, value in rows[step].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(name, []).append((step, float(value)))
    return {name: (np.array([s for s, _ in points]), np.array([v for _, v in points]))
            for name, points in out.items()}


def read_image(directory: str) -> RunSeries:
    """metrics.jsonl (losses, diagnostics, wall time, cost) and the evaluations under eval/."""
    rows: dict[int, dict[str, float]] = {}
    path = os.path.join(directory, "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                values = {k: v for k, v in row.items() if k != "step" and not k.startswith("eval/")}
                rows.setdefault(int(row["step"]), {}).update(values)
    for step, values in _image_evals(directory).items():
        rows.setdefault(step, {}).update({f"eval/{k}": v for k, v in values.items()})
    columns = _columns(rows)
    x = {axis: columns.pop(name) for name, axis in X_COLUMNS.items() if name in columns}
    for name in NOT_METRICS:
        columns.pop(name, None)
    return RunSeries(columns, x)


def read_synthetic(directory: str) -> RunSeries:
    """metrics.npz: errors and diagnostics per logged step; its grad_evals are cumulative."""
    data = np.load(os.path.join(directory, "metrics.npz"))
    step = data["step"]
    metrics = {k: (step, data[k]) for k in data.files if k not in ("step", "grad_evals")}
    return RunSeries(metrics, {"grad_evals": (step, data["grad_evals"])})


def read_toy(directory: str) -> RunSeries:
    """trajectories.npz: each entry's distance to equilibrium per step ("<entry>/distance");
    the x axis grad_evals when the config has one entry."""
    data = np.load(os.path.join(directory, "trajectories.npz"))
    entries = sorted({k.split("/")[0] for k in data.files})
    metrics, x = {}, {}
    for entry in entries:
        distance = data[f"{entry}/distance"]
        metrics[f"{entry}/distance"] = (np.arange(distance.size), distance)
    if len(entries) == 1:
        cost = np.concatenate([[0.0], data[f"{entries[0]}/grad_evals"]])
        x["grad_evals"] = (np.arange(cost.size), cost)
    return RunSeries(metrics, x)


READERS = {"image": read_image, "synthetic": read_synthetic, "toy_game": read_toy}
# The file each runner logs to: how a run's directory says which runner wrote it.
LOGS = {"image": "metrics.jsonl", "synthetic": "metrics.npz", "toy_game": "trajectories.npz"}


def runner_of(directory: str) -> str | None:
    """The runner whose log `directory` holds (None if none)."""
    return next((r for r, name in LOGS.items()
                 if os.path.exists(os.path.join(directory, name))), None)


def read_run(directory: str, runner: str) -> RunSeries:
    """The logged series of a finished run of `runner`; UserError for runners a study
    cannot summarise."""
    if runner not in READERS:
        raise UserError(f"A study of runner {runner!r} cannot be summarised (it summarises "
                        f"{sorted(READERS)}); use one of those as the base.")
    return READERS[runner](directory)


# -- statistics ---------------------------------------------------------------------------

def describe(values: Sequence[float]) -> dict[str, float]:
    """n, mean, std (ddof 1), median and the 95% percentile-bootstrap interval of the mean
    of the finite `values` (NaN where n is too small: std and interval need 2)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    nan = float("nan")
    out = {"n": int(v.size), "mean": float(v.mean()) if v.size else nan,
           "std": float(v.std(ddof=1)) if v.size > 1 else nan,
           "median": float(np.median(v)) if v.size else nan, "ci_low": nan, "ci_high": nan}
    if v.size > 1:
        low, high = _interval(v, np.mean)
        out.update(ci_low=low, ci_high=high)
    return out


def _interval(values: np.ndarray, statistic: Any, axis: int = 0) -> tuple[Any, Any]:
    if np.all(values == values.take([0], axis=axis)):  # a constant sample: no spread at all
        point = statistic(values, axis=axis)
        return point, point
    result = stats.bootstrap((values,), statistic, n_resamples=RESAMPLES, method="percentile",
                             confidence_level=LEVEL, axis=axis, vectorized=True,
                             rng=np.random.default_rng(_SEED))
    low, high = result.confidence_interval
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean of a - b over the pairs (seeds) where both are finite, its bootstrap interval
    and the two-sided permutation test's p-value of "the mean difference is 0" (random
    sign flips of each pair; exact when 2^n <= 9999)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    out = describe(a - b)
    out["p"] = float("nan")
    if a.size > 1:
        result = stats.permutation_test(
            (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
            vectorized=True, n_resamples=RESAMPLES, alternative="two-sided",
            rng=np.random.default_rng(_SEED))
        out["p"] = float(result.pvalue)
    return out


def direction(metric: str, config: Optional[ml_collections.ConfigDict] = None
              ) -> Optional[str]:
    """"min", "max" or None (no best: losses, norms) for `metric`: the study's
    `summary.lower_is_better` / `higher_is_better` first, then the built-in table."""
    short = metric.split("/")[-1]
    if config is not None:
        s = config.summary
        if metric in s.lower_is_better or short in s.lower_is_better:
            return "min"
        if metric in s.higher_is_better or short in s.higher_is_better:
            return "max"
    if short in LOWER_IS_BETTER:
        return "min"
    if short in HIGHER_IS_BETTER:
        return "max"
    return None


def last_and_best(steps: np.ndarray, values: np.ndarray, how: Optional[str]
                  ) -> dict[str, tuple[float, int]]:
    """{"last": (value, step)} and, with a direction, {"best": (value, step)} of the best
    finite value."""
    out = {"last": (float(values[-1]), int(steps[-1]))}
    finite = np.isfinite(values)
    if how is not None and finite.any():
        pick = np.nanargmin if how == "min" else np.nanargmax
        i = int(pick(np.where(finite, values, np.nan)))
        out["best"] = (float(values[i]), int(steps[i]))
    return out


# -- the table ----------------------------------------------------------------------------

class Collected(NamedTuple):
    """Every seed's run's state and, for the finished ones, its series, by run index
    (`study.runs`: the tasks, unless a cell's seeds ran in one program)."""

    states: dict[int, str]
    series: dict[int, RunSeries]


def collect(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task]
            ) -> Collected:
    """The states and series of the runs `every` (`study.runs`)."""
    states, series = {}, {}
    for run in every:
        states[run.index] = study.run_state(config, workdir, run)
        if states[run.index] == "done":
            series[run.index] = read_run(os.path.join(workdir, run.directory),
                                         config.base.runner)
    return Collected(states, series)


def metric_names(config: ml_collections.ConfigDict, collected: Collected) -> list[str]:
    """`config.summary.metrics`, else every metric a finished run logged (sorted)."""
    if config.summary.metrics:
        return list(config.summary.metrics)
    return sorted({m for s in collected.series.values() for m in s.metrics})


def table(config: ml_collections.ConfigDict, every: Sequence[Task], collected: Collected
          ) -> list[dict[str, Any]]:
    """The summary's rows: per cell, metric and evaluation (last, best) the statistics over
    the cell's finished seeds and the number of its seeds that diverged."""
    rows = []
    for cell in study.cells(config):
        members = [t for t in every if t.cell.name == cell.name]
        diverged = sum(collected.states[t.index] == "diverged" for t in members)
        for metric in metric_names(config, collected):
            how = direction(metric, config)
            picks: dict[str, list[tuple[float, int]]] = {}
            for t in members:
                run = collected.series.get(t.index)
                if run is None or metric not in run.metrics:
                    continue
                for at, pick in last_and_best(*run.metrics[metric], how).items():
                    picks.setdefault(at, []).append(pick)
            # A cell with no finished seed (all diverged, say) still gets its rows, n = 0.
            for at in ("last", "best") if how else ("last",):
                values = [v for v, _ in picks.get(at, [])]
                steps = [s for _, s in picks.get(at, [])]
                rows.append({"cell": cell.name, **dict(cell.levels), "metric": metric,
                             "at": at, "direction": how or "",
                             "step": float(np.median(steps)) if steps else float("nan"),
                             **describe(values), "diverged": diverged,
                             "seeds": len(members)})
    return rows


def comparisons(config: ml_collections.ConfigDict, every: Sequence[Task], collected: Collected
                ) -> list[dict[str, Any]]:
    """The paired differences of `config.summary.compare` (A, B), per metric and
    evaluation, with the sentence that states them."""
    pair = tuple(config.summary.compare)
    if not pair:
        return []
    names = {c.name for c in study.cells(config)}
    if len(pair) != 2 or not set(pair) <= names:
        raise UserError(f"config.summary.compare={pair!r} must name two cells of the study: "
                        f"{sorted(names)}.")
    a_name, b_name = pair
    by_seed = {(t.cell.name, t.seed): t.index for t in every}
    out = []
    for metric in metric_names(config, collected):
        how = direction(metric, config)
        for at in ("last", "best") if how else ("last",):
            values = {}
            for name in pair:
                column = []
                for seed in range(int(config.seeds)):
                    run = collected.series.get(by_seed[(name, seed)])
                    picked = (last_and_best(*run.metrics[metric], how).get(at)
                              if run is not None and metric in run.metrics else None)
                    column.append(picked[0] if picked else float("nan"))
                values[name] = column
            result = paired_difference(values[a_name], values[b_name])
            out.append({"a": a_name, "b": b_name, "metric": metric, "at": at,
                        "direction": how or "", **result,
                        "differences": [x - y for x, y in zip(values[a_name], values[b_name])],
                        "sentence": sentence(a_name, b_name, metric, at, how, result)})
    return out


def _num(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.4g}"


def sentence(a: str, b: str, metric: str, at: str, how: Optional[str],
             result: Mapping[str, float]) -> str:
    """"A beats B on <metric> (<at> evaluation) by x [lo, hi], p = ... (n seeds)"; the
    difference is stated in the better direction; without one, "A - B = x [lo, hi]"."""
    n, p = result["n"], result["p"]
    mean, low, high = result["mean"], result["ci_low"], result["ci_high"]
    tail = f", permutation test p = {_num(p)} ({n} paired seeds, 95% bootstrap interval)"
    if how is None or not math.isfinite(mean):
        return f"{a} - {b} on {metric} ({at}) = {_num(mean)} [{_num(low)}, {_num(high)}]{tail}"
    sign = -1.0 if how == "min" else 1.0  # the margin by which A is better than B
    gain, lo, hi = sign * mean, *sorted((sign * low, sign * high))
    winner, loser = (a, b) if gain >= 0 else (b, a)
    if gain < 0:
        gain, lo, hi = -gain, -hi, -lo
    better = "lower" if how == "min" else "higher"
    return (f"{winner} beats {loser} on {metric} ({at} evaluation, {better} is better) by "
            f"{_num(gain)} [{_num(lo)}, {_num(hi)}]{tail}")


# -- files --------------------------------------------------------------------------------

CSV_FIELDS = ("cell", "metric", "at", "direction", "step", "n", "mean", "std", "median",
              "ci_low", "ci_high", "diverged", "seeds")


def write_csv(rows: Sequence[Mapping[str, Any]], axes: Sequence[str], path: str) -> None:
    fields = ["cell", *axes, *CSV_FIELDS[1:]]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def markdown(config: ml_collections.ConfigDict, rows: Sequence[Mapping[str, Any]],
             compared: Sequence[Mapping[str, Any]], progress: str, plots: Sequence[str]) -> str:
    """summary.md: progress, a table per cell, the comparisons and the plots."""
    lines = ["# Study summary", "", progress, "",
             ("Over each cell's finished seeds: mean, std (ddof 1), median and the 95% "
              "bootstrap interval of the mean; diverged seeds are counted, not averaged."), ""]
    for cell in study.cells(config):
        mine = [r for r in rows if r["cell"] == cell.name]
        if not mine:
            continue
        lines += [f"## {cell.name}", "",
                  f"{mine[0]['seeds']} seeds, {mine[0]['diverged']} diverged.", "",
                  "| metric | at | step | n | mean | std | median | 95% CI |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in mine:
            lines.append(f"| {r['metric']} | {r['at']} | {_num(r['step'])} | {r['n']} | "
                         f"{_num(r['mean'])} | {_num(r['std'])} | {_num(r['median'])} | "
                         f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}] |")
        lines.append("")
    if compared:
        lines += ["## Paired comparison", ""] + [f"- {c['sentence']}" for c in compared] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"- [{os.path.basename(p)}](plots/{os.path.basename(p)})"
                                     for p in plots] + [""]
    return "\n".join(lines)


# -- plots --------------------------------------------------------------------------------

def _file_name(metric: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in metric)


def x_values(run: RunSeries, steps: np.ndarray, x_axis: str) -> Optional[np.ndarray]:
    """The x of each step: the step itself, or the run's logged wall time or cumulative
    gradient evaluations interpolated at it (None if the run did not log that axis)."""
    if x_axis == "step":
        return steps.astype(np.float64)
    if x_axis not in run.x:
        return None
    xs, values = run.x[x_axis]
    return np.interp(steps, xs, values)


def curve_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, low, high) over seeds (axis 0) at each step: the bootstrap interval of the
    median, or the median alone for a single seed."""
    median = np.median(values, axis=0)
    if values.shape[0] < 2:
        return median, median, median
    low, high = _interval(values, np.median, axis=0)
    return median, np.asarray(low), np.asarray(high)


def plot_curves(config: ml_collections.ConfigDict, every: Sequence[Task], collected: Collected,
                metric: str, path: str) -> Optional[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_axis = config.summary.x_axis
    fig, ax = plt.subplots(figsize=(6.4, 4))
    drawn = False
    for cell in study.cells(config):
        runs = [collected.series[t.index] for t in every
                if t.cell.name == cell.name and t.index in collected.series
                and metric in collected.series[t.index].metrics]
        if not runs:
            continue
        length = min(len(r.metrics[metric][0]) for r in runs)
        steps = runs[0].metrics[metric][0][:length]
        values = np.stack([r.metrics[metric][1][:length] for r in runs])
        xs = [x_values(r, steps, x_axis) for r in runs]
        if any(x is None for x in xs):
            continue
        x = np.median(np.stack(xs), axis=0)  # seeds differ in time and (ACGD) in cost
        median, low, high = curve_band(values)
        (line,) = ax.plot(x, median, label=f"{cell.name} ({len(runs)} seeds)", lw=1.2,
                          marker="o" if len(x) <= 20 else None, ms=3)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    how = direction(metric, config)
    ax.set_xlabel({"step": "generator step", "grad_evals": "gradient evaluations",
                   "wall_seconds": "wall-clock seconds (compilation excluded)"}[x_axis])
    ax.set_ylabel(metric + {"min": " (lower is better)", "max": " (higher is better)",
                            None: ""}[how])
    ax.set_title("median over seeds, 95% bootstrap band", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _models(config: ml_collections.ConfigDict) -> tuple[str, dict[str, list[str]]]:
    """The model axis and {model level: its cells' names}; each cell its own model when
    the study has no axes."""
    cells = study.cells(config)
    axes = [name for name, _ in config.axes]
    name = config.summary.model_axis or (axes[0] if axes else "")
    if name and name not in axes:
        raise UserError(f"config.summary.model_axis={name!r} is not an axis of the study: "
                        f"{axes}.")
    groups: dict[str, list[str]] = {}
    for cell in cells:
        groups.setdefault(dict(cell.levels).get(name, cell.name), []).append(cell.name)
    return name, groups


def plot_boxes(config: ml_collections.ConfigDict, rows_by_run: Mapping[str, list[float]],
               metric: str, path: str) -> Optional[str]:
    """Fedus et al. Figs. 8-9: per model a box over its runs' last values, each run a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m, v in rows_by_run.items() if v]
    if not models:
        return None
    fig, ax = plt.subplots(figsize=(1.6 * len(models) + 2, 4))
    data = [rows_by_run[m] for m in models]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(models) + 1), models, rotation=20, fontsize=8)
    for i, values in enumerate(data, start=1):
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
        ax.plot(i + np.asarray(jitter), values, "k.", ms=4)
    how = direction(metric, config)
    ax.set_ylabel(metric)  # the rest in the title: a long label is cut at the figure's edge
    ax.set_title(f"{metric} at the last evaluation"
                 + {"min": " (lower is better)", "max": " (higher is better)", None: ""}[how]
                 + "\nruns (settings x seeds) per model", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def best_of_k(scores: Sequence[float], how: str, draws: int = 2000
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lucic et al.'s budget curve: for k = 1..n settings drawn without replacement from
    `scores`, the expected best (exact, from the order statistics) and the 5% and 95%
    quantiles of the best over `draws` random draws. Returns (k, mean, low, high)."""
    s = np.sort(np.asarray(scores, np.float64))
    if how == "max":
        s = s[::-1]
    n = s.size
    ks = np.arange(1, n + 1)
    # P(the i-th best of n is the best of a random k-subset) = C(n-1-i, k-1) / C(n, k).
    mean = np.array([sum(s[i] * math.comb(n - 1 - i, k - 1) for i in range(n - k + 1))
                     / math.comb(n, k) for k in ks])
    rng = np.random.default_rng(_SEED)
    best = np.array([[(np.min if how == "min" else np.max)(rng.choice(s, k, replace=False))
                      for _ in range(draws)] for k in ks])
    return ks, mean, np.quantile(best, 0.05, axis=1), np.quantile(best, 0.95, axis=1)


def plot_best_of_k(config: ml_collections.ConfigDict, settings: Mapping[str, list[float]],
                   metric: str, path: str) -> Optional[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    how = direction(metric, config)
    models = {m: v for m, v in settings.items() if len(v) > 1}
    if how is None or not models:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for model, scores in models.items():
        ks, mean, low, high = best_of_k(scores, how)
        (line,) = ax.plot(ks, mean, marker="o", label=model)
        ax.fill_between(ks, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("number of settings tried (budget)")
    ax.set_ylabel(f"best {metric} (each setting: mean over seeds)")
    ax.set_title("expected best of k settings; band: 5-95% of draws", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_paired(compared: Sequence[Mapping[str, Any]], metric: str, path: str) -> Optional[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [c for c in compared if c["metric"] == metric]
    if not mine:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    for i, c in enumerate(mine):
        d = np.asarray(c["differences"], np.float64)
        d = d[np.isfinite(d)]
        ax.plot(np.full(d.size, i), d, "k.", ms=5)
        if math.isfinite(c["ci_low"]):
            ax.errorbar(i + 0.15, c["mean"], yerr=[[c["mean"] - c["ci_low"]],
                                                   [c["ci_high"] - c["mean"]]], fmt="o", capsize=4)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(mine)), [f"{c['at']}\np = {_num(c['p'])}" for c in mine])
    ax.set_xlim(-0.5, len(mine) - 0.5)
    ax.set_ylabel(f"{metric}: {mine[0]['a']} - {mine[0]['b']}", fontsize=8)
    ax.set_title("per seed, mean and 95% bootstrap interval", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_plots(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task],
               collected: Collected, rows: Sequence[Mapping[str, Any]],
               compared: Sequence[Mapping[str, Any]]) -> list[str]:
    directory = os.path.join(workdir, "plots")
    os.makedirs(directory, exist_ok=True)
    _, groups = _models(config)
    model_of = {cell: model for model, names in groups.items() for cell in names}
    written = []
    for metric in metric_names(config, collected):
        name = _file_name(metric)
        runs: dict[str, list[float]] = {m: [] for m in groups}
        for t in every:
            run = collected.series.get(t.index)
            if run is not None and metric in run.metrics:
                runs[model_of[t.cell.name]].append(float(run.metrics[metric][1][-1]))
        settings = {m: [r["mean"] for r in rows if r["metric"] == metric and r["at"] == "last"
                        and model_of[r["cell"]] == m and math.isfinite(r["mean"])]
                    for m in groups}
        for made in (plot_curves(config, every, collected, metric,
                                 os.path.join(directory, f"curves_{name}.png")),
                     plot_boxes(config, runs, metric, os.path.join(directory, f"boxes_{name}.png")),
                     plot_best_of_k(config, settings, metric,
                                    os.path.join(directory, f"best_of_k_{name}.png")),
                     plot_paired(compared, metric, os.path.join(directory, f"paired_{name}.png"))):
            if made:
                written.append(made)
    return written


# -- the summary --------------------------------------------------------------------------

def summarize(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task]
              ) -> dict[str, Any]:
    """Write summary.csv, summary.md and plots/ for the finished seeds of the tasks
    `every` and print summary.md; returns {"rows", "comparisons", "plots"}."""
    seeds = study.runs(config)
    collected = collect(config, workdir, seeds)
    rows = table(config, seeds, collected)
    compared = comparisons(config, seeds, collected)
    os.makedirs(workdir, exist_ok=True)
    axes = [name for name, _ in config.axes] + (["sample"] if config.num_samples else [])
    write_csv(rows, axes, os.path.join(workdir, "summary.csv"))
    plots = make_plots(config, workdir, seeds, collected, rows, compared) if rows else []
    progress = study.progress_line(config, workdir, every, ())
    text = markdown(config, rows, compared, progress, plots)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write(text)
    print(text, flush=True)
    return {"rows": rows, "comparisons": compared, "plots": plots}
