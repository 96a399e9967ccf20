"""Competitive gradient descent (CGD) and its adaptive form (ACGD).

Each step plays the Nash equilibrium of the regularised bilinear approximation of the
game at the current point (Schaefer & Anandkumar 2019, Eq. 4): with x minimising f and y
minimising g, and step sizes η_x, η_y (scalars for CGD, per-coordinate vectors for ACGD),

    Δx = -η_x ⊙ (∇x f + Dxy f Δy),        Δy = -η_y ⊙ (∇y g + Dyx g Δx).

Eliminating Δy and symmetrising with P_x = η_x^½ gives the x-system

    (I - P_x Dxy f η_y Dyx g P_x) u = -P_x (∇x f - Dxy f (η_y ⊙ ∇y g)),   Δx = P_x u,

and the reaction Δy = -η_y ⊙ (∇y g + Dyx g Δx); the y-system is the mirror image. In a
zero-sum game (g = -f, Dyx g = -(Dxy f)ᵀ) the matrix is I + P_x Dxy η_y Dxyᵀ P_x,
symmetric positive definite, and is solved by conjugate gradient; otherwise by GMRES.
With constant η this is CGD exactly as docs/design.md Sec. 4 writes it.

ACGD (Schaefer, Zheng & Anandkumar 2020, Sec. 5 and the authors' `CGDs` package) adapts
η per coordinate like RMSProp:  v ← β v + (1-β) g²,  η = lr·sqrt(1-β^t)/(sqrt(v) + ε),
warm-starts each solve from the previous step's solution (kept in the state), and, by
default, alternates between solving the y-system and the x-system on successive steps,
starting with y as the reference implementation does. The solve stops when
‖r‖ <= max(tol·‖b‖, atol) (reference: tol² = 1e-12, atol² = 1e-20 on squared norms).

Cost (info["grad_evals"]), counted from what the step evaluated: one linearisation (both
players' gradients, zero- or general-sum), one mixed product for the right-hand side and
two per product with the system's matrix, as the solver reports them (`matvecs`): the
warm-start residual, one per iteration and, for GMRES, the true residual after each
restart cycle. That is 4 + 2k for CG after k iterations and 4 + 2k + 2c for GMRES after k
iterations in c cycles. The other player's reaction term costs no product: CG accumulates
it with its iterate, GMRES takes it from its last true-residual product.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from gan_dynamics import linalg
from gan_dynamics.game import Game, Params
from gan_dynamics.optimizers.base import (
    GameOptimizer,
    Projection,
    check_projection,
    project_players,
    step_info,
)

_SOLVE_CHOICES = ("x", "y", "alternate")
_SOLVER_CHOICES = ("auto", "cg", "gmres")


class CGDState(NamedTuple):
    """Warm starts of both systems and which one the next step solves."""

    warm_x: Params  # u of the x-system (Δx = P_x u) at the last step
    warm_y: Params  # w of the y-system (Δy = P_y w) at the last step
    solve_y: jax.Array  # bool: the next step solves the y-system


class ACGDState(NamedTuple):
    """ACGD's second-moment estimates and step count, around the CGD solver state."""

    count: jax.Array  # int32: steps taken
    nu_x: Params  # exponential average of (∇x f)²
    nu_y: Params  # exponential average of (∇y g)²
    solver: CGDState


def acgd_step_sizes(state: ACGDState, grad_x: Params, grad_y: Params,
                    lr_x: float | jax.Array, lr_y: float | jax.Array,
                    beta: float | jax.Array, eps: float | jax.Array
                    ) -> tuple[Params, Params, Params, Params, jax.Array]:
    """(η_x, η_y, ν_x, ν_y, count) of the ACGD update from `state` with these gradients.

    ν ← β ν + (1-β) g² (the current gradient included), count ← count + 1 and
    η = lr · sqrt(1 - β^count) / (sqrt(ν) + ε): what the update solves with, and what a
    diagnostic of the update's system must use.
    """
    count = state.count + 1
    second_moment = lambda nu, g: jax.tree.map(
        lambda n, gi: beta * n + (1 - beta) * gi * gi, nu, g)
    nu_x = second_moment(state.nu_x, grad_x)
    nu_y = second_moment(state.nu_y, grad_y)
    correction = jnp.sqrt(1 - beta ** count.astype(jnp.result_type(beta, float)))
    step_size = lambda lr, nu: jax.tree.map(
        lambda n: (lr * correction / (jnp.sqrt(n) + eps)).astype(n.dtype), nu)
    return step_size(lr_x, nu_x), step_size(lr_y, nu_y), nu_x, nu_y, count


def _check_choices(solve: str, solver: str) -> None:
    if solve not in _SOLVE_CHOICES:
        raise ValueError(f"solve={solve!r}: choose one of {_SOLVE_CHOICES}.")
    if solver not in _SOLVER_CHOICES:
        raise ValueError(f"solver={solver!r}: choose one of {_SOLVER_CHOICES}.")


def _init_solver_state(params_x: Params, params_y: Params, solve: str) -> CGDState:
    zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    return CGDState(zeros(params_x), zeros(params_y), jnp.asarray(solve != "x"))


def _uses_cg(solver: str, zero_sum: bool) -> bool:
    return solver == "cg" or (solver == "auto" and zero_sum)


# A step's cost besides its mixed products: `mixed_blocks` linearises one forward and
# backward pass, which gives both players' gradients.
_GRADIENT_PASSES = 1


def mixed_blocks(game: Game, params_x: Params, params_y: Params) -> linalg.GeneralSumLinearization:
    """Gradients and the general-sum blocks (Dxy f, Dyx g) of any game at one point.

    A zero-sum game is linearised once and Dyx g = -(Dxy f)ᵀ taken by transposition.
    """
    if game.zero_sum:
        lin = linalg.linearize_zero_sum(game, params_x, params_y)
        dyx_g = lambda u: jax.tree.map(jnp.negative, lin.dyx_f(u))
        return linalg.GeneralSumLinearization(lin.grads, lin.dxy_f, dyx_g)
    return linalg.linearize_general_sum(game, params_x, params_y)


def competitive_step(
    blocks: linalg.GeneralSumLinearization,
    zero_sum: bool,
    eta_x: Any,
    eta_y: Any,
    state: CGDState,
    *,
    solve: str,
    solver: str,
    tol: float | jax.Array,
    atol: float | jax.Array,
    max_iter: int,
    restart: int,
):
    """One CGD update with step sizes η_x, η_y (scalars or per-coordinate pytrees).

    `blocks` comes from `mixed_blocks`; `zero_sum` selects CG under solver="auto".
    Returns (Δx, Δy, new solver state, SolverInfo, mixed products made: an int32 array).
    """
    grads, dxy_f, dyx_g = blocks
    gx, gy = grads.grad_x, grads.grad_y
    sqrt_x = jax.tree.map(jnp.sqrt, eta_x)
    sqrt_y = jax.tree.map(jnp.sqrt, eta_y)
    scale = linalg.tree_scale
    neg = lambda tree: jax.tree.map(jnp.negative, tree)
    sub = lambda a, b: jax.tree.map(jnp.subtract, a, b)
    add = lambda a, b: jax.tree.map(jnp.add, a, b)
    use_cg = _uses_cg(solver, zero_sum)

    def krylov(inner, outer, sqrt_p, eta_q, b, x0):
        """Solve z - P·outer(η_q ⊙ inner(P·z)) = b for z; return z, info, inner(P·z).

        Each product (two mixed products) computes inner(P·v) on the way; the solvers
        return it for z (`track`), so the other player's reaction term inner(P·z) costs no
        further mixed product.
        """
        def product(v):
            reaction = inner(scale(sqrt_p, v))
            return sub(v, scale(sqrt_p, outer(scale(eta_q, reaction)))), reaction

        if use_cg:
            return linalg.cg(product, b, x0, tol=tol, atol=atol, max_iter=max_iter,
                             track=True)
        return linalg.gmres(product, b, x0, tol=tol, atol=atol, restart=restart,
                            max_iter=max_iter, track=True)

    def solve_x(_):
        b = neg(scale(sqrt_x, sub(gx, dxy_f(scale(eta_y, gy)))))
        u, info, dyx_dx = krylov(dyx_g, dxy_f, sqrt_x, eta_y, b, state.warm_x)
        dx = scale(sqrt_x, u)
        reaction = add(gy, dyx_dx)
        dy = neg(scale(eta_y, reaction))
        return dx, dy, u, neg(scale(sqrt_y, reaction)), info

    def solve_y(_):
        b = neg(scale(sqrt_y, sub(gy, dyx_g(scale(eta_x, gx)))))
        w, info, dxy_dy = krylov(dxy_f, dyx_g, sqrt_y, eta_x, b, state.warm_y)
        dy = scale(sqrt_y, w)
        reaction = add(gx, dxy_dy)
        dx = neg(scale(eta_x, reaction))
        return dx, dy, neg(scale(sqrt_x, reaction)), w, info

    if solve == "x":
        result = solve_x(None)
    elif solve == "y":
        result = solve_y(None)
    else:
        result = lax.cond(state.solve_y, solve_y, solve_x, None)
    dx, dy, warm_x, warm_y, info = result
    next_solve_y = ~state.solve_y if solve == "alternate" else state.solve_y
    # one for the right-hand side, two in each product of the system's matrix
    mixed_products = 1 + 2 * info.matvecs
    return dx, dy, CGDState(warm_x, warm_y, next_solve_y), info, mixed_products


def _finish(params_x, params_y, dx, dy, grads, sinfo: linalg.SolverInfo, solved_y,
            mixed_products: jax.Array):
    """Apply the updates; the diagnostics of base.step_info plus the solver's."""
    new_x = jax.tree.map(lambda p, d: (p + d).astype(p.dtype), params_x, dx)
    new_y = jax.tree.map(lambda p, d: (p + d).astype(p.dtype), params_y, dy)
    info = step_info(grads.f, grads.g, grads.grad_x, grads.grad_y, dx, dy, new_x, new_y,
                     grad_evals=_GRADIENT_PASSES + mixed_products, aux=grads.aux)
    info.update(solver_iterations=sinfo.iterations, solver_matvecs=sinfo.matvecs,
                solver_residual=sinfo.residual_norm, solver_converged=sinfo.converged,
                solved_for_y=solved_y)
    return new_x, new_y, info


def cgd(
    lr_x: float | jax.Array = 0.01,
    lr_y: float | jax.Array = 0.01,
    *,
    tol: float | jax.Array = 1e-6,
    atol: float | jax.Array = 1e-10,
    max_iter: int = 100,
    solve: str = "x",
    solver: str = "auto",
    restart: int = 20,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Competitive gradient descent with step sizes η_x = lr_x, η_y = lr_y.

    Args:
      lr_x, lr_y: step sizes (may be traced arrays).
      tol, atol: the solve stops at ‖r‖ <= max(tol·‖b‖, atol).
      max_iter: bound on solver iterations (matrix-vector products of the system).
      solve: "x" (docs/design.md Sec. 4), "y", or "alternate" between the two systems.
      solver: "auto" (CG for zero-sum games, GMRES otherwise), "cg" or "gmres".
      restart: GMRES restart length.
      project_x, project_y: projections applied after each update (`base`); the warm
        starts stay the solver's unprojected solutions.
    """
    _check_choices(solve, solver)
    check_projection("cgd", "project_x", project_x)
    check_projection("cgd", "project_y", project_y)

    def init(params_x, params_y):
        return _init_solver_state(params_x, params_y, solve)

    def update(game, params_x, params_y, state):
        blocks = mixed_blocks(game, params_x, params_y)
        grads = blocks.grads
        dx, dy, state_new, sinfo, products = competitive_step(
            blocks, game.zero_sum, jnp.asarray(lr_x), jnp.asarray(lr_y), state, solve=solve,
            solver=solver, tol=tol, atol=atol, max_iter=max_iter, restart=restart)
        new_x, new_y, info = _finish(params_x, params_y, dx, dy, grads, sinfo, state.solve_y,
                                     products)
        new_x, new_y, info = project_players(project_x, project_y, params_x, params_y,
                                             new_x, new_y, info)
        return new_x, new_y, state_new, info

    return GameOptimizer(init, update)


def acgd(
    lr_x: float | jax.Array = 1e-3,
    lr_y: float | jax.Array = 1e-3,
    *,
    beta: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-5,
    tol: float | jax.Array = 1e-6,
    atol: float | jax.Array = 1e-10,
    max_iter: int = 100,
    solve: str = "alternate",
    solver: str = "auto",
    restart: int = 20,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Adaptive CGD (ICR paper): RMSProp-style per-coordinate step sizes inside CGD.

    Args:
      lr_x, lr_y: base learning rates (may be traced arrays).
      beta, eps: second-moment decay and the additive constant in η's denominator.
      tol, atol, max_iter, solver, restart: as in `cgd`.
      solve: "alternate" (reference behaviour: y-system first), "x" or "y".
      project_x, project_y: as in `cgd`.
    """
    _check_choices(solve, solver)
    check_projection("acgd", "project_x", project_x)
    check_projection("acgd", "project_y", project_y)

    def init(params_x, params_y):
        zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
        return ACGDState(jnp.zeros((), jnp.int32), zeros(params_x), zeros(params_y),
                         _init_solver_state(params_x, params_y, solve))

    def update(game, params_x, params_y, state):
        blocks = mixed_blocks(game, params_x, params_y)
        grads = blocks.grads
        eta_x, eta_y, nu_x, nu_y, count = acgd_step_sizes(
            state, grads.grad_x, grads.grad_y, lr_x, lr_y, beta, eps)
        dx, dy, solver_state, sinfo, products = competitive_step(
            blocks, game.zero_sum, eta_x, eta_y, state.solver, solve=solve, solver=solver,
            tol=tol, atol=atol, max_iter=max_iter, restart=restart)
        new_x, new_y, info = _finish(params_x, params_y, dx, dy, grads, sinfo,
                                     state.solver.solve_y, products)
        new_x, new_y, info = project_players(project_x, project_y, params_x, params_y,
                                             new_x, new_y, info)
        return new_x, new_y, ACGDState(count, nu_x, nu_y, solver_state), info

    return GameOptimizer(init, update)
