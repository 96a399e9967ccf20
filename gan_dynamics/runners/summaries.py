"""Summaries of many seeds' final values: the mean with a bootstrap interval, the median,
the fraction that diverged (shared by the sweep and mix_gaussians runners)."""

from __future__ import annotations

import numpy as np


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, num_resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite values and its percentile bootstrap interval (NaN if none)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (num_resamples, values.size)).mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Summary of final errors over seeds: mean, 95% bootstrap CI, median, diverged fraction."""
    mean, low, high = bootstrap_mean_ci(values)
    finite = np.isfinite(values)
    return {"mean": mean, "ci_low": low, "ci_high": high,
            "median": float(np.median(values[finite])) if finite.any() else float("nan"),
            "std": float(np.std(values[finite])) if finite.any() else float("nan"),
            "nonfinite_fraction": float(1 - finite.mean())}
