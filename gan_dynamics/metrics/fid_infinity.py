"""FID∞: the Fréchet distance extrapolated to infinitely many samples (Chong & Forsyth 2020).

FID computed from N samples is biased upwards, and the bias depends on the generator:
Chong & Forsyth ("Effectively Unbiased FID and Inception Score and where to find them",
CVPR 2020) show that to first order in 1/N

    E FID_N = FID_∞ + c / N,

with c a property of the generator (the estimation error of the samples' covariance),
so two generators can swap ranks between N = 5000 and N = 50000. FID∞ is the intercept
of the least-squares line of FID_N against 1/N over several N: their released code takes
15 values of N evenly spaced from 5000 to 50000, N_max / 10 to N_max.

Here the FID_N are those of nested subsets: one random permutation of the samples, its
first N rows for each N (the moment sums grow from one N to the next, so the 15 values
cost one pass over the features). The reference is either
- fixed statistics (μ, Σ) of a large real set, as in the paper: only the samples' N
  varies, and the intercept removes the samples' bias; or
- real features, subsampled at the same N as the samples (a permutation of their own):
  E FID_N = FID_∞ + (c_real + c_fake) / N, and the intercept removes both biases.

The expansion is in 1/N with N large against the feature dimension d (2048 for
Inception features); with N near or below d, FID_N is not linear in 1/N and the
intercept is not FID∞.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np

from gan_dynamics.metrics import scores

DEFAULT_POINTS = 15  # Chong & Forsyth's 15 values of N


class FIDInfinity(NamedTuple):
    """FID_N ≈ value + slope / N fitted to `fids` at `sizes`."""

    value: float
    slope: float
    sizes: tuple[int, ...]
    fids: tuple[float, ...]


def extrapolate(sizes: Sequence[int], values: Sequence[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line of `values` against 1 / `sizes`."""
    x = 1.0 / np.asarray(sizes, np.float64)
    y = np.asarray(values, np.float64)
    if x.shape != y.shape or len(np.unique(x)) < 2:
        raise ValueError(f"A line in 1/N needs values at two or more distinct N; got sizes "
                         f"{list(sizes)} and {len(y)} values.")
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(intercept), float(slope)


def default_sizes(n: int, num_points: int = DEFAULT_POINTS) -> tuple[int, ...]:
    """`num_points` values of N evenly spaced from n / 10 to n (Chong & Forsyth), distinct."""
    sizes = np.unique(np.linspace(max(n // 10, 2), n, num_points).astype(np.int64))
    return tuple(int(s) for s in sizes)


def _prefix_statistics(features: np.ndarray, order: np.ndarray, sizes: Sequence[int]):
    """(μ, Σ) of features[order[:N]] for each N in `sizes` (ascending), one pass."""
    sums = scores.init_moments(features.shape[1])
    done = 0
    for n in sizes:
        sums = scores.accumulate_moments(sums, features[order[done:n]])
        done = n
        yield scores.finalize_moments(sums)


def fid_infinity(fake: np.ndarray, *, real: Optional[np.ndarray] = None,
                 reference_statistics: Optional[tuple[np.ndarray, np.ndarray]] = None,
                 sizes: Optional[Sequence[int]] = None, num_points: int = DEFAULT_POINTS,
                 seed: int = 0) -> FIDInfinity:
    """FID∞ of generated features `fake` (n, d) against `real` features or fixed statistics.

    Args:
      fake: generated features (any float dtype; statistics in float64).
      real: real features (n_r, d), subsampled at the same N as `fake`; or
      reference_statistics: (μ, Σ) of a large real set, used whole at every N.
      sizes: the N values (each between 2 and the smaller set's size); default
        `default_sizes(n)` for n the smaller set's size.
      num_points: how many N when `sizes` is not given.
      seed: of the permutations that choose the subsets.
    """
    if (real is None) == (reference_statistics is None):
        raise ValueError("Give exactly one of real= (features) or reference_statistics= (μ, Σ).")
    fake = np.asarray(fake)
    if fake.ndim != 2:
        raise ValueError(f"fake must be (n, d); got shape {fake.shape}.")
    n = len(fake) if real is None else min(len(fake), len(real))
    sizes = tuple(sorted(sizes)) if sizes is not None else default_sizes(n, num_points)
    if not sizes or sizes[0] < 2 or sizes[-1] > n:
        raise ValueError(f"Sizes must lie between 2 and {n} (the features available); "
                         f"got {list(sizes)}.")
    rng = np.random.default_rng(seed)
    fake_stats = _prefix_statistics(fake, rng.permutation(len(fake)), sizes)
    if real is None:
        real_stats = (tuple(reference_statistics) for _ in sizes)
    else:
        real = np.asarray(real)
        if real.ndim != 2 or real.shape[1] != fake.shape[1]:
            raise ValueError(f"real must be (n, {fake.shape[1]}); got shape {real.shape}.")
        real_stats = _prefix_statistics(real, rng.permutation(len(real)), sizes)
    fids = tuple(scores.frechet_distance(*f, *r) for f, r in zip(fake_stats, real_stats))
    value, slope = extrapolate(sizes, fids)
    return FIDInfinity(value, slope, sizes, fids)
