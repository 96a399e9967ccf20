"""Mixed second-derivative products and Krylov solvers over pytrees.

Competitive gradient descent needs products with the off-diagonal Hessian blocks
`Dxy f = ∂²f/∂x∂y` and `Dyx g = ∂²g/∂y∂x` (Schaefer & Anandkumar 2019, Eq. 4). They are
never formed: `Dxy f · v` is the forward-mode derivative of `∇x f` in direction v of y.
One forward and backward pass per step is linearised in y (`jax.linearize`) and the
linear map reused in every solver iteration; the other block comes from the same
linearisation by transposition (`jax.linear_transpose`): `Dyx f = (Dxy f)ᵀ` in a zero-sum
game, `Dyx g = (Dxy g)ᵀ` from the linearised `∇x g` in a general-sum one (docs/design.md
Sec. 4). Linearising in y alone keeps the tangents of everything that does not depend on y
(a GAN's generator forward pass) symbolically zero.

The solvers return, as arrays, the iteration count, the final residual norm, a
convergence flag and the number of products with the system's map they made, which
`jax.scipy.sparse.linalg` does not (docs/design.md Sec. 11):
- `cg`: conjugate gradient for symmetric positive-definite maps, pytree-native. A
  non-positive curvature `pᵀAp <= 0` (singular or indefinite system) stops it at the last
  good iterate with `converged=False` instead of dividing by zero.
- `gmres`: restarted GMRES with Givens rotations for non-symmetric maps; the Krylov basis
  is stored as one matrix, so the pytree is flattened at its boundary only.
Both stop when `‖r‖ <= max(tol·‖b‖, atol)` or after `max_iter` iterations. Pytree
arithmetic is `optax.tree`'s, except the per-coordinate scaling by a pytree of step sizes
(`tree_scale`) and dtype-preserving updates of loop carries.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from gan_dynamics.game import Game, Gradients, Params

Tree = Any
LinearMap = Callable[[Tree], Tree]


class SolverInfo(NamedTuple):
    """Diagnostics of one linear solve (all arrays)."""

    iterations: jax.Array  # int32: Krylov iterations (CG steps; Arnoldi steps, all cycles)
    residual_norm: jax.Array  # ‖b - A x‖ of the returned x (recurrence value for CG)
    converged: jax.Array  # bool: the tolerance was met (False at max_iter or breakdown)
    # int32: every product with the map: iterations, plus the initial residual when x0 is
    # given, plus (GMRES) the true residual recomputed after each restart cycle
    matvecs: jax.Array


# ----------------------------------------------------------------------------- pytrees


def tree_scale(scale: Tree | jax.Array, tree: Tree) -> Tree:
    """Multiply `tree` by `scale`: a scalar, or a pytree of `tree`'s structure (per coordinate).

    The result keeps `tree`'s dtypes (a float64 step size does not promote float32 leaves).
    """
    if jax.tree.structure(scale) == jax.tree.structure(tree):
        scaled = optax.tree.mul(scale, tree)
    else:
        scaled = optax.tree.scale(scale, tree)
    return optax.tree.cast_like(scaled, tree)


# The inner product every caller of this module uses (SGA's alignment term too).
tree_vdot = optax.tree.vdot


def _add_scale(x: Tree, alpha: jax.Array, y: Tree) -> Tree:
    """x + alpha * y in x's dtypes (so while-loop carries keep their type)."""
    return optax.tree.cast_like(optax.tree.add_scale(x, alpha, y), x)


def _zeros_of(fn: Callable[[Tree], Tree], arg: Tree) -> Tree:
    """Zeros shaped like `fn(arg)`, without evaluating fn."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, arg))


# ------------------------------------------------------------ mixed derivative blocks


class ZeroSumLinearization(NamedTuple):
    """Gradients and mixed blocks of a zero-sum game at one point (g = -f).

    `grads.grad_y` is ∇y g = -∇y f, so that every optimizer sees each player's gradient of
    its own loss; `dxy` and `dyx` are the blocks of f.
    """

    grads: Gradients
    dxy_f: LinearMap  # v (y-shaped) -> Dxy f · v (x-shaped)
    dyx_f: LinearMap  # u (x-shaped) -> Dyx f · u (y-shaped), by transposition


class GeneralSumLinearization(NamedTuple):
    """Gradients and the two mixed blocks of a general-sum game at one point."""

    grads: Gradients
    dxy_f: LinearMap  # v (y-shaped) -> Dxy f · v
    dyx_g: LinearMap  # u (x-shaped) -> Dyx g · u


# Profiles and compiled programs name the operations of each mixed product by these scopes
# (benchmarks/profile_acgd.py sorts a CG iteration's time by them).
PRODUCT_SCOPE = "mixed_product"  # Dxy f · v
TRANSPOSE_SCOPE = "mixed_product_transpose"  # Dyx · u
SOLVER_SCOPE = "krylov_solve"  # a solver's loop: its body is one iteration


def _named(fn: LinearMap, scope: str) -> LinearMap:
    def named(v):
        with jax.named_scope(scope):
            return fn(v)

    return named


def linearize_zero_sum(game: Game, params_x: Params, params_y: Params) -> ZeroSumLinearization:
    """One forward/backward pass linearised in y: ∇x f, ∇y f, Dxy f and its transpose."""

    def grad_x_f(py):
        def f_only(px, py_):
            (f, _), aux = game.losses(px, py_)
            return f, aux

        (f, aux), (gx, gy_f) = jax.value_and_grad(f_only, argnums=(0, 1), has_aux=True)(
            params_x, py
        )
        return gx, (f, gy_f, aux)

    gx, dxy_f, (f, gy_f, aux) = jax.linearize(grad_x_f, params_y, has_aux=True)
    transpose = jax.linear_transpose(dxy_f, params_y)
    grads = Gradients(f, -f, gx, optax.tree.scale(-1.0, gy_f), aux)
    return ZeroSumLinearization(grads, _named(dxy_f, PRODUCT_SCOPE),
                                _named(lambda u: transpose(u)[0], TRANSPOSE_SCOPE))


def linearize_general_sum(
    game: Game, params_x: Params, params_y: Params
) -> GeneralSumLinearization:
    """One forward/backward pass linearised in y: y ↦ (∇x f, ∇x g).

    Its first component gives Dxy f · v; the transpose of its second gives
    Dyx g · u = (Dxy g)ᵀ u (mixed partials commute), so both blocks and both players'
    gradients cost one linearisation, as in the zero-sum case.
    """

    def grads_x(py):
        (f, g), vjp_fn, aux = jax.vjp(game.losses, params_x, py, has_aux=True)
        gx_f, _ = vjp_fn((jnp.ones_like(f), jnp.zeros_like(g)))
        gx_g, gy_g = vjp_fn((jnp.zeros_like(f), jnp.ones_like(g)))
        return (gx_f, gx_g), (f, g, gy_g, aux)

    (gx, _), mixed, (f, g, gy, aux) = jax.linearize(grads_x, params_y, has_aux=True)
    transpose = jax.linear_transpose(lambda v: mixed(v)[1], params_y)
    return GeneralSumLinearization(
        Gradients(f, g, gx, gy, aux), _named(lambda v: mixed(v)[0], PRODUCT_SCOPE),
        _named(lambda u: transpose(u)[0], TRANSPOSE_SCOPE))


# ------------------------------------------------------------------ conjugate gradient


def cg(
    matvec: LinearMap,
    b: Tree,
    x0: Optional[Tree] = None,
    *,
    tol: float | jax.Array = 1e-6,
    atol: float | jax.Array = 0.0,
    max_iter: int = 100,
    track: bool = False,
):
    """Conjugate gradient for a symmetric positive-definite `matvec`, warm-started at x0.

    The residual starts at `b - A x0` (one product when x0 is given, none when it is
    None). Returns the solution and a `SolverInfo`; on non-positive curvature it stops at
    the last iterate.

    With `track=True`, `matvec(v)` returns `(A v, L v)` for a second linear map L whose
    value the product computes on the way (CGD's `Dxy f · v` inside its system), and the
    result is `(x, info, L x)`: L x is accumulated like x, `L x0 + Σ α_k L p_k`, so it costs
    no further product.
    """
    product = matvec if track else (lambda v: (matvec(v), ()))
    initial_products = 0 if x0 is None else 1
    if x0 is None:
        x0, r0 = optax.tree.zeros_like(b), b
        lx0 = _zeros_of(lambda v: product(v)[1], b)
    else:
        ax0, lx0 = product(x0)
        r0 = optax.tree.sub(b, ax0)
    rr0 = optax.tree.vdot(r0, r0)
    threshold_sq = jnp.maximum(tol**2 * optax.tree.vdot(b, b), atol**2)

    class _State(NamedTuple):
        x: Tree
        lx: Tree  # L x (track=True)
        r: Tree
        p: Tree
        rr: jax.Array
        k: jax.Array
        breakdown: jax.Array

    def cond(s: _State):
        return (s.rr > threshold_sq) & (s.k < max_iter) & ~s.breakdown

    def body(s: _State):
        ap, lp = product(s.p)
        pap = optax.tree.vdot(s.p, ap)
        breakdown = ~(pap > 0) | ~jnp.isfinite(pap)
        alpha = jnp.where(breakdown, 0.0, s.rr / jnp.where(breakdown, 1.0, pap))
        x = _add_scale(s.x, alpha, s.p)
        lx = _add_scale(s.lx, alpha, lp)
        r = _add_scale(s.r, -alpha, ap)
        rr_new = jnp.where(breakdown, s.rr, optax.tree.vdot(r, r))
        beta = rr_new / jnp.where(s.rr > 0, s.rr, 1.0)
        p = _add_scale(r, beta, s.p)
        return _State(x, lx, r, p, rr_new, s.k + 1, breakdown)

    init = _State(x0, lx0, r0, r0, rr0, jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    with jax.named_scope(SOLVER_SCOPE):
        s = lax.while_loop(cond, body, init)
    info = SolverInfo(s.k, jnp.sqrt(s.rr), (s.rr <= threshold_sq) & ~s.breakdown,
                      s.k + initial_products)
    return (s.x, info, s.lx) if track else (s.x, info)


# ------------------------------------------------------------------------------ GMRES


def gmres(
    matvec: LinearMap,
    b: Tree,
    x0: Optional[Tree] = None,
    *,
    tol: float | jax.Array = 1e-6,
    atol: float | jax.Array = 0.0,
    restart: int = 20,
    max_iter: int = 100,
    track: bool = False,
):
    """Restarted GMRES(restart) for a general (non-symmetric) `matvec`.

    Each restart cycle runs Arnoldi with modified Gram-Schmidt and Givens rotations,
    stopping as soon as the rotated residual meets the tolerance, then recomputes the true
    residual `b - A x` (one product) to decide whether to restart. The initial residual
    costs one product when x0 is given. `max_iter` bounds the Arnoldi products over all
    cycles. Returns the solution and a `SolverInfo`.

    `track=True` works as in `cg`: `matvec(v)` returns `(A v, L v)` and the result is
    `(x, info, L x)`, where L x is the value the last true-residual product computed on
    the way (no further product).
    """
    product = matvec if track else (lambda v: (matvec(v), ()))
    b_flat, unravel = ravel_pytree(b)
    n, dtype = b_flat.shape[0], b_flat.dtype
    m = max(1, min(restart, max_iter))

    def a_flat(v):
        return ravel_pytree(product(unravel(v))[0])[0].astype(dtype)

    def residual(x_flat):
        ax, lx = product(unravel(x_flat))
        return b_flat - ravel_pytree(ax)[0].astype(dtype), lx

    threshold = jnp.maximum(tol * jnp.linalg.norm(b_flat), atol)
    tiny = jnp.finfo(dtype).tiny

    def arnoldi_cycle(x, r, k_total):
        beta = jnp.linalg.norm(r)
        basis = jnp.zeros((m + 1, n), dtype).at[0].set(r / jnp.where(beta > 0, beta, 1.0))
        hess = jnp.zeros((m + 1, m), dtype)
        cs = jnp.zeros((m,), dtype)
        sn = jnp.zeros((m,), dtype)
        g = jnp.zeros((m + 1,), dtype).at[0].set(beta)

        def cond(c):
            j, _, _, _, _, g_, _ = c
            return (j < m) & (jnp.abs(g_[j]) > threshold) & (k_total + j < max_iter)

        def body(c):
            j, basis_, hess_, cs_, sn_, g_, _ = c
            w = a_flat(basis_[j])
            # modified Gram-Schmidt against the first j+1 basis vectors (masked to stay static)
            def orth(i, carry):
                w_, h_col = carry
                active = i <= j
                hij = jnp.where(active, jnp.vdot(basis_[i], w_), 0.0)
                return w_ - hij * basis_[i], h_col.at[i].set(hij)

            w, h_col = lax.fori_loop(0, m, orth, (w, jnp.zeros((m + 1,), dtype)))
            h_next = jnp.linalg.norm(w)
            h_col = h_col.at[j + 1].set(h_next)
            basis_ = basis_.at[j + 1].set(w / jnp.where(h_next > tiny, h_next, 1.0))

            # apply the previous rotations to the new column, then make a new one
            def rotate(i, col):
                active = i < j
                a, bb = col[i], col[i + 1]
                ra = jnp.where(active, cs_[i] * a + sn_[i] * bb, a)
                rb = jnp.where(active, -sn_[i] * a + cs_[i] * bb, bb)
                return col.at[i].set(ra).at[i + 1].set(rb)

            h_col = lax.fori_loop(0, m, rotate, h_col)
            a, bb = h_col[j], h_col[j + 1]
            denom = jnp.hypot(a, bb)
            c_j = jnp.where(denom > 0, a / jnp.where(denom > 0, denom, 1.0), 1.0)
            s_j = jnp.where(denom > 0, bb / jnp.where(denom > 0, denom, 1.0), 0.0)
            h_col = h_col.at[j].set(denom).at[j + 1].set(0.0)
            g_ = g_.at[j + 1].set(-s_j * g_[j]).at[j].set(c_j * g_[j])
            hess_ = hess_.at[:, j].set(h_col)
            return (j + 1, basis_, hess_, cs_.at[j].set(c_j), sn_.at[j].set(s_j), g_,
                    h_next <= tiny)

        init = (jnp.zeros((), jnp.int32), basis, hess, cs, sn, g, jnp.zeros((), bool))
        j, basis, hess, _, _, g, _ = lax.while_loop(cond, body, init)
        # solve the leading j x j triangle; unused rows become identity with zero rhs
        idx = jnp.arange(m)
        used = idx < j
        tri = jnp.where(used[:, None] & used[None, :], hess[:m, :m], 0.0)
        tri = tri + jnp.diag(jnp.where(used, 0.0, 1.0))
        diag_ok = jnp.where(used, jnp.abs(jnp.diag(tri)) > tiny, True)
        tri = tri + jnp.diag(jnp.where(diag_ok, 0.0, 1.0))
        coeffs = jax.scipy.linalg.solve_triangular(tri, jnp.where(used, g[:m], 0.0), lower=False)
        x_new = x + coeffs @ basis[:m]
        return x_new, j

    class _State(NamedTuple):
        x: jax.Array  # flat iterate
        lx: Tree  # L x (track=True)
        r: jax.Array  # its true residual
        r_norm: jax.Array
        k: jax.Array  # Arnoldi products so far
        cycles: jax.Array
        stalled: jax.Array  # the last cycle made no Arnoldi step

    def outer_cond(s: _State):
        return (s.r_norm > threshold) & (s.k < max_iter) & ~s.stalled

    def outer_body(s: _State):
        x_new, j = arnoldi_cycle(s.x, s.r, s.k)
        r_new, lx = residual(x_new)
        return _State(x_new, lx, r_new, jnp.linalg.norm(r_new), s.k + j, s.cycles + 1, j == 0)

    if x0 is None:
        x_flat, r_init = jnp.zeros_like(b_flat), b_flat
        lx_init = _zeros_of(lambda v: product(v)[1], b)
    else:
        x_flat = ravel_pytree(x0)[0].astype(dtype)
        r_init, lx_init = residual(x_flat)
    zero = jnp.zeros((), jnp.int32)
    init = _State(x_flat, lx_init, r_init, jnp.linalg.norm(r_init), zero, zero,
                  jnp.zeros((), bool))
    with jax.named_scope(SOLVER_SCOPE):
        s = lax.while_loop(outer_cond, outer_body, init)
    r_norm = jnp.where(jnp.isfinite(s.r_norm), s.r_norm, jnp.inf)
    matvecs = s.k + s.cycles + (0 if x0 is None else 1)
    info = SolverInfo(s.k, r_norm, r_norm <= threshold, matvecs)
    x = unravel(s.x)
    return (x, info, s.lx) if track else (x, info)
