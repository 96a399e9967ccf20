"""Small random games with dict-pytree parameters and their dense second derivatives.

The dense blocks are built with `jax.hessian` on the flattened losses: the reference the
matrix-free CGD products and solvers are checked against (docs/design.md Sec. 9).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gan_dynamics.game import Game


def random_params(seed: int):
    rng = np.random.default_rng(seed)
    px = {"a": jnp.asarray(rng.normal(size=3)), "b": jnp.asarray(rng.normal(size=(2, 2)))}
    py = {"c": jnp.asarray(rng.normal(size=4)), "d": jnp.asarray(rng.normal(size=2))}
    return px, py


def random_game(seed: int, zero_sum: bool, coupling: float = 1.0) -> Game:
    """A smooth nonlinear game on 7 + 6 parameters; general-sum adds an extra g term."""
    rng = np.random.default_rng(1000 + seed)
    w1 = jnp.asarray(rng.normal(size=(5, 7)))
    w2 = jnp.asarray(rng.normal(size=(5, 6)))
    qx = jnp.asarray(rng.normal(size=(7, 7)))
    qy = jnp.asarray(rng.normal(size=(6, 6)))
    w3 = jnp.asarray(rng.normal(size=(6, 7)))

    def f(px, py):
        x, y = ravel_pytree(px)[0], ravel_pytree(py)[0]
        return (coupling * jnp.sum(jnp.tanh(w1 @ x) * (w2 @ y))
                + 0.1 * x @ qx @ qx.T @ x - 0.1 * y @ qy @ qy.T @ y + 0.05 * jnp.sum(x**3))

    def g(px, py):
        x, y = ravel_pytree(px)[0], ravel_pytree(py)[0]
        return -f(px, py) + 0.3 * jnp.sum(jnp.sin(w3 @ x) * y) + 0.2 * jnp.sum(y**2)

    def losses(px, py):
        fv = f(px, py)
        gv = -fv if zero_sum else g(px, py)
        return (fv, gv), {"f_copy": fv}

    return Game(losses=losses, zero_sum=zero_sum)


def dense_blocks(game: Game, px, py):
    """gx, gy (each player's own gradient), Dxy f (nx x ny), Dyx g (ny x nx), densely."""
    x, unravel_x = ravel_pytree(px)
    y, unravel_y = ravel_pytree(py)
    nx = x.shape[0]

    def joint(which):
        def fn(z):
            return game.losses(unravel_x(z[:nx]), unravel_y(z[nx:]))[0][which]
        return fn

    z = jnp.concatenate([x, y])
    hf = jax.hessian(joint(0))(z)
    hg = jax.hessian(joint(1))(z)
    gx = jax.grad(joint(0))(z)[:nx]
    gy = jax.grad(joint(1))(z)[nx:]
    return np.asarray(gx), np.asarray(gy), np.asarray(hf[:nx, nx:]), np.asarray(hg[nx:, :nx])


def dense_competitive_step(gx, gy, dxy_f, dyx_g, eta_x, eta_y):
    """Solve the block system of CGD densely with (diagonal) step sizes."""
    nx, ny = gx.shape[0], gy.shape[0]
    ex = np.broadcast_to(eta_x, (nx,))
    ey = np.broadcast_to(eta_y, (ny,))
    block = np.block([[np.eye(nx), ex[:, None] * dxy_f], [ey[:, None] * dyx_g, np.eye(ny)]])
    rhs = -np.concatenate([ex * gx, ey * gy])
    sol = np.linalg.solve(block, rhs)
    return sol[:nx], sol[nx:]
