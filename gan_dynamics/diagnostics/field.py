"""The simultaneous gradient field of a game and its Jacobian, as flat linear maps.

For a game where x minimises f and y minimises g (`game.Game`) the field is

    v(x, y) = (∇x f(x, y), ∇y g(x, y)),

the direction simultaneous gradient descent moves against (z ← z − η v). Its Jacobian

    J = [[∇²xx f, ∇²xy f],
         [∇²yx g, ∇²yy g]]

governs the local dynamics of every game optimizer: near a stationary point z*, SimGD is
z − z* ← (I − ηJ)(z − z*), so eigenvalues of J with positive real part attract and purely
imaginary ones rotate (Mescheder, Nowozin & Geiger 2017, "The Numerics of GANs";
Balduzzi et al. 2018, "The Mechanics of n-Player Differentiable Games"). Mescheder et al.
write the Jacobian of the update direction −v, whose eigenvalues are the negatives of these.

Parameters are pytrees; the field is flattened with `ravel_pytree((params_x, params_y))`:
x first, then y, in that function's leaf order. J is never formed: `jax.linearize` of the
flat field at z gives u ↦ J u (forward-over-reverse, one linearisation reused for every
product) and `jax.linear_transpose` of it u ↦ Jᵀ u. Both linear maps are
`jax.tree_util.Partial`s, so they pass into jitted functions as arguments.
Second-derivative products treat the game's aux (batch statistics) as constants
(`game.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gan_dynamics.game import Game, Params, gradients

Array = jax.Array


class FlatGame(NamedTuple):
    """A game at one point, seen through the flat vector z = (x, y).

    Attributes:
      z: the flat point (n_x + n_y,).
      n_x: the generator's number of parameters (z[:n_x] is x).
      unravel: flat vector -> (params_x, params_y).
      field: flat z -> flat v(z).
    """

    z: Array
    n_x: int
    unravel: Callable[[Array], tuple[Params, Params]]
    field: Callable[[Array], Array]

    @property
    def n(self) -> int:
        return self.z.shape[0]

    def split(self, flat: Array) -> tuple[Array, Array]:
        """(x part, y part) of a flat vector."""
        return flat[: self.n_x], flat[self.n_x:]


def simultaneous_gradient(game: Game, params_x: Params, params_y: Params) -> tuple[Params, Params]:
    """(∇x f, ∇y g) at (x, y) as two pytrees (one reverse sweep per player's loss)."""
    grads = gradients(game, params_x, params_y)
    return grads.grad_x, grads.grad_y


def flat_game(game: Game, params_x: Params, params_y: Params) -> FlatGame:
    """The game's field as a function of the flat point z = ravel((x, y))."""
    z, unravel = ravel_pytree((params_x, params_y))
    n_x = ravel_pytree(params_x)[0].shape[0]

    def field(z_flat: Array) -> Array:
        px, py = unravel(z_flat)
        gx, gy = simultaneous_gradient(game, px, py)
        return ravel_pytree((gx, gy))[0].astype(z_flat.dtype)

    return FlatGame(z, n_x, unravel, field)


def linearize_field(fg: FlatGame, z: Array | None = None):
    """(v(z), u ↦ J u) at z (default: fg.z); the linear map is a `Partial` pytree."""
    return jax.linearize(fg.field, fg.z if z is None else z)


def jitted_linearization(fg: FlatGame):
    """(v(z), u ↦ J u) at fg.z computed under jit; apply the map with `apply_map`."""
    return jax.jit(lambda z: jax.linearize(fg.field, z))(fg.z)


@jax.jit
def apply_map(linear_map: Callable[[Array], Array], u: Array) -> Array:
    """A linearised map (a `Partial`) applied to u, jitted once per map structure."""
    return linear_map(u)


def transpose_map(jvp: Callable[[Array], Array], like: Array) -> Callable[[Array], Array]:
    """u ↦ Jᵀ u from u ↦ J u (a linear map on vectors shaped like `like`)."""
    transposed = jax.linear_transpose(jvp, like)
    return lambda u: transposed(u)[0]


def dense_jacobian(fg: FlatGame, z: Array | None = None) -> Array:
    """J at z as a dense (n, n) matrix by `jax.jacfwd` (small models and tests only)."""
    return jax.jacfwd(fg.field)(fg.z if z is None else z)


def player_hessians(game: Game, params_x: Params, params_y: Params):
    """(u_x ↦ ∇²xx f u_x, u_y ↦ ∇²yy g u_y) as linear maps on each player's flat vector.

    Each player's Hessian of its own loss, the diagonal blocks of J: a point where both
    are positive semi-definite satisfies the second-order conditions of a local Nash
    equilibrium (each player at a local minimum of its own loss given the other's).
    """
    x0, unravel_x = ravel_pytree(params_x)
    y0, unravel_y = ravel_pytree(params_y)
    grad_f = lambda x: ravel_pytree(
        jax.grad(lambda px: game.losses(px, params_y)[0][0])(unravel_x(x)))[0].astype(x.dtype)
    grad_g = lambda y: ravel_pytree(
        jax.grad(lambda py: game.losses(params_x, py)[0][1])(unravel_y(y)))[0].astype(y.dtype)
    _, hxx = jax.linearize(grad_f, x0)
    _, hyy = jax.linearize(grad_g, y0)
    return hxx, hyy


def dense_player_hessians(game: Game, params_x: Params, params_y: Params) -> tuple[Array, Array]:
    """∇²xx f and ∇²yy g as dense matrices (small models and tests only)."""
    x0, unravel_x = ravel_pytree(params_x)
    y0, unravel_y = ravel_pytree(params_y)
    hxx = jax.hessian(lambda x: game.losses(unravel_x(x), params_y)[0][0])(x0)
    hyy = jax.hessian(lambda y: game.losses(params_x, unravel_y(y))[0][1])(y0)
    return hxx, hyy


def flat_norm(tree) -> Array:
    """Euclidean norm of a pytree's concatenated leaves."""
    return jnp.linalg.norm(ravel_pytree(tree)[0])
