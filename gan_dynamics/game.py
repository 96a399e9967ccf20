"""A two-player differentiable game: the object every game optimizer updates.

Player x (the generator) minimises its loss f(x, y); player y (the discriminator)
minimises its loss g(x, y). A zero-sum game has g = -f exactly (WGAN, minimax GAN);
penalties on one player or the non-saturating loss make a game general-sum
(Schaefer & Anandkumar 2019, Sec. 2; docs/design.md Sec. 3).

A `Game` is a pure description closed over a batch and a key inside a training step. It
knows nothing of GANs, images, devices or files. Parameters are arbitrary pytrees.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

Params = Any
Aux = Any
Array = jax.Array
# losses(params_x, params_y) -> ((f, g), aux): two scalars and any pytree of extras
# (metrics, new batch statistics). Second-derivative products treat aux as constant.
LossFn = Callable[[Params, Params], tuple[tuple[Array, Array], Aux]]
# One player's loss alone: (params_x, params_y) -> (loss, aux).
PlayerLossFn = Callable[[Params, Params], tuple[Array, Aux]]


class Game(NamedTuple):
    """Two players' losses as one pure function.

    Attributes:
      losses: `(params_x, params_y) -> ((f, g), aux)`; x minimises f, y minimises g.
      zero_sum: True when g == -f exactly. Enables the symmetric positive-definite CGD
        system (conjugate gradient) and one linearisation instead of two.
      substep: optional `i -> Game`, the same game on fresh data number i (an int32 that
        may be traced). Alternating optimizers take each discriminator step on
        `substep(i)` for i = 0 .. n_disc-1 and the generator step on `substep(n_disc)`,
        so that WGAN-GP's "fresh batch per critic iteration" is explicit. None means
        every substep sees this same game.
      loss_x: optional `(params_x, params_y) -> (f', aux)` for optimizers that update x
        alone (AltGD's generator step): f' has the gradient ∇x f and is f up to terms
        constant in x, and evaluates only what that gradient needs (a GAN's: G(z) and
        D(G(z)), without D on real data or the discriminator's penalty). None: f of
        `losses`.
      loss_y: the same for y alone (g up to terms constant in y). None: g of `losses`.
      carry_state: optional `aux -> Game`, this game (same data) starting from the model
        state (batch statistics) that an evaluation returned in `aux`, so that an
        optimizer taking several steps in one update carries the state from one to the
        next. None: the game has no model state.
    """

    losses: LossFn
    zero_sum: bool = False
    substep: Optional[Callable[[Array], "Game"]] = None
    loss_x: Optional[PlayerLossFn] = None
    loss_y: Optional[PlayerLossFn] = None
    carry_state: Optional[Callable[[Aux], "Game"]] = None

    def at_substep(self, i: Array | int) -> "Game":
        """The game on fresh data number `i` (itself when the game has no substeps)."""
        return self if self.substep is None else self.substep(jnp.asarray(i, jnp.int32))

    def carry(self, aux: Aux) -> "Game":
        """This game from the model state in `aux` (itself when it has no model state)."""
        return self if self.carry_state is None else self.carry_state(aux)

    def player_loss(self, player: str) -> PlayerLossFn:
        """`(params_x, params_y) -> (loss, aux)` of player "x" (f) or "y" (g) alone.

        The game's own `loss_x` / `loss_y` when given, else that entry of `losses`.
        """
        if player not in ("x", "y"):
            raise ValueError(f"player must be 'x' or 'y', got {player!r}.")
        own = self.loss_x if player == "x" else self.loss_y
        if own is not None:
            return own
        index = 0 if player == "x" else 1

        def loss(params_x, params_y):
            values, aux = self.losses(params_x, params_y)
            return values[index], aux

        return loss

    def f(self, params_x: Params, params_y: Params) -> Array:
        """The generator's loss alone."""
        return self.losses(params_x, params_y)[0][0]

    def g(self, params_x: Params, params_y: Params) -> Array:
        """The discriminator's loss alone."""
        return self.losses(params_x, params_y)[0][1]


def zero_sum_game(f: Callable[[Params, Params], Array]) -> Game:
    """The zero-sum game where x minimises f and y maximises it (no aux)."""

    def losses(params_x, params_y):
        value = f(params_x, params_y)
        return (value, -value), None

    return Game(losses=losses, zero_sum=True)


def general_sum_game(
    f: Callable[[Params, Params], Array], g: Callable[[Params, Params], Array]
) -> Game:
    """The game where x minimises f and y minimises g (no aux)."""

    def losses(params_x, params_y):
        return (f(params_x, params_y), g(params_x, params_y)), None

    return Game(losses=losses, zero_sum=False)


class Gradients(NamedTuple):
    """Each player's gradient of its own loss at one point, with the losses and aux."""

    f: Array
    g: Array
    grad_x: Params  # ∇x f
    grad_y: Params  # ∇y g
    aux: Aux


def gradients(game: Game, params_x: Params, params_y: Params) -> Gradients:
    """∇x f and ∇y g from one forward pass (one reverse sweep per player's loss).

    For a zero-sum game one reverse sweep of f gives both (∇y g = -∇y f).
    """
    if game.zero_sum:
        def f_only(px, py):
            (f, _), aux = game.losses(px, py)
            return f, aux

        (f, aux), (gx, gy_f) = jax.value_and_grad(f_only, argnums=(0, 1), has_aux=True)(
            params_x, params_y
        )
        return Gradients(f, -f, gx, jax.tree.map(jnp.negative, gy_f), aux)

    (f, g), vjp_fn, aux = jax.vjp(game.losses, params_x, params_y, has_aux=True)
    one, zero = jnp.ones_like(f), jnp.zeros_like(g)
    gx, _ = vjp_fn((one, zero))
    _, gy = vjp_fn((zero, one))
    return Gradients(f, g, gx, gy, aux)
