"""Alternating gradient descent (AltGD): the discriminator steps, then the generator.

The standard GAN training loop (Goodfellow et al. 2014, Alg. 1; WGAN-GP with n_critic = 5,
Gulrajani et al. 2017, Alg. 1): `n_disc` discriminator steps, each on fresh data, then one
generator step against the *updated* discriminator, each player through its own optax
transform. With `order="disc_first"`, for i = 0 .. n_disc-1:

    (Δy, s_y) = T_y(∇y g_i(x_t, y^{(i)}), s_y),   y^{(i+1)} = y^{(i)} + Δy,
    (Δx, s_x) = T_x(∇x f_{n}(x_t, y^{(n)}), s_x),  x_{t+1} = x_t + Δx,   y_{t+1} = y^{(n)},

where f_i, g_i are the losses of `game.at_substep(i)` and n = n_disc. With
`order="gen_first"` the generator steps first on substep 0 and the discriminator then
takes its n_disc steps on substeps 1 .. n_disc against the new generator. On the
Dirac-GAN, AltGD cycles where SimGD spirals out (Mescheder et al. 2018, Sec. 2).

Each step differentiates only the stepping player's own loss. Cost convention: one
single-player gradient is one forward and one reverse pass, as dear as a gradient of both
losses in a GAN, so each counts 1: `grad_evals = n_disc + 1`.

Info: f and g (and ∇x f) at the generator step; ∇y g of the last discriminator step; aux
of the last loss evaluation (the generator step for "disc_first", the last discriminator
step for "gen_first"); update norms over the whole step; parameter norms after it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gan_dynamics.game import Game, Params
from gan_dynamics.optimizers.base import GameOptimizer, step_info
from gan_dynamics.optimizers.simgd import PlayerStates, player_transform

ORDERS = ("disc_first", "gen_first")


def _player_step(transform, player: str, game: Game, params_x, params_y, state):
    """One step of `player` ("x" or "y") on its own loss; the other player is fixed."""

    def own_loss(own):
        px, py = (own, params_y) if player == "x" else (params_x, own)
        (f, g), aux = game.losses(px, py)
        return (f if player == "x" else g), (f, g, aux)

    own = params_x if player == "x" else params_y
    (_, (f, g, aux)), grad = jax.value_and_grad(own_loss, has_aux=True)(own)
    delta, state = transform.update(grad, state, own)
    return optax.apply_updates(own, delta), state, (f, g, grad, aux)


def altgd(
    transform_x: Optional[Mapping[str, Any]] = None,
    transform_y: Optional[Mapping[str, Any]] = None,
    n_disc: int = 1,
    order: str = "disc_first",
) -> GameOptimizer:
    """Alternating gradient descent with one optax transform per player.

    Args:
      transform_x: the generator's transform spec, e.g. `{"name": "adam", "lr": 1e-4,
        "b1": 0.5, "b2": 0.9}` (`lr` may be traced).
      transform_y: the discriminator's transform spec.
      n_disc: discriminator steps per generator step (a Python int >= 1; static).
      order: "disc_first" (discriminator steps, then the generator) or "gen_first".
    """
    tx = player_transform("altgd", "transform_x", transform_x)
    ty = player_transform("altgd", "transform_y", transform_y)
    if isinstance(n_disc, (bool, np.bool_)) or not isinstance(n_disc, (int, np.integer)):
        raise ValueError(f"altgd: n_disc must be a Python int >= 1, got {n_disc!r}.")
    if n_disc < 1:
        raise ValueError(f"altgd: n_disc must be >= 1 (discriminator steps), got {n_disc}.")
    if order not in ORDERS:
        raise ValueError(f"altgd: order must be one of {ORDERS}, got {order!r}.")
    n_disc = int(n_disc)

    def init(params_x: Params, params_y: Params) -> PlayerStates:
        return PlayerStates(tx.init(params_x), ty.init(params_y))

    def disc_steps(game: Game, first: int, params_x, params_y, state_y):
        """n_disc discriminator steps on substeps first .. first+n_disc-1 (one trace)."""

        def body(k, carry):
            py, sy, _ = carry
            return _player_step(ty, "y", game.at_substep(first + k), params_x, py, sy)

        # The loop carries the last step's (f, g, grad, aux); start it with zeros of
        # their abstract shapes so the body is traced once whatever n_disc is.
        shapes = jax.eval_shape(
            lambda px, py, sy: _player_step(ty, "y", game.at_substep(first), px, py, sy)[2],
            params_x, params_y, state_y,
        )
        last = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return lax.fori_loop(0, n_disc, body, (params_y, state_y, last))

    def update(game: Game, params_x: Params, params_y: Params, state: PlayerStates):
        if order == "disc_first":
            new_y, state_y, (_, _, grad_y, _) = disc_steps(game, 0, params_x, params_y, state.y)
            new_x, state_x, (f, g, grad_x, aux) = _player_step(
                tx, "x", game.at_substep(n_disc), params_x, new_y, state.x
            )
        else:
            new_x, state_x, (f, g, grad_x, _) = _player_step(
                tx, "x", game.at_substep(0), params_x, params_y, state.x
            )
            new_y, state_y, (_, _, grad_y, aux) = disc_steps(game, 1, new_x, params_y, state.y)
        info = step_info(
            f, g, grad_x, grad_y,
            jax.tree.map(jnp.subtract, new_x, params_x),
            jax.tree.map(jnp.subtract, new_y, params_y),
            new_x, new_y, grad_evals=n_disc + 1, aux=aux,
        )
        return new_x, new_y, PlayerStates(state_x, state_y), info

    return GameOptimizer(init, update, substeps=n_disc + 1)
