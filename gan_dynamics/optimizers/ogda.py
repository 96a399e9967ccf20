"""Optimistic gradient descent-ascent (OGDA; Daskalakis et al. 2018, "Training GANs with
Optimism", the optimistic mirror descent update of Sec. 1).

Each player steps along its current gradient plus the change since the last step, an
optimistic guess of the next gradient (Popov 1980; "optimistic mirror descent"):

    z_{t+1} = z_t - 2η ξ(z_t) + η ξ(z_{t-1}),

with ξ = (∇x f, ∇y g) the simultaneous gradient field and η = (lr_x, lr_y) per player
(then projected, z_{t+1} = P(...), when projections are given; `base`).
On bilinear games its last iterate converges where simultaneous GDA spirals out
(Daskalakis et al. 2018, Sec. 3). It is extragradient that reuses the previous step's
gradient instead of computing a second one (Gidel et al. 2019, "extrapolation from the
past").

There is no ξ(z_{-1}): the first step takes ξ(z_{-1}) = ξ(z_0), i.e. plain GDA
`z_1 = z_0 - η ξ(z_0)` (the state counts steps for this; its stored previous gradients
start as zeros and are not used on the first step).

Cost: one gradient evaluation (`grad_evals = 1`). Info: losses, gradients and aux at z_t;
parameter norms after the step.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from gan_dynamics.game import Game, Params, gradients
from gan_dynamics.optimizers.base import (
    GameOptimizer,
    Projection,
    check_projection,
    gradient_step,
    scalar_hyperparameter,
    step_info,
)


class OGDAState(NamedTuple):
    """The previous step's gradients ξ(z_{t-1}) and the number of steps taken."""

    prev_grad_x: Params
    prev_grad_y: Params
    count: jax.Array  # int32


def ogda(
    lr_x: Optional[ArrayLike] = None,
    lr_y: Optional[ArrayLike] = None,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Optimistic GDA with per-player learning rates (scalars; may be traced) and optional
    projections applied after each update."""
    lr_x = scalar_hyperparameter("ogda", "lr_x", lr_x)
    lr_y = scalar_hyperparameter("ogda", "lr_y", lr_y)
    check_projection("ogda", "project_x", project_x)
    check_projection("ogda", "project_y", project_y)

    def init(params_x: Params, params_y: Params) -> OGDAState:
        zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
        return OGDAState(zeros(params_x), zeros(params_y), jnp.zeros((), jnp.int32))

    def optimistic(grad, prev, first):
        return jax.tree.map(lambda g, p: 2 * g - jnp.where(first, g, p), grad, prev)

    def update(game: Game, params_x: Params, params_y: Params, state: OGDAState):
        grads = gradients(game, params_x, params_y)
        first = state.count == 0
        new_x, new_y, delta_x, delta_y = gradient_step(
            params_x, params_y,
            optimistic(grads.grad_x, state.prev_grad_x, first),
            optimistic(grads.grad_y, state.prev_grad_y, first),
            lr_x, lr_y, project_x, project_y,
        )
        info = step_info(
            grads.f, grads.g, grads.grad_x, grads.grad_y, delta_x, delta_y, new_x, new_y,
            grad_evals=1, aux=grads.aux,
        )
        new_state = OGDAState(
            grads.grad_x, grads.grad_y, optax.safe_int32_increment(state.count)
        )
        return new_x, new_y, new_state, info

    return GameOptimizer(init, update)
