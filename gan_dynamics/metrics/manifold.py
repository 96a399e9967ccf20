"""Precision, recall, density and coverage: k-nearest-neighbour estimates of the two manifolds.

Each feature set estimates its distribution's support as the union of balls around its
points, the ball of x reaching its k-th nearest neighbour in its own set (radius
r_k(x); x itself does not count).

- Precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric
  for Assessing Generative Models", Sec. 2, Eq. 1-2; k = 3): precision is the fraction
  of generated features inside the real manifold, ∃ real y: ‖x - y‖ ≤ r_k(y); recall the
  fraction of real features inside the generated manifold.
- Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models"; k = 5): density = 1/(k M) Σ_j Σ_i 1[‖x_j - y_i‖ < r_k(y_i)] counts
  how many real balls hold each of the M generated x_j (about 1 when the distributions
  agree; not bounded by 1); coverage is the fraction of real y_i whose ball holds some
  generated x_j.

Ties follow the papers' released code, as torch-fidelity (precision and recall) and the
`prdc` package (density and coverage) do: ≤ for precision and recall, < for density and
coverage. They matter only for features at exactly equal distances.

Computation. The radii and the memberships need three matrices of pairwise distances
(real-real, fake-fake, real-fake); none is ever held whole. They are computed in
`chunk_size` square blocks of squared distances ‖x‖² + ‖y‖² - 2 xᵀy, in float64 on the
host, after subtracting one shared vector from both sets (distances do not change, the
cancellation in that formula shrinks). Within a set only the upper triangle of blocks is
computed; each block updates the running k + 1 smallest distances of its rows and of its
columns. The features are read a block of rows at a time (converted there), so the
memory besides the caller's features is O(chunk_size (chunk_size + d) + n k).

The matrix products xᵀy are the whole cost. In float64 (the default) a distance is
exact to about 1e-15 of ‖x‖²; `product_dtype="float32"` takes them in float32, as
torch-fidelity's `torch.cdist` of float32 features does, at twice the speed on CPUs:
the distance is then exact to about 1e-6 of ‖x‖² (the norms, the sums and the counts stay
float64), and a comparison can differ from float64's only for a pair whose distance is
that close to a radius.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DEFAULT_CHUNK = 1024
PRECISION_RECALL_K = 3  # Kynkäänniemi et al.
DENSITY_COVERAGE_K = 5  # Naeem et al.
PRODUCT_DTYPES = ("float64", "float32")


class ManifoldScores(NamedTuple):
    """The four scores, and the neighbourhood sizes they used."""

    precision: float
    recall: float
    density: float
    coverage: float
    precision_recall_k: int
    density_coverage_k: int


def _squared_distances(x: np.ndarray, x_norms: np.ndarray, y: np.ndarray,
                       y_norms: np.ndarray) -> np.ndarray:
    """‖x_i - y_j‖² (len(x), len(y)) in float64, clipped at 0 against rounding; the
    product xᵀy in the features' dtype."""
    d2 = (x @ y.T).astype(np.float64, copy=False)
    d2 *= -2.0
    d2 += x_norms[:, None]
    d2 += y_norms[None, :]
    return np.maximum(d2, 0.0, out=d2)


def _keep_smallest(best: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Per row, the best.shape[1] smallest values of `best` and `block` together (unsorted)."""
    both = np.concatenate([best, block], axis=1)
    keep = best.shape[1]
    return np.partition(both, keep - 1, axis=1)[:, :keep]


class _Blocks(NamedTuple):
    """A feature set read `chunk` rows at a time, shifted, in `dtype`; its squared norms."""

    features: np.ndarray
    shift: np.ndarray
    chunk: int
    dtype: type
    norms: np.ndarray

    def __len__(self) -> int:
        return len(self.features)

    def starts(self, first: int = 0) -> range:
        return range(first, len(self.features), self.chunk)

    def rows(self, start: int) -> np.ndarray:
        rows = self.features[start:start + self.chunk] - self.shift  # float64
        return rows.astype(self.dtype, copy=False)


def _blocks(features: np.ndarray, shift: np.ndarray, chunk: int, dtype: type) -> _Blocks:
    blocks = _Blocks(features, shift, chunk, dtype, np.empty(len(features)))
    for start in blocks.starts():
        x = blocks.rows(start).astype(np.float64)  # the norms of the rows as multiplied
        blocks.norms[start:start + chunk] = np.einsum("ij,ij->i", x, x)
    return blocks


def _squared_knn_radii(blocks: _Blocks, ks: tuple[int, ...]) -> np.ndarray:
    """(n, len(ks)) squared distance of every row to its k-th nearest other row, per k."""
    n, c = len(blocks), blocks.chunk
    keep = max(ks) + 1  # a row's distance to itself, 0, is its 0-th neighbour
    best = np.full((n, keep), np.inf)
    for a in blocks.starts():
        x = blocks.rows(a)
        for b in blocks.starts(a):
            y = x if a == b else blocks.rows(b)
            d2 = _squared_distances(x, blocks.norms[a:a + c], y, blocks.norms[b:b + c])
            if a == b:
                np.fill_diagonal(d2, 0.0)
            best[a:a + c] = _keep_smallest(best[a:a + c], d2)
            if a != b:
                best[b:b + c] = _keep_smallest(best[b:b + c], d2.T)
    best.sort(axis=1)
    return best[:, list(ks)]


def squared_knn_radii(features: np.ndarray, ks: tuple[int, ...],
                      chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """(n, len(ks)) squared distances of every row of `features` (n, d) to its k-th
    nearest other row, for each k in `ks` (n > max(ks)); float64, in `chunk_size` blocks."""
    features = np.asarray(features)
    shift = features.mean(axis=0, dtype=np.float64)
    return _squared_knn_radii(_blocks(features, shift, chunk_size, np.float64), ks)


def manifold_scores(real: np.ndarray, fake: np.ndarray, *,
                    precision_recall_k: int = PRECISION_RECALL_K,
                    density_coverage_k: int = DENSITY_COVERAGE_K,
                    chunk_size: int = DEFAULT_CHUNK,
                    product_dtype: str = "float64") -> ManifoldScores:
    """Precision, recall (k = `precision_recall_k`), density and coverage (k =
    `density_coverage_k`) of generated features `fake` (M, d) against real `real` (N, d).

    Any float dtype; each set needs more than k features. `product_dtype` "float32"
    computes the matrix products of the distances in float32, as torch-fidelity and
    pytorch's cdist do, at twice float64's speed on CPUs (module docstring).
    """
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"Features must be (n, d) arrays of one d; got real {real.shape}, "
                         f"fake {fake.shape}.")
    k_pr, k_dc = precision_recall_k, density_coverage_k
    if product_dtype not in PRODUCT_DTYPES:
        raise ValueError(f"product_dtype must be one of {list(PRODUCT_DTYPES)}; got "
                         f"{product_dtype!r}.")
    if min(k_pr, k_dc) < 1 or chunk_size < 1:
        raise ValueError(f"k and chunk_size must be >= 1; got precision_recall_k={k_pr}, "
                         f"density_coverage_k={k_dc}, chunk_size={chunk_size}.")
    if min(len(real), len(fake)) <= max(k_pr, k_dc):
        raise ValueError(f"A k-nearest-neighbour radius needs more than k = "
                         f"{max(k_pr, k_dc)} features a side; got {len(real)} real, "
                         f"{len(fake)} generated.")
    shift = real.mean(axis=0, dtype=np.float64)
    dtype = np.dtype(product_dtype).type
    real, fake = (_blocks(x, shift, chunk_size, dtype) for x in (real, fake))
    real_pr, real_dc = _squared_knn_radii(real, (k_pr, k_dc)).T
    (fake_pr,) = _squared_knn_radii(fake, (k_pr,)).T

    c = chunk_size
    in_real_manifold = np.zeros(len(fake), bool)   # precision
    real_balls_holding = np.zeros(len(fake))      # density
    in_fake_manifold = np.zeros(len(real), bool)   # recall
    covered = np.zeros(len(real), bool)            # coverage
    for a in real.starts():
        x, rows = real.rows(a), slice(a, a + c)
        for b in fake.starts():
            cols = slice(b, b + c)
            d2 = _squared_distances(x, real.norms[rows], fake.rows(b), fake.norms[cols])
            in_real_manifold[cols] |= (d2 <= real_pr[rows, None]).any(axis=0)
            in_fake_manifold[rows] |= (d2 <= fake_pr[None, cols]).any(axis=1)
            inside = d2 < real_dc[rows, None]
            real_balls_holding[cols] += inside.sum(axis=0)
            covered[rows] |= inside.any(axis=1)
    return ManifoldScores(
        precision=float(in_real_manifold.mean()), recall=float(in_fake_manifold.mean()),
        density=float(real_balls_holding.sum() / (k_dc * len(fake))),
        coverage=float(covered.mean()), precision_recall_k=k_pr, density_coverage_k=k_dc)
