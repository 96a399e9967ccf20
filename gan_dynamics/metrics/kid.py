"""Kernel Inception Distance: the unbiased MMD² of features under a cubic polynomial kernel.

Bińkowski et al. 2018 ("Demystifying MMD GANs", Sec. 4) score a generator by the squared
maximum mean discrepancy between the Inception features of real and generated images,
with the kernel

    k(x, y) = (xᵀy / d + 1)³          (d: the feature dimension),

estimated without bias (Gretton et al. 2012, "A Kernel Two-Sample Test", Lemma 6) on
subsets X (generated) and Y (real) of m features each:

    MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1))
             - 2 Σ_{i,j} k(x_i, y_j) / m².

KID is the mean of MMD²_u over `num_subsets` random subset pairs (100 of m = 1000 as
usual; m = the smaller set's size when a set is smaller), reported with the standard
deviation over the subsets. Unlike FID its estimate has no bias in the number of
samples, so values at different N compare; it can be slightly negative.

The subsets are those torch-fidelity draws (`np.random.RandomState(seed)`, per subset
first m generated then m real indices without replacement; its default seed 2020), which
are also clean-fid's under `np.random.seed(seed)`: the same features give the same
subsets, and the values agree with both libraries to rounding.

Two ways to the same sums, in float64 on the host, picked by their cost:
- per subset: three m x m kernel matrices (cost ≈ 4 S m² d for S subsets);
- by blocks: the kernel matrices of the whole sets, a `chunk_size` square block at a
  time (the symmetric ones as their upper triangle of blocks), each block summed over
  every subset at once by products with the subsets' 0/1 membership matrices (cost ≈
  (n_x + n_y)² d (1 + S/d)). With 5000 features a side, 100 subsets of 1000, this is a
  quarter of the per-subset work.
The features are converted to float64 a block (or a subset) at a time: the memory besides
the caller's features is O(chunk_size (chunk_size + d) + n S), or O(m (m + d)).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000
DEFAULT_SEED = 2020  # torch-fidelity's default `rng_seed`
DEFAULT_CHUNK = 1024


class KID(NamedTuple):
    """KID's mean and standard deviation over the subsets, and the subsets used."""

    mean: float
    std: float
    num_subsets: int
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³ for the rows of float64 x (n, d) and y (m, d): (n, m)."""
    k = x @ y.T  # one BLAS call; x @ x.T is a symmetric rank-k update
    k /= x.shape[1]
    k += 1.0
    return k * k * k


def subset_indices(num_fake: int, num_real: int, num_subsets: int, subset_size: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """((S, m) generated, (S, m) real) row indices: torch-fidelity's draws (module docstring)."""
    rng = np.random.RandomState(seed)
    fake, real = [], []
    for _ in range(num_subsets):
        fake.append(rng.choice(num_fake, subset_size, replace=False))
        real.append(rng.choice(num_real, subset_size, replace=False))
    return np.stack(fake), np.stack(real)


def _rows(x: np.ndarray, idx) -> np.ndarray:
    """x[idx] in float64 (the features are converted a block or a subset at a time)."""
    return np.asarray(x[idx], np.float64)


def _sums_per_subset(x: np.ndarray, ix: np.ndarray, y: np.ndarray, iy: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Σ_{i≠j} k(x_i, x_j), Σ_{i≠j} k(y_i, y_j), Σ_{i,j} k(x_i, y_j)) per subset, directly."""
    sums = np.zeros((3, ix.shape[0]))
    for s, (a, b) in enumerate(zip(ix, iy)):
        xs, ys = _rows(x, a), _rows(y, b)
        kxx, kyy = polynomial_kernel(xs, xs), polynomial_kernel(ys, ys)
        sums[:, s] = (kxx.sum() - np.trace(kxx), kyy.sum() - np.trace(kyy),
                      polynomial_kernel(xs, ys).sum())
    return sums[0], sums[1], sums[2]


def _membership(n: int, idx: np.ndarray) -> np.ndarray:
    """(n, S) 0/1 matrix: row i, column s is 1 when subset s holds row i."""
    m = np.zeros((n, idx.shape[0]))
    m[idx.T, np.arange(idx.shape[0])] = 1.0  # subsets draw without replacement
    return m


def _symmetric_sums(x: np.ndarray, mx: np.ndarray, chunk: int) -> np.ndarray:
    """Σ_{i≠j in s} k(x_i, x_j) per subset, over the upper triangle of chunk blocks."""
    total = np.zeros(mx.shape[1])
    for a in range(0, len(x), chunk):
        xa, ma = _rows(x, slice(a, a + chunk)), mx[a:a + chunk]
        k = polynomial_kernel(xa, xa)
        # Σ_{i,j∈A∩s} k_ij = Σ_i m_is (K m)_is; the diagonal k_ii is not a pair of two.
        total += np.einsum("is,is->s", ma, k @ ma) - ma.T @ np.diagonal(k)
        for b in range(a + chunk, len(x), chunk):
            k = polynomial_kernel(xa, _rows(x, slice(b, b + chunk)))
            total += 2.0 * np.einsum("is,is->s", ma, k @ mx[b:b + chunk])
    return total


def _cross_sums(x: np.ndarray, mx: np.ndarray, y: np.ndarray, my: np.ndarray,
                chunk: int) -> np.ndarray:
    """Σ_{i∈s, j∈s} k(x_i, y_j) per subset, over chunk blocks."""
    total = np.zeros(mx.shape[1])
    for a in range(0, len(x), chunk):
        xa, ma = _rows(x, slice(a, a + chunk)), mx[a:a + chunk]
        for b in range(0, len(y), chunk):
            k = polynomial_kernel(xa, _rows(y, slice(b, b + chunk)))
            total += np.einsum("is,is->s", ma, k @ my[b:b + chunk])
    return total


def _sums_by_blocks(x: np.ndarray, ix: np.ndarray, y: np.ndarray, iy: np.ndarray,
                    chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mx, my = _membership(len(x), ix), _membership(len(y), iy)
    return (_symmetric_sums(x, mx, chunk), _symmetric_sums(y, my, chunk),
            _cross_sums(x, mx, y, my, chunk))


def _check_features(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"Features must be (n, d) arrays of one d; got real {real.shape}, "
                         f"fake {fake.shape}.")
    if min(len(real), len(fake)) < 2:
        raise ValueError(f"KID needs at least 2 features a side; got {len(real)} real, "
                         f"{len(fake)} generated.")
    return real, fake


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *,
                              num_subsets: int = DEFAULT_SUBSETS,
                              subset_size: int = DEFAULT_SUBSET_SIZE,
                              seed: int = DEFAULT_SEED, chunk_size: int = DEFAULT_CHUNK,
                              method: str = "auto") -> KID:
    """KID of generated features `fake` (n_f, d) against real features `real` (n_r, d).

    Args:
      real, fake: features (any float dtype; computed in float64).
      num_subsets: subset pairs averaged over.
      subset_size: m, lowered to min(n_r, n_f) when a set is smaller (reported).
      seed: of the subsets' draws (torch-fidelity's scheme; module docstring).
      chunk_size: block side of the "blocks" computation (memory O(chunk_size²)).
      method: "subsets", "blocks" or "auto" (the one with fewer operations); the same
        value either way, up to rounding.

    Returns:
      KID(mean, std (population, over subsets), num_subsets, subset_size).
    """
    real, fake = _check_features(real, fake)
    if num_subsets < 1 or subset_size < 2 or chunk_size < 1:
        raise ValueError(f"KID needs num_subsets >= 1, subset_size >= 2, chunk_size >= 1; got "
                         f"{num_subsets}, {subset_size}, {chunk_size}.")
    if method not in ("auto", "subsets", "blocks"):
        raise ValueError(f"method must be 'auto', 'subsets' or 'blocks'; got {method!r}.")
    m = min(subset_size, len(real), len(fake))
    ix, iy = subset_indices(len(fake), len(real), num_subsets, m, seed)
    if method == "auto":
        d = real.shape[1]
        by_blocks = (len(fake) + len(real)) ** 2 * (1.0 + num_subsets / d)
        method = "blocks" if by_blocks < 4.0 * num_subsets * m * m else "subsets"
    if method == "blocks":
        sxx, syy, sxy = _sums_by_blocks(fake, ix, real, iy, chunk_size)
    else:
        sxx, syy, sxy = _sums_per_subset(fake, ix, real, iy)
    mmd2 = (sxx + syy) / (m * (m - 1)) - 2.0 * sxy / (m * m)
    return KID(float(np.mean(mmd2)), float(np.std(mmd2)), num_subsets, m)
