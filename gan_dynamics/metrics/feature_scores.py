"""Every feature-based score from one pair of feature arrays: one network pass, any list.

An evaluation runs the feature network (the FID Inception's pool3, or a dataset
classifier's penultimate layer) once over the real and once over the generated images;
every score below is then a function of the two arrays:

  fid        Fréchet distance of Gaussians fitted to the two sets (`scores`)
  fid_inf    FID extrapolated to infinitely many samples (`fid_infinity`)
  kid        Kernel Inception Distance, mean and std over subsets (`kid`)
  precision, recall, density, coverage
             k-nearest-neighbour manifold estimates (`manifold`)

The same N on both sides. A score that compares two sample sets depends on their sizes
(FID's bias, the k-NN radii), so both arrays are cut to the smaller one's size, with a
warning that says so, and the N used is part of the result (`num_features`). Fixed
`reference_statistics` (μ, Σ of a large real set) replace the real features for `fid`
and `fid_inf` when given: FID against a dataset's statistics, as usual.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Optional, Sequence

import numpy as np

from gan_dynamics.metrics import fid_infinity as fid_infinity_lib
from gan_dynamics.metrics import kid as kid_lib
from gan_dynamics.metrics import manifold, scores

SCORES = ("fid", "fid_inf", "kid", "precision", "recall", "density", "coverage")
_MANIFOLD = ("precision", "recall", "density", "coverage")


@dataclasses.dataclass(frozen=True)
class ScoreOptions:
    """The scores' parameters (defaults: the papers' and the reference libraries')."""

    kid_subsets: int = kid_lib.DEFAULT_SUBSETS
    kid_subset_size: int = kid_lib.DEFAULT_SUBSET_SIZE
    kid_seed: int = kid_lib.DEFAULT_SEED
    precision_recall_k: int = manifold.PRECISION_RECALL_K
    density_coverage_k: int = manifold.DENSITY_COVERAGE_K
    chunk_size: int = manifold.DEFAULT_CHUNK  # block side of the k-NN and KID kernels
    product_dtype: str = "float64"  # of the k-NN distances' products; "float32": 2x faster
    fid_inf_points: int = fid_infinity_lib.DEFAULT_POINTS
    fid_inf_seed: int = 0


def check_scores(names: Sequence[str]) -> tuple[str, ...]:
    """The names, deduplicated in order; an unknown one fails with the known ones."""
    for name in names:
        if name not in SCORES:
            raise ValueError(f"Unknown score {name!r}; choose from {list(SCORES)}.")
    return tuple(dict.fromkeys(names))


def same_size(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays cut to the smaller one's length, with a warning when they differ."""
    n = min(len(real), len(fake))
    if len(real) != len(fake):
        warnings.warn(f"{len(real)} real and {len(fake)} generated features: the scores "
                      f"compare the first {n} of each (sample-size dependent scores need "
                      "the same N on both sides).", stacklevel=3)
    return real[:n], fake[:n]


def feature_scores(real: np.ndarray, fake: np.ndarray, names: Sequence[str] = SCORES,
                   options: ScoreOptions = ScoreOptions(), *,
                   reference_statistics: Optional[tuple[np.ndarray, np.ndarray]] = None,
                   ) -> dict[str, float]:
    """The scores `names` of generated features `fake` against real features `real`.

    Args:
      real, fake: (n_r, d) and (n_f, d) features of one network; cut to a common N.
      names: of SCORES.
      options: the scores' parameters.
      reference_statistics: (μ, Σ) for `fid` and `fid_inf` instead of the real features.

    Returns:
      {"num_features": N, <score>: value, ...}: `kid` adds `kid_std`, `kid_subsets` and
      `kid_subset_size`; `fid_inf` adds `fid_inf_slope` (FID_N ≈ fid_inf + slope / N).
    """
    names = check_scores(names)
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"Features must be (n, d) arrays of one d; got real {real.shape}, "
                         f"fake {fake.shape}.")
    real, fake = same_size(real, fake)
    out: dict[str, float] = {"num_features": len(fake)}
    if "fid" in names:
        reference = (reference_statistics if reference_statistics is not None
                     else scores.gaussian_statistics(real))
        out["fid"] = scores.frechet_distance(*scores.gaussian_statistics(fake), *reference)
    if "fid_inf" in names:
        reference = ({"real": real} if reference_statistics is None
                     else {"reference_statistics": reference_statistics})
        result = fid_infinity_lib.fid_infinity(fake, **reference, seed=options.fid_inf_seed,
                                               num_points=options.fid_inf_points)
        out["fid_inf"], out["fid_inf_slope"] = result.value, result.slope
    if "kid" in names:
        result = kid_lib.kernel_inception_distance(
            real, fake, num_subsets=options.kid_subsets, subset_size=options.kid_subset_size,
            seed=options.kid_seed, chunk_size=options.chunk_size)
        out.update(kid=result.mean, kid_std=result.std, kid_subsets=result.num_subsets,
                   kid_subset_size=result.subset_size)
    if set(_MANIFOLD) & set(names):
        result = manifold.manifold_scores(
            real, fake, precision_recall_k=options.precision_recall_k,
            density_coverage_k=options.density_coverage_k, chunk_size=options.chunk_size,
            product_dtype=options.product_dtype)
        out.update({name: getattr(result, name) for name in _MANIFOLD if name in names})
    return out
