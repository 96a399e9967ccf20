"""A small GAN on vectors for optimizer tests: an affine generator and a tanh-MLP critic.

Float64-friendly (parameters take the dtype asked for), stateless unless a test threads
its own model state, with a fresh batch per substep (`Game.substep`) drawn from a step key.
"""

import jax
import jax.numpy as jnp
import numpy as np

from gan_dynamics import objectives

DIM, LATENT, HIDDEN, BATCH = 2, 2, 4, 8


def init_params(seed: int = 0, dtype=jnp.float64):
    """(generator params, critic params) as dict pytrees."""
    rng = np.random.default_rng(seed)
    arr = lambda *shape, s=1.0: jnp.asarray(s * rng.normal(size=shape), dtype)  # noqa: E731
    px = {"w": arr(LATENT, DIM), "b": arr(DIM, s=0.1)}
    py = {"hidden": {"w": arr(DIM, HIDDEN, s=0.5), "b": arr(HIDDEN, s=0.1)},
          "out": {"w": arr(HIDDEN, s=0.5), "b": arr(1, s=0.1)}}
    return px, py


def generator(px, z):
    return z @ px["w"] + px["b"]


def critic(py, x):
    h = jnp.tanh(x @ py["hidden"]["w"] + py["hidden"]["b"])
    return h @ py["out"]["w"] + py["out"]["b"][0]


def batch_fn(step_key, dtype=jnp.float64):
    """`i -> (real, z, key)`: fresh data number i of the step keyed `step_key`."""

    def batch(i):
        k_real, k_z, k_pen = jax.random.split(jax.random.fold_in(step_key, i), 3)
        real = 1.0 + 0.5 * jax.random.normal(k_real, (BATCH, DIM), dtype)
        return real, jax.random.normal(k_z, (BATCH, LATENT), dtype), k_pen

    return batch


def make_game(step_key, loss="wgan", penalty=None, generate=None, discriminate=None,
              state_x=None, state_y=None, dtype=jnp.float64):
    """The GAN game of one step: substep i plays on `batch_fn(step_key)(i)`."""
    batch = batch_fn(step_key, dtype)
    return objectives.make_gan_game(
        loss, generate or objectives.stateless(generator),
        discriminate or objectives.stateless(critic), *batch(0), penalty=penalty,
        state_x=state_x, state_y=state_y, substep_batch=batch)


def max_abs(tree) -> jax.Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(tree)]))
