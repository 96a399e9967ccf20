"""Consensus optimisation (Mescheder, Nowozin & Geiger 2017, "The numerics of GANs", Alg. 1).

Simultaneous GDA spirals around an equilibrium where the game Jacobian has eigenvalues
with large imaginary part. Consensus optimisation adds a descent direction on the norm of
the gradient field, L(z) = ½‖ξ(z)‖², which every player agrees to decrease:

    z_{t+1} = z_t - η (ξ(z_t) + γ ∇L(z_t)),     ∇L = Jᵀ ξ,

with ξ = (∇x f, ∇y g), J its Jacobian and η = (lr_x, lr_y) per player (Mescheder et al.
2017, Alg. 1, there written for players that ascend their payoffs), then projected when
projections are given (`base`). `Jᵀξ` is one
vector-Jacobian product through the gradient map: no Hessian is formed.

Cost: one gradient and one VJP through it (`grad_evals = 2`). Info: losses, gradients ξ
and aux at z_t; parameter norms after the step.
"""

from __future__ import annotations

from typing import Optional

import jax
import optax
from jax.typing import ArrayLike

from gan_dynamics.game import Game, Params
from gan_dynamics.optimizers.base import (
    GameOptimizer,
    Projection,
    check_projection,
    gradient_field,
    gradient_step,
    scalar_hyperparameter,
    step_info,
)


def consensus(
    lr_x: Optional[ArrayLike] = None,
    lr_y: Optional[ArrayLike] = None,
    gamma: Optional[ArrayLike] = None,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Consensus optimisation; learning rates and γ are scalars and may be traced; the
    optional projections are applied after each update."""
    lr_x = scalar_hyperparameter("consensus", "lr_x", lr_x)
    lr_y = scalar_hyperparameter("consensus", "lr_y", lr_y)
    gamma = scalar_hyperparameter("consensus", "gamma", gamma)
    check_projection("consensus", "project_x", project_x)
    check_projection("consensus", "project_y", project_y)

    def init(params_x: Params, params_y: Params) -> optax.EmptyState:
        del params_x, params_y
        return optax.EmptyState()

    def update(game: Game, params_x: Params, params_y: Params, state: optax.EmptyState):
        xi, vjp_fn, (f, g, aux) = jax.vjp(gradient_field(game), params_x, params_y, has_aux=True)
        grad_l = vjp_fn(xi)
        direction = jax.tree.map(lambda v, w: v + gamma * w, xi, grad_l)
        new_x, new_y, delta_x, delta_y = gradient_step(
            params_x, params_y, *direction, lr_x, lr_y, project_x, project_y
        )
        info = step_info(f, g, *xi, delta_x, delta_y, new_x, new_y, grad_evals=2, aux=aux)
        return new_x, new_y, state, info

    return GameOptimizer(init, update)
