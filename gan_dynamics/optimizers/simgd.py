"""Simultaneous gradient descent (SimGD): both players step from the same point.

Each player follows its own gradient of its own loss, the *simultaneous gradient field*
`ξ(x, y) = (∇x f, ∇y g)` (Mescheder et al. 2017, Sec. 3; Balduzzi et al. 2018, Sec. 2),
through its own optax transform (SGD, Adam, RMSProp; `transforms.make_transform`):

    (Δx, s_x) = T_x(∇x f(x_t, y_t), s_x),   (Δy, s_y) = T_y(∇y g(x_t, y_t), s_y),
    x_{t+1} = P_x(x_t + Δx),   y_{t+1} = P_y(y_t + Δy),

with P_x, P_y the players' projections (identity unless given; `base`).

With SGD this is gradient descent-ascent `z_{t+1} = z_t - η ξ(z_t)`, which spirals out on
bilinear games by the factor sqrt(1 + η²) per step on `f = xy` (Schaefer & Anandkumar
2019; docs/design.md Sec. 9) and on the Dirac-GAN (Mescheder et al. 2018).

Cost: one gradient evaluation per step (`grad_evals = 1`). Info: losses, gradients and aux
at (x_t, y_t); parameter norms after the step.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import optax

from gan_dynamics.game import Game, Params, gradients
from gan_dynamics.optimizers.base import (
    GameOptimizer,
    PlayerStates,
    Projection,
    check_projection,
    player_transform,
    projected_step,
    step_info,
)


def simgd(
    transform_x: Optional[Mapping[str, Any]] = None,
    transform_y: Optional[Mapping[str, Any]] = None,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Simultaneous gradient descent with one optax transform per player.

    Args:
      transform_x: the generator's transform spec, e.g. `{"name": "sgd", "lr": 0.01}` or
        `{"name": "adam", "lr": 1e-4, "b1": 0.5, "b2": 0.9}` (`lr` may be traced).
      transform_y: the discriminator's transform spec.
      project_x, project_y: projections applied after each player's update (`base`).
    """
    tx = player_transform("simgd", "transform_x", transform_x)
    ty = player_transform("simgd", "transform_y", transform_y)
    check_projection("simgd", "project_x", project_x)
    check_projection("simgd", "project_y", project_y)

    def init(params_x: Params, params_y: Params) -> PlayerStates:
        return PlayerStates(tx.init(params_x), ty.init(params_y))

    def update(game: Game, params_x: Params, params_y: Params, state: PlayerStates):
        grads = gradients(game, params_x, params_y)
        delta_x, state_x = tx.update(grads.grad_x, state.x, params_x)
        delta_y, state_y = ty.update(grads.grad_y, state.y, params_y)
        new_x, delta_x = projected_step(
            project_x, params_x, optax.apply_updates(params_x, delta_x), delta_x)
        new_y, delta_y = projected_step(
            project_y, params_y, optax.apply_updates(params_y, delta_y), delta_y)
        info = step_info(
            grads.f, grads.g, grads.grad_x, grads.grad_y, delta_x, delta_y, new_x, new_y,
            grad_evals=1, aux=grads.aux,
        )
        return new_x, new_y, PlayerStates(state_x, state_y), info

    return GameOptimizer(init, update)
