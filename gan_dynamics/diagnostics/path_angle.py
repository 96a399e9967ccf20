"""Path-angle: the game's field along the straight line between two parameter points.

Berard, Gidel, Almahairi, Vincent & Lacoste-Julien 2020, "A Closer Look at the
Optimization Landscapes of Generative Adversarial Networks" (ICLR), Sec. 4: with θ0 the
start of training and θ1 its end, at θ_α = θ0 + α (θ1 − θ0) for α in a grid around
[0, 1] they plot each player's loss and the cosine between the game's vector field
v(θ_α) and the path direction θ1 − θ0, with the field's norm. A field that is nearly
orthogonal to the path around α = 1 (cosine oscillating through zero, a bump in the
norm) is their signature of rotation around a stationary point; a cosine that stays
positive and shrinks with the norm is what a minimisation looks like (their Fig. 4/5).

Here v = (∇x f, ∇y g) (`field.py`), and the cosine is taken with the direction θ1 − θ0
of the points passed, for both players together and for each player alone. Positive
cosine: the field points along the path (gradient descent moves back towards θ0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gan_dynamics.diagnostics.field import simultaneous_gradient
from gan_dynamics.game import Game, Params

Array = jax.Array


class PathAngle(NamedTuple):
    """The path-angle curves (arrays over the grid of α)."""

    alpha: Array  # (A,)
    f: Array  # generator loss at θ_α
    g: Array  # discriminator loss at θ_α
    field_norm: Array  # ‖v(θ_α)‖
    cosine: Array  # cos(v(θ_α), θ1 − θ0)
    cosine_x: Array  # the generator's part: cos(∇x f, x1 − x0)
    cosine_y: Array  # the discriminator's part: cos(∇y g, y1 − y0)


def default_alphas(num: int = 41, low: float = -0.5, high: float = 1.5) -> Array:
    """The grid of Berard et al.'s figures: [-0.5, 1.5]."""
    return jnp.linspace(low, high, num)


def _cosine(a: Array, b: Array) -> Array:
    denom = jnp.linalg.norm(a) * jnp.linalg.norm(b)
    return jnp.where(denom > 0, jnp.vdot(a, b) / jnp.where(denom > 0, denom, 1.0), 0.0)


def path_angle(game: Game, start: tuple[Params, Params], end: tuple[Params, Params],
               alphas: Array) -> PathAngle:
    """Losses, field norm and cosines along θ0 + α (θ1 − θ0), α in `alphas`.

    `start` and `end` are (params_x, params_y) of the same structure. One gradient
    evaluation per α (`lax.map`, so memory does not grow with the grid).
    """
    z0, unravel = ravel_pytree(start)
    z1, _ = ravel_pytree(end)
    if z0.shape != z1.shape:
        raise ValueError(f"start and end have {z0.shape[0]} and {z1.shape[0]} parameters.")
    n_x = ravel_pytree(start[0])[0].shape[0]
    direction = z1 - z0

    def at(alpha):
        px, py = unravel(z0 + alpha.astype(z0.dtype) * direction)
        (f, g), _ = game.losses(px, py)
        gx, gy = simultaneous_gradient(game, px, py)
        v = ravel_pytree((gx, gy))[0].astype(z0.dtype)
        return (f, g, jnp.linalg.norm(v), _cosine(v, direction),
                _cosine(v[:n_x], direction[:n_x]), _cosine(v[n_x:], direction[n_x:]))

    return PathAngle(alphas, *jax.lax.map(at, jnp.asarray(alphas)))
