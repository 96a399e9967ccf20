"""Extreme eigenvalues of a matrix-free linear map: Krylov-Schur Arnoldi and Lanczos.

`krylov_schur` finds the k eigenvalues of a real n x n map A (given only as u ↦ A u) that
are largest by one criterion, in pure JAX (one `lax.while_loop`, jittable):

  1. Arnoldi with two passes of classical Gram-Schmidt builds A V_m = V_m H_m + β v e_mᵀ
     (m = `ncv` basis vectors). An invariant subspace found early (β ≈ 0, e.g. the
     bilinear game's eigenvalues of high multiplicity) is left by a fresh random vector
     orthogonal to the basis, so repeated eigenvalues are found too.
  2. Ritz values θ_i, vectors y_i of the small matrix H_m; the residual of a Ritz pair is
     ‖A V y − θ V y‖ = |β| |e_mᵀ y| (Saad, "Numerical Methods for Large Eigenvalue
     Problems", 2011, Ch. 6). A pair is converged when this is
     <= tol · max(|θ|, ε^{2/3}), ARPACK's criterion (Lehoucq, Sorensen & Yang 1998).
  3. Restart (Stewart 2001, "A Krylov-Schur algorithm for large eigenproblems"): keep the
     span of the p wanted Ritz vectors. In real arithmetic that is the span of their real
     and imaginary parts, with an orthonormal basis Q (r columns; r = p, or p + 1 when a
     complex pair is split). Then A (V Q) = (V Q)(Qᵀ H Q) + β v (e_mᵀ Q), a Krylov
     decomposition of size r whose residual row is β e_mᵀ Q; Arnoldi continues from it.
     Stewart's method keeps a reordered Schur form; the projected matrix Qᵀ H Q here is
     the same up to an orthogonal change of basis inside the kept space.

For a symmetric map (`symmetric=True`) the projected matrix is symmetric (tridiagonal up
to rounding), `eigh` replaces `eig` and the Ritz vectors are the kept basis directly:
this is thick-restart Lanczos with full reorthogonalisation (Wu & Simon 2000), `lanczos`.

Criteria (`which`): "LM" largest |λ|, "LR" largest Re λ, "SR" smallest Re λ, "LI" largest
|Im λ| (conjugate pairs together, as ARPACK's "LI"), "LA"/"SA" largest/smallest
(symmetric), "BE" both ends (symmetric: half from each end). Every product with A is
counted (`matvecs`).

`arpack_eigs` runs scipy's ARPACK (`scipy.sparse.linalg.eigs`/`eigsh`) on the same
product: the reference, and a fallback outside jit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array
Matvec = Callable[[Array], Array]

NONSYMMETRIC_WHICH = ("LM", "LR", "SR", "LI")
SYMMETRIC_WHICH = ("LM", "LA", "SA", "BE")


class EigResult(NamedTuple):
    """The wanted eigenvalues and how they were found (all arrays).

    Attributes:
      eigenvalues: (k,) complex (real for a symmetric map), best first by the criterion.
      residuals: (k,) residual norm estimate ‖A x − λ x‖ of each (unit) Ritz vector.
      converged: bool, every one of the k meets the tolerance.
      matvecs: int32, products with A made.
      restarts: int32, restarts made.
    """

    eigenvalues: Array
    residuals: Array
    converged: Array
    matvecs: Array
    restarts: Array


CRITERIA = ("LM", "LR", "SR", "LI", "LA", "SA", "BE")


def _score_by(theta: Array, which: str) -> Array:
    if which == "LM":
        return jnp.abs(theta)
    if which in ("LR", "LA"):
        return jnp.real(theta)
    if which in ("SR", "SA"):
        return -jnp.real(theta)
    if which == "LI":
        return jnp.abs(jnp.imag(theta))
    # "BE": alternate between the two ends of the (real) spectrum
    m = theta.shape[0]
    rank_up = jnp.argsort(jnp.argsort(-jnp.real(theta)))
    rank_down = jnp.argsort(jnp.argsort(jnp.real(theta)))
    return m - jnp.minimum(2 * rank_up, 2 * rank_down + 1).astype(jnp.real(theta).dtype)


def _scores(theta: Array, which: str | Array) -> Array:
    """A score per Ritz value: the wanted ones score highest.

    `which` is a criterion's name, or its index in `CRITERIA` as a (traced) integer, so
    that one compiled program serves every criterion.
    """
    if isinstance(which, str):
        if which not in CRITERIA:
            raise ValueError(f"Unknown criterion which={which!r}.")
        return _score_by(theta, which)
    branches = [lambda t, w=w: _score_by(t, w).astype(jnp.real(t).dtype) for w in CRITERIA]
    return lax.switch(jnp.asarray(which, jnp.int32), branches, theta)


def criterion_index(which: str) -> Array:
    """The index of a criterion's name in `CRITERIA`, for a traced `which`."""
    return jnp.asarray(CRITERIA.index(which), jnp.int32)


def check_which(which: str | Array, symmetric: bool) -> None:
    if not isinstance(which, str):  # a traced index into CRITERIA: checked by its maker
        return
    choices = SYMMETRIC_WHICH if symmetric else NONSYMMETRIC_WHICH
    if which not in choices:
        kind = "symmetric" if symmetric else "non-symmetric"
        raise ValueError(f"which={which!r} for a {kind} map: choose one of {choices}.")


def default_ncv(n: int, k: int) -> int:
    """Basis size: ARPACK's advice max(2k + 1, 20), at most n."""
    return min(n, max(2 * k + 1, 20))


_DGKS_ETA = 0.7071067811865476  # 1/sqrt(2)


def krylov_schur(
    matvec: Matvec,
    v0: Array,
    *,
    k: int,
    which: str | Array = "LM",
    ncv: int | None = None,
    tol: float = 1e-8,
    max_restarts: int = 100,
    symmetric: bool = False,
    key: Array | None = None,
) -> EigResult:
    """The k eigenvalues of the map `matvec` (n x n, real) wanted by `which`.

    Args:
      matvec: u ↦ A u on flat vectors of v0's shape and dtype (traceable).
      v0: the start vector (n,), not zero.
      k: how many eigenvalues (k < ncv <= n).
      which: the criterion (module docstring), or its index in `CRITERIA` (traced).
      ncv: Krylov basis size m; default `default_ncv(n, k)`.
      tol: relative residual tolerance (ARPACK's).
      max_restarts: bound on restarts; `converged` says whether it sufficed.
      symmetric: A is symmetric (Lanczos: real eigenvalues, `eigh`).
      key: randomness for vectors that leave an invariant subspace (default key 0).
    """
    check_which(which, symmetric)
    if v0.ndim != 1:
        raise ValueError(f"v0 must be a flat vector, got shape {v0.shape}.")
    n = v0.shape[0]
    m = default_ncv(n, k) if ncv is None else int(ncv)
    if not 1 <= k <= n or m > n or (m <= k and m < n):
        raise ValueError(f"Need 1 <= k < ncv <= n (or ncv = n); got k={k}, ncv={m}, n={n}.")
    dtype = v0.dtype
    cdtype = jnp.result_type(dtype, jnp.complex64)
    eps = jnp.finfo(dtype).eps
    eps23 = eps ** (2.0 / 3.0)
    key = jax.random.key(0) if key is None else key
    # keep p wanted Ritz vectors at a restart: ARPACK-like, leaving room for growth
    p_keep = max(1, min(m - 2, k + (m - k) // 2)) if m > 2 else 1
    rows = jnp.arange(m + 1)

    def orthogonalize(basis, w):
        # Classical Gram-Schmidt (unused rows of the basis are zero), repeated only when
        # the first pass cancelled most of w (the DGKS test ARPACK uses, eta = 1/sqrt 2):
        # each pass reads the whole (m+1) x n basis, which dominates large models' cost.
        h = basis @ w
        w1 = w - basis.T @ h

        def again(args):
            w1, h = args
            h2 = basis @ w1
            return w1 - basis.T @ h2, h + h2

        lost = jnp.linalg.norm(w1) < _DGKS_ETA * jnp.linalg.norm(w)
        return lax.cond(lost, again, lambda args: args, (w1, h))

    def fresh_direction(basis, count):
        # leave an invariant subspace: a random direction orthogonal to the basis
        fresh = jax.random.normal(jax.random.fold_in(key, count), (n,), dtype)
        fresh, _ = orthogonalize(basis, fresh)
        fresh, _ = orthogonalize(basis, fresh)
        return fresh / jnp.maximum(jnp.linalg.norm(fresh), jnp.finfo(dtype).tiny)

    def expand(basis, hess, start, count):
        def body(j, carry):
            basis, hess, count = carry
            w, h = orthogonalize(basis, matvec(basis[j]).astype(dtype))
            beta = jnp.linalg.norm(w)
            scale = jnp.maximum(jnp.linalg.norm(h), beta)
            broke = beta <= 100 * eps * jnp.maximum(scale, eps)
            nxt = lax.cond(broke, lambda: fresh_direction(basis, count),
                           lambda: w / jnp.where(broke, 1, beta))
            hcol = h.at[j + 1].set(jnp.where(broke, 0.0, beta))
            hess = hess.at[:, j].set(jnp.where(rows <= j + 1, hcol, hess[:, j]))
            return basis.at[j + 1].set(nxt), hess, count + 1

        return lax.fori_loop(start, m, body, (basis, hess, count))

    def ritz(hess):
        small = hess[:m, :m]
        if symmetric:
            theta, vecs = jnp.linalg.eigh(0.5 * (small + small.T))
        else:
            theta, vecs = jnp.linalg.eig(small)
        order = jnp.argsort(-_scores(theta, which))
        theta, vecs = theta[order], vecs[:, order]
        res = jnp.abs(hess[m, m - 1]) * jnp.abs(vecs[m - 1, :])
        return theta, vecs, res

    def is_converged(theta, res):
        limit = tol * jnp.maximum(jnp.abs(theta[:k]), eps23)
        return jnp.all(res[:k] <= limit)

    def restart(basis, hess, vecs):
        if symmetric:
            q = jnp.where(jnp.arange(m) < p_keep, vecs.real, 0.0).astype(dtype)
            r = jnp.asarray(p_keep, jnp.int32)
        else:
            kept = vecs[:, :p_keep]
            parts = jnp.concatenate([kept.real, kept.imag], axis=1).astype(dtype)
            u, s, _ = jnp.linalg.svd(parts, full_matrices=True)
            r = jnp.sum(s > 1e3 * eps * s[0]).astype(jnp.int32)
            r = jnp.minimum(r, m - 1)
            q = jnp.where(jnp.arange(m) < r, u, 0.0)
        beta = hess[m, m - 1]
        new_basis = jnp.zeros_like(basis).at[:m].set(q.T @ basis[:m])
        new_basis = new_basis.at[r].set(basis[m])
        t = q.T @ hess[:m, :m] @ q
        new_hess = jnp.zeros_like(hess).at[:m, :m].set(t).at[r].set(beta * q[m - 1])
        return new_basis, new_hess, r

    class _State(NamedTuple):
        basis: Array
        hess: Array
        start: Array
        count: Array
        restarts: Array
        theta: Array
        res: Array
        done: Array

    def cycle(s: _State) -> _State:
        basis, hess, count = expand(s.basis, s.hess, s.start, s.count)
        theta, vecs, res = ritz(hess)
        done = is_converged(theta, res) | (s.restarts >= max_restarts)
        new_basis, new_hess, r = restart(basis, hess, vecs)
        keep = lambda a, b: jnp.where(done, a, b)
        return _State(keep(basis, new_basis), keep(hess, new_hess), keep(s.start, r), count,
                      s.restarts + jnp.where(done, 0, 1), theta.astype(s.theta.dtype), res,
                      done)

    start_vec = v0 / jnp.linalg.norm(v0)
    theta_dtype = dtype if symmetric else cdtype
    init = _State(
        jnp.zeros((m + 1, n), dtype).at[0].set(start_vec),
        jnp.zeros((m + 1, m), dtype),
        jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
        jnp.zeros((m,), theta_dtype), jnp.zeros((m,), dtype), jnp.zeros((), bool),
    )
    s = lax.while_loop(lambda s: ~s.done, cycle, init)
    converged = is_converged(s.theta, s.res)
    return EigResult(s.theta[:k], s.res[:k], converged, s.count, s.restarts)


def lanczos(matvec: Matvec, v0: Array, *, k: int, which: str = "BE", **kwargs) -> EigResult:
    """The k eigenvalues of a symmetric map wanted by `which` ("BE", "LA", "SA", "LM")."""
    return krylov_schur(matvec, v0, k=k, which=which, symmetric=True, **kwargs)


def extremes(result: EigResult) -> tuple[Array, Array]:
    """(smallest, largest) of a symmetric `lanczos` result's eigenvalues."""
    return jnp.min(result.eigenvalues), jnp.max(result.eigenvalues)


# --------------------------------------------------------------------------- ARPACK


class ArpackResult(NamedTuple):
    """scipy ARPACK's answer on the same product (numpy)."""

    eigenvalues: np.ndarray  # (k,), best first by the criterion
    matvecs: int


def arpack_eigs(
    matvec: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    k: int,
    which: str = "LM",
    ncv: int | None = None,
    tol: float = 1e-8,
    v0: np.ndarray | None = None,
    symmetric: bool = False,
    dtype=np.float64,
    maxiter: int | None = None,
) -> ArpackResult:
    """ARPACK (`eigs`, or `eigsh` when symmetric) on u ↦ A u given as a numpy function.

    Counts the products. `which` as in `krylov_schur`; "BE" maps to eigsh's "BE".
    """
    from scipy.sparse.linalg import LinearOperator, eigs, eigsh

    check_which(which, symmetric)
    count = [0]

    def mv(u):
        count[0] += 1
        return np.asarray(matvec(np.asarray(u, dtype).reshape(n)), dtype)

    op = LinearOperator((n, n), matvec=mv, dtype=dtype)
    m = default_ncv(n, k) if ncv is None else ncv
    kwargs = {"k": k, "ncv": m, "tol": tol, "v0": v0, "maxiter": maxiter}
    if symmetric:
        vals = eigsh(op, which=which, return_eigenvectors=False, **kwargs)
        vals = np.real(vals)
    else:
        vals = eigs(op, which=which, return_eigenvectors=False, **kwargs)
    score = np.asarray(_scores(jnp.asarray(vals), which))
    return ArpackResult(vals[np.argsort(-score, kind="stable")], count[0])


# ------------------------------------------------------------------------ dense


def dense_eigenvalues(matrix) -> np.ndarray:
    """All eigenvalues of a dense square matrix (numpy, float64/complex128)."""
    return np.linalg.eigvals(np.asarray(matrix, np.float64))


def select(eigenvalues, k: int, which: str) -> np.ndarray:
    """The k of `eigenvalues` wanted by `which`, best first (numpy)."""
    vals = np.asarray(eigenvalues)
    score = np.asarray(_scores(jnp.asarray(vals), which))
    return vals[np.argsort(-score, kind="stable")[:k]]


def rotation_dominated(eigenvalues, k: int) -> np.ndarray:
    """The k eigenvalues nearest the imaginary axis relative to their size.

    Sorted by |Re λ| / |λ| (0: a pure rotation, 1: real), zero eigenvalues last: the
    directions where the dynamics rotate rather than contract (Mescheder et al. 2017).
    """
    vals = np.asarray(eigenvalues)
    size = np.abs(vals)
    ratio = np.where(size > 0, np.abs(vals.real) / np.where(size > 0, size, 1.0), np.inf)
    return vals[np.argsort(ratio, kind="stable")[:k]]


def condition_number(smallest: float, largest: float) -> float:
    """λmax / λmin of a symmetric positive-definite matrix (inf if λmin <= 0)."""
    return float(largest / smallest) if smallest > 0 else math.inf
