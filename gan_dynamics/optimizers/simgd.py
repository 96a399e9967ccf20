"""Simultaneous gradient descent (SimGD): both players step from the same point.

Each player follows its own gradient of its own loss, the *simultaneous gradient field*
`ξ(x, y) = (∇x f, ∇y g)` (Mescheder et al. 2017, Sec. 3; Balduzzi et al. 2018, Sec. 2),
through its own optax transform (SGD, Adam, RMSProp; `transforms.make_transform`):

    (Δx, s_x) = T_x(∇x f(x_t, y_t), s_x),   (Δy, s_y) = T_y(∇y g(x_t, y_t), s_y),
    x_{t+1} = x_t + Δx,   y_{t+1} = y_t + Δy.

With SGD this is gradient descent-ascent `z_{t+1} = z_t - η ξ(z_t)`, which spirals out on
bilinear games by the factor sqrt(1 + η²) per step on `f = xy` (Schaefer & Anandkumar
2019; DESIGN.md Sec. 9) and on the Dirac-GAN (Mescheder et al. 2018).

This module also holds what the other first-order game optimizers share: the gradient
field as a differentiable function (`gradient_field`; consensus optimisation and SGA
differentiate it), the plain step `z - η d` along a direction (`gradient_step`), and the
checks on their hyperparameters (`scalar_hyperparameter`, `player_transform`).

Cost: one gradient evaluation per step (`grad_evals = 1`). Info: losses, gradients and aux
at (x_t, y_t); parameter norms after the step.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_dynamics.game import Game, Params, gradients
from gan_dynamics.optimizers.base import GameOptimizer, step_info
from gan_dynamics.optimizers.transforms import make_transform

_SPEC_EXAMPLE = "{'name': 'adam', 'lr': 1e-4, 'b1': 0.5, 'b2': 0.9}"


class PlayerStates(NamedTuple):
    """The optax states of the two players' transforms."""

    x: optax.OptState
    y: optax.OptState


def player_transform(
    optimizer: str, argument: str, spec: Optional[Mapping[str, Any]]
) -> optax.GradientTransformation:
    """The optax transform a spec dict names; fails if the spec is missing or malformed.

    There is no default: a hidden learning rate would silently decide an experiment.
    """
    if spec is None:
        raise ValueError(
            f"{optimizer} needs {argument}, the player's optax transform spec, "
            f"e.g. {argument}={_SPEC_EXAMPLE} or {{'name': 'sgd', 'lr': 0.01}}."
        )
    # Duck-typed so that a config's ConfigDict works as well as a dict.
    if not callable(getattr(spec, "keys", None)):
        raise ValueError(
            f"{optimizer}: {argument} must be a dict spec such as {_SPEC_EXAMPLE}, "
            f"got {spec!r}."
        )
    return make_transform(spec)


def scalar_hyperparameter(optimizer: str, name: str, value: Any) -> jax.Array:
    """`value` as a real scalar array; it may be traced (vmapped learning rates).

    Only its type and shape are checked, never its value, so that a traced value passes.
    """
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        raise ValueError(f"{optimizer}: {name} must be a real scalar, got {value!r}.")
    try:
        array = jnp.asarray(value)
    except TypeError as err:
        raise ValueError(f"{optimizer}: {name} must be a real scalar, got {value!r}.") from err
    if array.ndim != 0 or not jnp.issubdtype(array.dtype, jnp.number) or jnp.iscomplexobj(
        array
    ):
        raise ValueError(
            f"{optimizer}: {name} must be a real scalar, got shape {array.shape} and dtype "
            f"{array.dtype}; to sweep several values, jax.vmap over the optimizer's use."
        )
    return array


def gradient_field(game: Game) -> Callable[[Params, Params], tuple[tuple[Params, Params], Any]]:
    """ξ: `(x, y) -> ((∇x f, ∇y g), (f, g, aux))`, differentiable with jvp/vjp/linearize.

    The Jacobian of ξ is the game Jacobian J = [[Dxx f, Dxy f], [Dyx g, Dyy g]] of
    Balduzzi et al. 2018 (Sec. 2); aux passes through as a constant.
    """

    def field(params_x, params_y):
        grads = gradients(game, params_x, params_y)
        return (grads.grad_x, grads.grad_y), (grads.f, grads.g, grads.aux)

    return field


def gradient_step(
    params_x: Params,
    params_y: Params,
    direction_x: Params,
    direction_y: Params,
    lr_x: jax.Array,
    lr_y: jax.Array,
) -> tuple[Params, Params, Params, Params]:
    """`x - lr_x d_x`, `y - lr_y d_y`, and the two steps taken (for the update norms)."""
    delta_x = jax.tree.map(lambda d: (-lr_x * d).astype(d.dtype), direction_x)
    delta_y = jax.tree.map(lambda d: (-lr_y * d).astype(d.dtype), direction_y)
    return (
        optax.apply_updates(params_x, delta_x),
        optax.apply_updates(params_y, delta_y),
        delta_x,
        delta_y,
    )


def simgd(
    transform_x: Optional[Mapping[str, Any]] = None,
    transform_y: Optional[Mapping[str, Any]] = None,
) -> GameOptimizer:
    """Simultaneous gradient descent with one optax transform per player.

    Args:
      transform_x: the generator's transform spec, e.g. `{"name": "sgd", "lr": 0.01}` or
        `{"name": "adam", "lr": 1e-4, "b1": 0.5, "b2": 0.9}` (`lr` may be traced).
      transform_y: the discriminator's transform spec.
    """
    tx = player_transform("simgd", "transform_x", transform_x)
    ty = player_transform("simgd", "transform_y", transform_y)

    def init(params_x: Params, params_y: Params) -> PlayerStates:
        return PlayerStates(tx.init(params_x), ty.init(params_y))

    def update(game: Game, params_x: Params, params_y: Params, state: PlayerStates):
        grads = gradients(game, params_x, params_y)
        delta_x, state_x = tx.update(grads.grad_x, state.x, params_x)
        delta_y, state_y = ty.update(grads.grad_y, state.y, params_y)
        new_x = optax.apply_updates(params_x, delta_x)
        new_y = optax.apply_updates(params_y, delta_y)
        info = step_info(
            grads.f, grads.g, grads.grad_x, grads.grad_y, delta_x, delta_y, new_x, new_y,
            grad_evals=1, aux=grads.aux,
        )
        return new_x, new_y, PlayerStates(state_x, state_y), info

    return GameOptimizer(init, update)
