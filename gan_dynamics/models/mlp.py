"""Fully connected generator and discriminator for low-dimensional data (mode-collapse toys).

The 2-D mixtures of Gaussians of the mode-collapse literature (`data.gaussian_mixtures`)
are learned with small ReLU MLPs: Metz et al. 2017 (*Unrolled GANs*, App. A) use a
generator with two hidden layers of 128 units on a 256-d latent and a discriminator
with one hidden layer; Srivastava et al. 2017 (*VEEGAN*, Sec. 5.1) three hidden layers
of 128 for both. Widths and depths are attributes, so a config chooses either (or a
smaller pair that a CPU trains in minutes).

Both follow the apply interface of the image models, `(inputs, train) -> outputs`
(`train` unused: no normalisation layers), so they plug into `objectives.linen_apply`
and `models.mix` like any model.
"""

from __future__ import annotations

from typing import Sequence

import chex
import flax.linen as nn
import jax

Array = jax.Array


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> points (N, out_dim): [Dense(h) -> ReLU]* -> Dense(out_dim)."""

    z_dim: int = 2
    hidden: Sequence[int] = (128, 128)
    out_dim: int = 2

    @nn.compact
    def __call__(self, z: Array, train: bool = True) -> Array:
        del train
        chex.assert_shape(z, (None, self.z_dim))
        h = z
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, name=f"hidden{i}")(h))
        return nn.Dense(self.out_dim, name="out")(h)


class MLPDiscriminator(nn.Module):
    """x (N, d) -> logits (N,): [Dense(h) -> ReLU]* -> Dense(1)."""

    hidden: Sequence[int] = (128,)

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        del train
        chex.assert_rank(x, 2)
        h = x
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, name=f"hidden{i}")(h))
        return nn.Dense(1, name="logit")(h)[:, 0]
