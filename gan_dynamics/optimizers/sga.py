"""Symplectic gradient adjustment (SGA; Balduzzi et al. 2018, "The mechanics of n-player
differentiable games", Alg. 1).

The game Jacobian J (the Jacobian of the simultaneous gradient field ξ = (∇x f, ∇y g))
splits into a symmetric part S (a potential game) and an antisymmetric part
A = ½(J - Jᵀ) (a Hamiltonian game, whose dynamics rotate). SGA follows

    ξ_λ = ξ + λ Aᵀ ξ,     Aᵀ ξ = ½ (Jᵀ ξ - J ξ),
    z_{t+1} = z_t - η ξ_λ(z_t),

with η = (lr_x, lr_y) per player (then projected when projections are given; `base`).
`Jξ` is one Jacobian-vector product and `Jᵀξ` its
transpose, both from one linearisation of the gradient map (no Hessian is formed).

With `align=True` the sign of λ is chosen so that ξ_λ points towards a stable fixed point
(Balduzzi et al. 2018, Sec. 4, Alg. 1): with ∇H = Jᵀξ the gradient of H = ½‖ξ‖² and d the
number of parameters,

    λ ← λ · sign(⟨ξ, ∇H⟩ ⟨Aᵀξ, ∇H⟩ / d + ε),    ε = `align_eps` (the paper's 1/10).

∇H is the transposed product already computed, so alignment costs nothing extra.

Cost: one gradient, one JVP and one VJP (`grad_evals = 3`). Info: losses, gradients ξ and
aux at z_t; parameter norms after the step.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from gan_dynamics.game import Game, Params
from gan_dynamics.linalg import tree_vdot
from gan_dynamics.optimizers.base import (
    GameOptimizer,
    Projection,
    check_projection,
    gradient_field,
    gradient_step,
    scalar_hyperparameter,
    step_info,
)


def sga(
    lr_x: Optional[ArrayLike] = None,
    lr_y: Optional[ArrayLike] = None,
    lam: ArrayLike = 1.0,
    align: bool = False,
    align_eps: ArrayLike = 0.1,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Symplectic gradient adjustment.

    Args:
      lr_x, lr_y: the players' learning rates (scalars; may be traced).
      lam: the adjustment's magnitude λ (may be traced).
      align: choose the sign of λ per step as in Balduzzi et al. 2018, Alg. 1 (static).
      align_eps: ε of the alignment rule (may be traced).
      project_x, project_y: projections applied after each update (`base`).
    """
    lr_x = scalar_hyperparameter("sga", "lr_x", lr_x)
    lr_y = scalar_hyperparameter("sga", "lr_y", lr_y)
    lam = scalar_hyperparameter("sga", "lam", lam)
    align_eps = scalar_hyperparameter("sga", "align_eps", align_eps)
    if not isinstance(align, (bool, np.bool_)):
        raise ValueError(f"sga: align must be True or False, got {align!r}.")
    check_projection("sga", "project_x", project_x)
    check_projection("sga", "project_y", project_y)

    def init(params_x: Params, params_y: Params) -> optax.EmptyState:
        del params_x, params_y
        return optax.EmptyState()

    def update(game: Game, params_x: Params, params_y: Params, state: optax.EmptyState):
        xi, jvp_fn, (f, g, aux) = jax.linearize(
            gradient_field(game), params_x, params_y, has_aux=True
        )
        j_xi = jvp_fn(*xi)
        jt_xi = jax.linear_transpose(jvp_fn, params_x, params_y)(xi)
        at_xi = jax.tree.map(lambda t, j: 0.5 * (t - j), jt_xi, j_xi)
        scale = lam
        if align:
            n_params = sum(leaf.size for leaf in jax.tree.leaves(xi))
            scale = lam * jnp.sign(
                tree_vdot(xi, jt_xi) * tree_vdot(at_xi, jt_xi) / n_params + align_eps
            )
        direction = jax.tree.map(lambda v, a: v + scale * a, xi, at_xi)
        new_x, new_y, delta_x, delta_y = gradient_step(
            params_x, params_y, *direction, lr_x, lr_y, project_x, project_y
        )
        info = step_info(f, g, *xi, delta_x, delta_y, new_x, new_y, grad_evals=3, aux=aux)
        return new_x, new_y, state, info

    return GameOptimizer(init, update)
