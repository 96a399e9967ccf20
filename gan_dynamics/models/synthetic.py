"""Models of the synthetic manifold experiments (Fedus et al. 2018, Secs. 4.1-4.2).

Generator: affine, `G(z) = mu + W z` with W in R^{d x k} (k = 1 in Exp I, k = 3 in
Exp II), "the same functional form" as the data (Sec. 4.1), so its distribution
N(mu, σ² W Wᵀ) is known in closed form. Its parameters are the pytree
`data.synthetic.AffineGaussian(mu, w)`, and its random initialisation is the law that
draws the data's parameters: the error of a freshly initialised generator is then the
"randomly initialized generator" reference line of the paper's Figs. 5, 6, 10, 11.

Discriminator: one hidden ReLU layer, "of higher complexity than the generator so that
it may learn non-linear boundaries in the space" (Sec. 4.1); one logit per example.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_dynamics.data import synthetic as synthetic_data

Array = jax.Array


def init_generator(
    key: Array, dim: int, latent_dim: int, mean_std: float = 1.0, direction_std: float = 1.0
) -> synthetic_data.AffineGaussian:
    """Random generator parameters, from the law of the data's parameters."""
    return synthetic_data.draw_affine_gaussian(key, dim, latent_dim, mean_std, direction_std)


def generate(params: synthetic_data.AffineGaussian, z: Array) -> Array:
    """G(z) = mu + W z for latents z (n, k) -> samples (n, d)."""
    return synthetic_data.affine_points(params, z)


class MLPDiscriminator(nn.Module):
    """x (n, d) -> logits (n,): Dense(hidden) -> ReLU -> Dense(1)."""

    hidden: int
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        chex.assert_rank(x, 2)
        h = nn.relu(nn.Dense(self.hidden, param_dtype=self.param_dtype, name="hidden")(x))
        return nn.Dense(1, param_dtype=self.param_dtype, name="logit")(h)[:, 0]
