"""Sample-based scores of image generators: Inception Score and Fréchet Inception Distance.

Both are computed in float64 numpy on the host from a feature extractor's outputs (the
extractor itself, `metrics.inception`, runs jitted on the devices).

- Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 4):
  IS = exp E_x KL(p(y|x) ‖ p(y)). As in their released code, the N samples are cut into
  `splits` consecutive parts; in each part p(y) is the part's mean of the softmaxes, the
  score is exp of the mean KL, and the result is the mean and (population) standard
  deviation of the per-part scores.
- Fréchet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update
  Rule ...", Eq. 6): the squared Fréchet / 2-Wasserstein distance between Gaussians fitted
  to the pool3 features of real and generated images,
      d² = ‖μ_1 - μ_2‖² + tr Σ_1 + tr Σ_2 - 2 tr (Σ_1 Σ_2)^½.
  The means and covariances (unbiased, as `np.cov`) are those pytorch-fid computes.

The matrix square root. pytorch-fid takes `scipy.linalg.sqrtm(Σ_1 Σ_2)` of a non-symmetric
product, which is unstable and turns complex when the covariances are singular, as they
are whenever there are fewer samples than feature dimensions (2048 for Inception). Here
tr (Σ_1 Σ_2)^½ = tr (Σ_1^½ Σ_2 Σ_1^½)^½ (the two matrices are similar on the range that
matters), and Σ_1^½ Σ_2 Σ_1^½ is symmetric positive semi-definite: Σ_1^½ comes from a
symmetric eigendecomposition of Σ_1, and the trace term is the sum of the square roots of
the eigenvalues of Σ_1^½ Σ_2 Σ_1^½. In both, eigenvalues at rounding level (below
d ε max|λ|, negative ones included) are set to 0: a singular covariance's null space
then adds nothing, where the square roots of its rounding noise would add O(sqrt ε) per
null direction. Two `eigh` calls, real throughout, exact for rank-deficient covariances
up to rounding.

Reference statistics (μ, Σ of a dataset split) are cached on disk as .npz, one file per
(dataset, split, image size, feature extractor), under `default_cache_dir()`.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple, Optional

import numpy as np

from gan_dynamics import parallel
from gan_dynamics.data.images import ImageSource

# --------------------------------------------------------------------------- Inception Score


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation of exp E KL(p(y|x) ‖ p(y)) over `splits` parts.

    Args:
      logits: (N, classes) class logits of N samples (any float dtype; computed in float64).
      splits: number of consecutive parts; part i holds rows [i N // splits, (i+1) N // splits).

    Returns:
      (mean, std) over the parts, as Python floats.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, classes); got shape {logits.shape}.")
    n = logits.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits={splits} must be between 1 and the number of samples {n}.")
    # log-softmax rather than log(softmax): the same values where softmax > 0, and finite
    # where a probability underflows (its term p log p is then 0 either way).
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits:(i + 1) * n // splits]
        p = np.exp(part)
        log_marginal = np.log(p.mean(axis=0, keepdims=True))
        kl = np.sum(p * (part - log_marginal), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# ------------------------------------------------------------------- Gaussian statistics


class MomentSums(NamedTuple):
    """Running sums for a mean and covariance, shifted for accuracy.

    Sums are of x - shift (shift: the first batch's mean), so the covariance is not the
    difference of two large numbers when the features have a large mean.
    """

    count: int
    shift: np.ndarray        # (d,)
    sum: np.ndarray          # (d,)   Σ (x - shift)
    outer: np.ndarray        # (d, d) Σ (x - shift)(x - shift)ᵀ


def init_moments(dim: int) -> MomentSums:
    """Empty sums for `dim`-dimensional features."""
    return MomentSums(0, np.zeros(dim), np.zeros(dim), np.zeros((dim, dim)))


def accumulate_moments(sums: MomentSums, features: np.ndarray) -> MomentSums:
    """Add a batch (n, d) of features to the sums (float64); the batch can then be freed."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[1] != sums.sum.shape[0]:
        raise ValueError(f"features must be (n, {sums.sum.shape[0]}); got {x.shape}.")
    shift = x.mean(axis=0) if sums.count == 0 else sums.shift
    x = x - shift
    return MomentSums(sums.count + x.shape[0], shift, sums.sum + x.sum(axis=0),
                      sums.outer + x.T @ x)


def finalize_moments(sums: MomentSums) -> tuple[np.ndarray, np.ndarray]:
    """(μ, Σ): the mean and the unbiased covariance (ddof=1, as `np.cov`)."""
    n = sums.count
    if n < 2:
        raise ValueError(f"A covariance needs at least 2 samples; got {n}.")
    centred_mean = sums.sum / n
    sigma = (sums.outer - n * np.outer(centred_mean, centred_mean)) / (n - 1)
    return sums.shift + centred_mean, sigma


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(μ, Σ) of features (n, d) in float64; equal to `mean(0)` and `np.cov(rowvar=False)`."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be (n, d); got shape {features.shape}.")
    return finalize_moments(accumulate_moments(init_moments(features.shape[1]), features))


# ---------------------------------------------------------------------- Fréchet distance


def _clip_rounding(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those at rounding level (|λ| <= d ε max|λ|) set to 0.

    A zero eigenvalue comes out of `eigh` as ±O(d ε ‖A‖); its square root would add
    O(sqrt(ε ‖A‖)) per null direction to the trace, thousands of them for 2048-d features.
    """
    d = eigenvalues.shape[0]
    tol = d * np.finfo(np.float64).eps * np.max(np.abs(eigenvalues), initial=0.0)
    return np.where(eigenvalues > tol, eigenvalues, 0.0)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (rounding-level eigenvalues -> 0)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(_clip_rounding(w))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (Σ_1 Σ_2)^½ = Σ_i sqrt(λ_i(Σ_1^½ Σ_2 Σ_1^½)), rounding-level eigenvalues -> 0."""
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)  # symmetric up to rounding
    return float(np.sum(np.sqrt(_clip_rounding(eig))))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """‖μ_1 - μ_2‖² + tr Σ_1 + tr Σ_2 - 2 tr (Σ_1 Σ_2)^½, in float64.

    The value of pytorch-fid's `calculate_frechet_distance`, with the trace term from two
    symmetric eigendecompositions (module docstring), stable for singular covariances.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != mu2.shape or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"Shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
                         f"mu2 {mu2.shape}, sigma2 {sigma2.shape}.")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
                 - 2.0 * trace_sqrt_product(sigma1, sigma2))


# ------------------------------------------------------------------ reference statistics


def default_cache_dir() -> str:
    """$GAN_DYNAMICS_CACHE, else ~/.cache/gan_dynamics (weights, reference statistics)."""
    return os.environ.get("GAN_DYNAMICS_CACHE") or os.path.expanduser("~/.cache/gan_dynamics")


def reference_statistics_path(dataset: str, split: str, image_size: int, extractor: str,
                              cache_dir: Optional[str] = None) -> str:
    """Where the statistics of one dataset split under one feature extractor are cached."""
    name = f"{dataset}_{split}_{image_size}px_{extractor}.npz"
    return os.path.join(cache_dir or default_cache_dir(), "reference_statistics", name)


def statistics_of_source(source: ImageSource, features_fn: Callable[[np.ndarray], np.ndarray],
                         batch_size: int,
                         num_examples: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """(μ, Σ) of `features_fn` over the first `num_examples` images of `source` (all: None).

    Every call of `features_fn` sees a full (batch_size, H, W, C) batch (one compilation):
    the last batch is padded by repeating its final image, and the padding rows dropped.
    """
    n = source.num_examples if num_examples is None else num_examples
    if not 2 <= n <= source.num_examples:
        raise ValueError(f"num_examples={n} must be between 2 and the split's size "
                         f"{source.num_examples}.")
    sums = None
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        valid = len(idx)
        idx = np.concatenate([idx, np.full(batch_size - valid, idx[-1])])
        features = np.asarray(features_fn(source.read(idx)))[:valid]
        sums = accumulate_moments(sums or init_moments(features.shape[1]), features)
    return finalize_moments(sums)


def reference_statistics(source: ImageSource, split: str, extractor: str,
                         features_fn: Callable[[np.ndarray], np.ndarray], *,
                         batch_size: int = 200, cache_dir: Optional[str] = None,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(μ, Σ) of a whole dataset split, read from the cache or computed once and cached.

    Args:
      source: the split, as `data.images.open_dataset(name, split=split, image_size=...)`.
      split: the split's name (part of the cache key; `ImageSource` does not record it).
      extractor: a name for `features_fn` (e.g. 'inception_pool3'), part of the cache key.
      features_fn: images (B, H, W, C) in [-1, 1] -> features (B, d).
      batch_size: images per `features_fn` call.
      cache_dir: default `default_cache_dir()`.
    """
    path = reference_statistics_path(source.name, split, source.image_shape[0], extractor,
                                     cache_dir)
    cached = None
    if os.path.exists(path):
        with np.load(path) as f:
            if int(f["num_examples"]) == source.num_examples:
                cached = f["mu"], f["sigma"]
    # With several processes all compute when one has no cache (hosts may have their
    # own): `features_fn` may be a collective, an extractor whose mesh spans processes.
    if parallel.in_every_process(cached is not None):
        return cached
    mu, sigma = statistics_of_source(source, features_fn, batch_size)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"  # written whole, then renamed: no torn cache files
    np.savez(tmp, mu=mu, sigma=sigma, num_examples=source.num_examples)
    os.replace(tmp, path)
    return mu, sigma
