"""Alternating gradient descent (AltGD): the discriminator steps, then the generator.

The standard GAN training loop (Goodfellow et al. 2014, Alg. 1; WGAN, Arjovsky et al.
2017, Alg. 1; WGAN-GP with n_critic = 5, Gulrajani et al. 2017, Alg. 1): `n_disc`
discriminator steps, each on fresh data, then one generator step against the *updated*
discriminator, each player through its own optax transform and its own projection
(identity unless given; WGAN's weight clipping). With `order="disc_first"`, for
i = 0 .. n_disc-1:

    (Δy, s_y) = T_y(∇y g_i(x_t, y^{(i)}), s_y),   y^{(i+1)} = P_y(y^{(i)} + Δy),
    (Δx, s_x) = T_x(∇x f_{n}(x_t, y^{(n)}), s_x),  x_{t+1} = P_x(x_t + Δx),   y_{t+1} = y^{(n)},

where f_i, g_i are the losses of `game.at_substep(i)` and n = n_disc: the critic is
projected after every one of its steps, so each critic step and the generator step start
from projected weights. With `order="gen_first"` the generator steps first on substep 0
and the discriminator then takes its n_disc steps on substeps 1 .. n_disc against the new
generator. On the Dirac-GAN, AltGD cycles where SimGD spirals out (Mescheder et al. 2018,
Sec. 2).

Each step evaluates and differentiates only the stepping player's own loss
(`Game.player_loss`): a GAN's generator step runs G and D(G(z)), not D on real data nor
the discriminator's penalty (`objectives.make_gan_game`). Model state (batch statistics)
is carried from step to step (`Game.carry`): critic step i starts from the state critic
step i-1 left, the generator step from the last critic step's, as PyTorch's training
loops update running statistics. Cost convention: one single-player gradient is one
forward and one reverse pass, as dear as a gradient of both losses in a GAN, so each
counts 1: `grad_evals = n_disc + 1`.

Info (what the logged losses then mean):
- `f`, `grad_norm_x`: the generator's loss and gradient at its step. For a GAN this is
  f up to terms constant in the generator: for the minimax and WGAN losses the term over
  real data is left out (WGAN: f = -E D(G(z)) at (x_t, y^{(n)})).
- `g`, `grad_norm_y`: the discriminator's loss (penalty included) and gradient at its
  last step, i.e. at (x_t, y^{(n-1)}) on substep n-1 for "disc_first".
- `aux_y`: the aux of that last discriminator step (a GAN's `d_real`, `d_fake`,
  `g_adversarial`, `penalty` metrics, all of that one evaluation).
- `aux`: the aux of the step's last evaluation, which holds the model state the step
  ends in (the generator step for "disc_first", the last discriminator step for
  "gen_first").
- update norms over the whole step (projections included); parameter norms after it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gan_dynamics.game import Game, Params
from gan_dynamics.optimizers.base import (
    GameOptimizer,
    PlayerStates,
    Projection,
    check_projection,
    player_transform,
    project,
    step_info,
)

ORDERS = ("disc_first", "gen_first")


def player_step(
    transform: optax.GradientTransformation,
    player: str,
    game: Game,
    params_x: Params,
    params_y: Params,
    state: optax.OptState,
    projection: Optional[Projection] = None,
) -> tuple[Params, optax.OptState, tuple[jax.Array, Params, Any]]:
    """One step of `player` ("x" or "y") on its own loss alone; the other player is fixed.

    Returns the player's new (projected) parameters, its transform's new state, and
    (loss, gradient, aux) at the point the step was taken from.
    """
    loss = game.player_loss(player)

    def own_loss(own):
        return loss(own, params_y) if player == "x" else loss(params_x, own)

    own = params_x if player == "x" else params_y
    (value, aux), grad = jax.value_and_grad(own_loss, has_aux=True)(own)
    delta, state = transform.update(grad, state, own)
    return project(projection, optax.apply_updates(own, delta)), state, (value, grad, aux)


def altgd(
    transform_x: Optional[Mapping[str, Any]] = None,
    transform_y: Optional[Mapping[str, Any]] = None,
    n_disc: int = 1,
    order: str = "disc_first",
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> GameOptimizer:
    """Alternating gradient descent with one optax transform per player.

    Args:
      transform_x: the generator's transform spec, e.g. `{"name": "adam", "lr": 1e-4,
        "b1": 0.5, "b2": 0.9}` (`lr` may be traced).
      transform_y: the discriminator's transform spec.
      n_disc: discriminator steps per generator step (a Python int >= 1; static).
      order: "disc_first" (discriminator steps, then the generator) or "gen_first".
      project_x, project_y: projections applied after every step of that player (the
        critic's after each of its n_disc steps; `base`).
    """
    tx = player_transform("altgd", "transform_x", transform_x)
    ty = player_transform("altgd", "transform_y", transform_y)
    if isinstance(n_disc, (bool, np.bool_)) or not isinstance(n_disc, (int, np.integer)):
        raise ValueError(f"altgd: n_disc must be a Python int >= 1, got {n_disc!r}.")
    if n_disc < 1:
        raise ValueError(f"altgd: n_disc must be >= 1 (discriminator steps), got {n_disc}.")
    if order not in ORDERS:
        raise ValueError(f"altgd: order must be one of {ORDERS}, got {order!r}.")
    check_projection("altgd", "project_x", project_x)
    check_projection("altgd", "project_y", project_y)
    n_disc = int(n_disc)

    def init(params_x: Params, params_y: Params) -> PlayerStates:
        return PlayerStates(tx.init(params_x), ty.init(params_y))

    def disc_steps(game: Game, first: int, params_x, params_y, state_y, carried):
        """n_disc discriminator steps on substeps first .. first+n_disc-1.

        Each starts from the model state the one before left in its aux; the first from
        `carried`'s (None: the game's own). Steps 2 .. n_disc are one traced loop body,
        so the trace does not grow with n_disc.
        """

        def step(k, py, sy, aux):
            sub = game.at_substep(first + k)
            sub = sub if aux is None else sub.carry(aux)
            return player_step(ty, "y", sub, params_x, py, sy, project_y)

        params_y, state_y, last = step(0, params_y, state_y, carried)
        if n_disc == 1:
            return params_y, state_y, last

        def body(k, carry):
            py, sy, (_, _, aux) = carry
            return step(k, py, sy, aux)

        return lax.fori_loop(1, n_disc, body, (params_y, state_y, last))

    def update(game: Game, params_x: Params, params_y: Params, state: PlayerStates):
        if order == "disc_first":
            new_y, state_y, (g, grad_y, aux_y) = disc_steps(
                game, 0, params_x, params_y, state.y, None)
            new_x, state_x, (f, grad_x, aux) = player_step(
                tx, "x", game.at_substep(n_disc).carry(aux_y), params_x, new_y, state.x,
                project_x)
        else:
            new_x, state_x, (f, grad_x, aux_x) = player_step(
                tx, "x", game.at_substep(0), params_x, params_y, state.x, project_x)
            new_y, state_y, (g, grad_y, aux_y) = disc_steps(
                game, 1, new_x, params_y, state.y, aux_x)
            aux = aux_y
        info = step_info(
            f, g, grad_x, grad_y,
            jax.tree.map(jnp.subtract, new_x, params_x),
            jax.tree.map(jnp.subtract, new_y, params_y),
            new_x, new_y, grad_evals=n_disc + 1, aux=aux,
        )
        info["aux_y"] = aux_y
        return new_x, new_y, PlayerStates(state_x, state_y), info

    return GameOptimizer(init, update, substeps=n_disc + 1)
