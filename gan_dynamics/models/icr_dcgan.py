"""The DCGAN-like CIFAR-10 pair of the ICR paper (Schaefer, Zheng & Anandkumar 2020).

Implicit competitive regularization in GANs trains this pair with ACGD and the WGAN loss
without gradient penalty (their best CIFAR-10 Inception Score; docs/design.md Sec. 6). It is
`GoodGenerator` / `GoodDiscriminator` with `DIM = 64` in the authors' code,
github.com/devzhk/Implicit-Competitive-Regularization, `GANs/models.py`:

  G: z (128) -> Linear(4*4*4*DIM) -> BatchNorm1d (per feature) -> ReLU -> 4x4x(4*DIM)
     -> [ConvTranspose 4x4 stride 2 pad 1 -> BatchNorm -> ReLU] to 2*DIM, DIM
     -> ConvTranspose 4x4 stride 2 pad 1 to 3 channels -> tanh        (32x32x3)
  D: [Conv 4x4 stride 2 pad 1 -> LeakyReLU(0.01)] to DIM, 2*DIM, 4*DIM -> Linear(1)

Every conv/linear has a bias. With DIM = 64 this is 1,195,587 generator parameters (BN
scale and offset included, running statistics excluded) and 662,977 discriminator
parameters, the counts of the PyTorch original. Initialisation is PyTorch's default
(weights and biases U(+-1/sqrt(fan_in)), where a transposed convolution's fan_in is
out_channels * k * k, as torch computes it from its (in, out, k, k) weight), so that
the dynamics start where the paper's did.

Layout is NHWC. The 4x4x(4*DIM) reshape and the final flatten follow NHWC order instead
of torch's NCHW: a fixed permutation of linear features, the same function class.
"""

from __future__ import annotations

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_dynamics.models import layers

# PyTorch BatchNorm: momentum 0.1 on the new batch (flax weights the old average), eps 1e-5.
_BN = dict(momentum=0.9, epsilon=1e-5)
# torch ConvTranspose2d(k=4, s=2, p=1) doubles the size; lax pads the dilated input by k-1-p.
_UP_PAD = ((2, 2), (2, 2))
_DOWN_PAD = ((1, 1), (1, 1))


def _torch_uniform(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _dense(features: int, fan_in: int, name: str) -> nn.Dense:
    init = _torch_uniform(fan_in)
    return nn.Dense(features, kernel_init=init, bias_init=init, name=name)


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, 32, 32, channels) in [-1, 1].

    Attributes:
      z_dim: latent size (128 in the ICR code).
      width: DIM of the ICR code (64); channels go 4*width -> 2*width -> width.
      channels: output channels (3 for CIFAR-10, 1 for greyscale digits).
      conv_impl: "auto", "lax" or "matmul" (`layers.CONV_IMPLS`); same function, other program.
    """

    z_dim: int = 128
    width: int = 64
    channels: int = 3
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        chex.assert_shape(z, (None, self.z_dim))
        c4, c2, c1 = 4 * self.width, 2 * self.width, self.width
        h = _dense(4 * 4 * c4, self.z_dim, "linear")(z)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn0", **_BN)(h))
        h = h.reshape(z.shape[0], 4, 4, c4)
        for i, c_out in enumerate((c2, c1), start=1):
            init = _torch_uniform(c_out * 16)
            h = layers.ConvTranspose(c_out, (4, 4), (2, 2), _UP_PAD, kernel_init=init,
                                     bias_init=init, impl=self.conv_impl, name=f"deconv{i}")(h)
            h = nn.relu(nn.BatchNorm(use_running_average=not train, name=f"bn{i}", **_BN)(h))
        init = _torch_uniform(self.channels * 16)
        h = layers.ConvTranspose(self.channels, (4, 4), (2, 2), _UP_PAD, kernel_init=init,
                                 bias_init=init, impl=self.conv_impl, name="deconv3")(h)
        return jnp.tanh(h)


class Discriminator(nn.Module):
    """Images (N, 32, 32, channels) -> logits (N,); no normalisation layers.

    `train` is accepted for a uniform interface with batch-normed discriminators and has
    no effect here.
    """

    width: int = 64
    channels: int = 3
    conv_impl: str = "auto"  # layers.CONV_IMPLS

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        del train
        chex.assert_shape(x, (None, 32, 32, self.channels))
        h = x
        c_in = self.channels
        for i, c_out in enumerate([self.width, 2 * self.width, 4 * self.width], start=1):
            init = _torch_uniform(c_in * 16)
            h = layers.Conv(c_out, (4, 4), (2, 2), _DOWN_PAD, kernel_init=init, bias_init=init,
                            impl=self.conv_impl, name=f"conv{i}")(h)
            h = nn.leaky_relu(h, 0.01)  # torch.nn.LeakyReLU() default slope
            c_in = c_out
        h = h.reshape(x.shape[0], -1)
        return _dense(1, h.shape[-1], "linear")(h)[:, 0]


def make(z_dim: int = 128, width: int = 64, channels: int = 3,
         conv_impl: str = "auto") -> tuple[Generator, Discriminator]:
    """The ICR generator and discriminator (defaults: the paper's CIFAR-10 pair)."""
    layers.resolve_conv_impl(conv_impl)
    return (Generator(z_dim=z_dim, width=width, channels=channels, conv_impl=conv_impl),
            Discriminator(width=width, channels=channels, conv_impl=conv_impl))
