"""Extragradient (Korpelevich 1976; for GANs Gidel et al. 2019, Sec. 3, update (EG)).

Each step first extrapolates along the simultaneous gradient field ξ = (∇x f, ∇y g) and
then updates *from the original point* with the field at the extrapolated point:

    z_{t+1/2} = z_t - η ξ(z_t),        z_{t+1} = z_t - η ξ(z_{t+1/2}),

with η = (lr_x, lr_y) per player. With projections P (`base`), both half-steps are
projected: z_{t+1/2} = P(z_t - η ξ(z_t)), z_{t+1} = P(z_t - η ξ(z_{t+1/2})). On a bilinear
game `f = xᵀAy` the linear map `I - ηJ + η²J²` contracts where simultaneous GDA's `I - ηJ` expands (Gidel et al. 2019,
Sec. 3; Mescheder et al. 2017).

Stochastic extragradient draws fresh samples for the second evaluation (Gidel et al. 2019,
Alg. 2): the extrapolation uses `game.at_substep(0)` and the update `game.at_substep(1)`;
a game without substeps gives the deterministic method.

Cost: two gradient evaluations (`grad_evals = 2`). Info: losses, gradients and aux at
z_t (substep 0), update norms of z_{t+1} - z_t, parameter norms after the step.
"""

from __future__ import annotations

from typing import Optional

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


def extragradient(
    lr_x: Optional[ArrayLike] = None,
    lr_y: Optional[ArrayLike] = None,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Extragradient with per-player learning rates (scalars; may be traced) and optional
    projections applied after both half-steps."""
    lr_x = scalar_hyperparameter("extragradient", "lr_x", lr_x)
    lr_y = scalar_hyperparameter("extragradient", "lr_y", lr_y)
    check_projection("extragradient", "project_x", project_x)
    check_projection("extragradient", "project_y", project_y)
    projections = (project_x, project_y)

    def init(params_x: Params, params_y: Params) -> optax.EmptyState:
        del params_x, params_y
        return optax.EmptyState()

    def update(game: Game, params_x: Params, params_y: Params, state: optax.EmptyState):
        here = gradients(game.at_substep(0), params_x, params_y)
        mid_x, mid_y, _, _ = gradient_step(
            params_x, params_y, here.grad_x, here.grad_y, lr_x, lr_y, *projections
        )
        mid = gradients(game.at_substep(1), mid_x, mid_y)
        new_x, new_y, delta_x, delta_y = gradient_step(
            params_x, params_y, mid.grad_x, mid.grad_y, lr_x, lr_y, *projections
        )
        info = step_info(
            here.f, here.g, here.grad_x, here.grad_y, delta_x, delta_y, new_x, new_y,
            grad_evals=2, aux=here.aux,
        )
        return new_x, new_y, state, info

    return GameOptimizer(init, update, substeps=2)
