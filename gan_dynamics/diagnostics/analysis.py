"""Every diagnostic of a game at one point, as pure jittable functions of the parameters.

- `field_spectrum`: k eigenvalues of the field's Jacobian J (`field.py`) by a criterion
  (Krylov-Schur Arnoldi on J u products, `spectrum.py`). Eigenvalues with positive real
  part attract simultaneous gradient descent, large imaginary parts rotate it
  (Mescheder, Nowozin & Geiger 2017).
- `player_curvature`: each player's own Hessian, ∇²xx f and ∇²yy g, at both ends of its
  spectrum (Lanczos). Both positive semi-definite: the second-order condition of a local
  Nash equilibrium; a player with an indefinite Hessian is at a saddle of its own loss
  (Berard et al. 2020, Sec. 3; Jin, Netrapalli & Jordan 2020).
- `decomposition_norms`: the symmetric part S = (J + Jᵀ)/2 (the potential part) and the
  antisymmetric part A = (J − Jᵀ)/2 (the rotational, Hamiltonian part) of J (Balduzzi et
  al. 2018, Sec. 3): Frobenius norms by Hutchinson's estimator, E‖S u‖² = ‖S‖²_F over
  Rademacher u (Hutchinson 1989), and spectral norms by Lanczos on S and Arnoldi on A.
- `cgd_system_spectrum`: the extreme eigenvalues and condition number of the linear
  system that CGD/ACGD solve (`optimizers/cgd.py`): in a zero-sum game the SPD matrix
  I + P_x Dxy f η_y (Dxy f)ᵀ P_x (Lanczos on its product); in a general-sum game
  I − P_x Dxy f η_y Dyx g P_x is not symmetric and its singular values are reported
  (Lanczos on MᵀM). The condition number bounds CG's iterations (∝ √κ).

Every function returns arrays and counts its products: `jvps` is the number of Jacobian-
(or Hessian-, or mixed-block-) vector products it made, each about the cost of two or
three gradient evaluations (measured in benchmarks/bench_diagnostics.py).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gan_dynamics import linalg
from gan_dynamics.diagnostics import field as field_lib
from gan_dynamics.diagnostics import spectrum
from gan_dynamics.game import Game, Params

Array = jax.Array


def _start(key: Array, n: int, dtype) -> Array:
    return jax.random.normal(key, (n,), dtype)


def field_spectrum(
    game: Game, params_x: Params, params_y: Params, *, k: int, which: str = "LM",
    ncv: int | None = None, tol: float = 1e-6, max_restarts: int = 100,
    key: Array | None = None,
) -> spectrum.EigResult:
    """The k eigenvalues of J at (x, y) wanted by `which` ("LM", "LR", "SR", "LI")."""
    fg = field_lib.flat_game(game, params_x, params_y)
    _, jvp = field_lib.linearize_field(fg)
    key = jax.random.key(0) if key is None else key
    return spectrum.krylov_schur(jvp, _start(key, fg.n, fg.z.dtype), k=k, which=which,
                                 ncv=ncv, tol=tol, max_restarts=max_restarts, key=key)


def dense_spectrum_matrix(game: Game, params_x: Params, params_y: Params) -> Array:
    """J as a dense matrix by `jax.jacfwd` (jittable; small models only)."""
    return field_lib.dense_jacobian(field_lib.flat_game(game, params_x, params_y))


def dense_spectrum(game: Game, params_x: Params, params_y: Params):
    """(J, all its eigenvalues by numpy's `eig`) (small models only; not jittable)."""
    jacobian = dense_spectrum_matrix(game, params_x, params_y)
    return jacobian, spectrum.dense_eigenvalues(jacobian)


def field_norm(game: Game, params_x: Params, params_y: Params) -> Array:
    """‖v(x, y)‖, the norm of the simultaneous gradient."""
    return field_lib.flat_norm(field_lib.simultaneous_gradient(game, params_x, params_y))


def player_curvature(
    game: Game, params_x: Params, params_y: Params, *, k: int = 2, ncv: int | None = None,
    tol: float = 1e-6, max_restarts: int = 100, key: Array | None = None,
) -> dict[str, Array]:
    """Extreme eigenvalues of ∇²xx f and ∇²yy g ("BE": k/2 from each end, k >= 2).

    Returns `hess_x_min`, `hess_x_max`, `hess_y_min`, `hess_y_max`, each player's
    eigenvalues (`hess_x_eigenvalues`, ...), `converged` and `jvps`.
    """
    hxx, hyy = field_lib.player_hessians(game, params_x, params_y)
    key = jax.random.key(1) if key is None else key
    out: dict[str, Array] = {}
    jvps = jnp.zeros((), jnp.int32)
    converged = jnp.ones((), bool)
    for name, hvp, params, sub in (("x", hxx, params_x, 0), ("y", hyy, params_y, 1)):
        flat = ravel_pytree(params)[0]
        kk = min(k, flat.shape[0])
        result = spectrum.lanczos(hvp, _start(jax.random.fold_in(key, sub), flat.shape[0],
                                              flat.dtype),
                                  k=kk, which="BE" if kk > 1 else "LM", ncv=ncv, tol=tol,
                                  max_restarts=max_restarts)
        lo, hi = spectrum.extremes(result)
        out.update({f"hess_{name}_min": lo, f"hess_{name}_max": hi,
                    f"hess_{name}_eigenvalues": result.eigenvalues})
        jvps = jvps + result.matvecs
        converged = converged & result.converged
    out.update(converged=converged, jvps=jvps)
    return out


def classify_point(hess_x_min: float, hess_x_max: float, hess_y_min: float,
                   hess_y_max: float, rel_tol: float = 1e-6) -> str:
    """"local_nash", "saddle" or "neither" from each player's extreme curvatures.

    A player is at a minimum of its own loss when λmin >= −rel_tol·max|λ|. Both at a
    minimum: "local_nash" (second-order conditions; the gradient norm says whether the
    point is also stationary). Otherwise "saddle" when some player's Hessian is
    indefinite (it has directions of both signs), "neither" when some player is at a
    maximum of its own loss.
    """
    def kind(lo, hi):
        scale = max(abs(lo), abs(hi))
        if lo >= -rel_tol * scale:
            return "minimum"
        if hi <= rel_tol * scale:
            return "maximum"
        return "saddle"

    kinds = {kind(hess_x_min, hess_x_max), kind(hess_y_min, hess_y_max)}
    if kinds == {"minimum"}:
        return "local_nash"
    return "neither" if "maximum" in kinds else "saddle"


def decomposition_norms(
    game: Game, params_x: Params, params_y: Params, *, num_samples: int = 16,
    exact: bool = False, spectral: bool = True, ncv: int | None = None, tol: float = 1e-4,
    max_restarts: int = 100, key: Array | None = None,
) -> dict[str, Array]:
    """Norms of S = (J + Jᵀ)/2 and A = (J − Jᵀ)/2 (Balduzzi et al. 2018).

    `sym_fro`, `antisym_fro`: Hutchinson estimates of the Frobenius norms from
    `num_samples` Rademacher probes (each probe: one J u and one Jᵀ u product; the
    relative error of ‖·‖²_F falls as 1/√num_samples). `exact` probes with every unit
    vector instead (n probes: the exact norms, for small models). With `spectral`, also
    `sym_spectral` = max|λ(S)| (Lanczos) and `antisym_spectral` = max|λ(A)| (Arnoldi;
    A's eigenvalues are ±iσ). `jvps` counts J and Jᵀ products alike.
    """
    fg = field_lib.flat_game(game, params_x, params_y)
    _, jvp = field_lib.linearize_field(fg)
    vjp = field_lib.transpose_map(jvp, fg.z)
    sym = lambda u: 0.5 * (jvp(u) + vjp(u))
    anti = lambda u: 0.5 * (jvp(u) - vjp(u))
    key = jax.random.key(2) if key is None else key
    probe_key, s_key, a_key = jax.random.split(key, 3)
    if exact:
        probes = jnp.eye(fg.n, dtype=fg.z.dtype)
    else:
        probes = jax.random.rademacher(probe_key, (num_samples, fg.n), fg.z.dtype)

    def squares(u):
        ju, jtu = jvp(u), vjp(u)
        return jnp.sum((0.5 * (ju + jtu)) ** 2), jnp.sum((0.5 * (ju - jtu)) ** 2)

    s2, a2 = jax.lax.map(squares, probes)
    # E‖S u‖² = ‖S‖²_F for Rademacher u; Σ_i ‖S e_i‖² = ‖S‖²_F for the unit vectors
    reduce = jnp.sum if exact else jnp.mean
    out = {"sym_fro": jnp.sqrt(reduce(s2)), "antisym_fro": jnp.sqrt(reduce(a2))}
    jvps = jnp.asarray(2 * probes.shape[0], jnp.int32)
    if spectral:
        s_res = spectrum.lanczos(sym, _start(s_key, fg.n, fg.z.dtype), k=1, which="LM",
                                 ncv=ncv, tol=tol, max_restarts=max_restarts)
        a_res = spectrum.krylov_schur(anti, _start(a_key, fg.n, fg.z.dtype),
                                      k=min(2, fg.n), which="LM", ncv=ncv, tol=tol,
                                      max_restarts=max_restarts)
        out.update(sym_spectral=jnp.abs(s_res.eigenvalues[0]),
                   antisym_spectral=jnp.abs(a_res.eigenvalues[0]),
                   converged=s_res.converged & a_res.converged)
        jvps = jvps + 2 * (s_res.matvecs + a_res.matvecs)
    out["jvps"] = jvps
    return out


def dense_decomposition_norms(jacobian: Array) -> dict[str, Array]:
    """Exact Frobenius and spectral norms of S and A from a dense J (small models)."""
    s = 0.5 * (jacobian + jacobian.T)
    a = 0.5 * (jacobian - jacobian.T)
    return {"sym_fro": jnp.linalg.norm(s), "antisym_fro": jnp.linalg.norm(a),
            "sym_spectral": jnp.linalg.norm(s, 2), "antisym_spectral": jnp.linalg.norm(a, 2)}


def cgd_system_map(game: Game, params_x: Params, params_y: Params, eta_x: Any, eta_y: Any,
                   system: str = "x"):
    """(u ↦ M u on flat vectors, the flat start shape, zero_sum) of CGD's `system`.

    M is the matrix of `optimizers.cgd.competitive_step`: for the x-system
    I − P_x Dxy f η_y Dyx g P_x with P_x = η_x^½; the y-system mirrors it. η are scalars
    (CGD) or per-coordinate pytrees like the parameters (ACGD). Each product makes two
    mixed-block products.
    """
    from gan_dynamics.optimizers.cgd import mixed_blocks

    if system not in ("x", "y"):
        raise ValueError(f"system={system!r}: choose 'x' or 'y'.")
    blocks = mixed_blocks(game, params_x, params_y)
    scale = linalg.tree_scale
    if system == "x":
        params, inner, outer, eta_p, eta_q = params_x, blocks.dyx_g, blocks.dxy_f, eta_x, eta_y
    else:
        params, inner, outer, eta_p, eta_q = params_y, blocks.dxy_f, blocks.dyx_g, eta_y, eta_x
    flat, unravel = ravel_pytree(params)
    sqrt_p = jax.tree.map(jnp.sqrt, eta_p)

    def matvec(u):
        v = unravel(u)
        w = scale(sqrt_p, outer(scale(eta_q, inner(scale(sqrt_p, v)))))
        return u - ravel_pytree(w)[0].astype(u.dtype)

    return matvec, flat, game.zero_sum


def cgd_system_spectrum(
    game: Game, params_x: Params, params_y: Params, eta_x: Any, eta_y: Any, *,
    system: str = "x", ncv: int | None = None, tol: float = 1e-4,
    max_restarts: int = 100, key: Array | None = None,
) -> dict[str, Array]:
    """Extreme eigenvalues (zero-sum) or singular values (general-sum) of CGD's matrix.

    Returns `cgd_min`, `cgd_max`, `cgd_cond` = max/min, `converged`, `jvps` (mixed-block
    products) and `symmetric` (True: eigenvalues of the SPD matrix; False: singular
    values, from the eigenvalues of MᵀM).
    """
    matvec, flat, zero_sum = cgd_system_map(game, params_x, params_y, eta_x, eta_y, system)
    key = jax.random.key(3) if key is None else key
    start = _start(key, flat.shape[0], flat.dtype)
    k = min(2, flat.shape[0])
    if zero_sum:
        result = spectrum.lanczos(matvec, start, k=k, which="BE", ncv=ncv, tol=tol,
                                  max_restarts=max_restarts)
        lo, hi = spectrum.extremes(result)
        per_product = 2
    else:
        transpose = field_lib.transpose_map(matvec, flat)
        result = spectrum.lanczos(lambda u: transpose(matvec(u)), start, k=k, which="BE",
                                  ncv=ncv, tol=tol, max_restarts=max_restarts)
        lo, hi = spectrum.extremes(result)
        lo, hi = jnp.sqrt(jnp.maximum(lo, 0.0)), jnp.sqrt(jnp.maximum(hi, 0.0))
        per_product = 4
    cond = jnp.where(lo > 0, hi / jnp.where(lo > 0, lo, 1.0), jnp.inf)
    return {"cgd_min": lo, "cgd_max": hi, "cgd_cond": cond, "converged": result.converged,
            "jvps": per_product * result.matvecs, "symmetric": jnp.asarray(zero_sum)}
