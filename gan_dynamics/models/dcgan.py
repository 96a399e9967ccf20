"""The DCGAN of Radford, Metz & Chintala (2015), as used by Fedus et al. (2018) on real data.

Fedus et al., *Many paths to equilibrium*, Sec. 4 ("we control over discriminator and
generator architectures, using the ones used by DCGAN [Radford et al.]", with batch
normalization in every model) train this pair on Color MNIST, CelebA 64x64 and CIFAR-10.
The layer recipe is the reference implementation's, github.com/Newmu/dcgan_code
`faces/train_uncond_dcgan.py` (the paper's Fig. 1):

  G: z -> Linear(4*4*C0, no bias) -> BatchNorm (per feature) -> ReLU -> 4x4xC0
     -> [Deconv 5x5 stride 2 (no bias) -> BatchNorm -> ReLU] halving channels
     -> Deconv 5x5 stride 2 (no bias) to image channels -> tanh
  D: Conv 5x5 stride 2 (no bias) -> LeakyReLU(0.2)
     -> [Conv 5x5 stride 2 (no bias) -> BatchNorm -> LeakyReLU(0.2)] doubling channels
     -> Linear(1, no bias) (logit)

with weights N(0, 0.02), BN scale N(1, 0.02), BN offset 0. The number of stride-2 layers
is log2(image_size / 4): four for 64x64 (C0 = 8*width; Radford's LSUN figure has
width 128, the common ports 64) and three for 32x32 (C0 = 4*width: the same recipe one
octave smaller, as used for CIFAR-10 and Color MNIST). The paper does not publish
Fedus et al.'s widths; `width` defaults to 64 and the latent size is theirs to sweep
(100/128/150 for CelebA and CIFAR-10, 10/50/75 for Color MNIST).
"""

from __future__ import annotations

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_dynamics.models import layers

_W_INIT = nn.initializers.normal(0.02)
# Theano's deconv with border_mode=(2, 2) (the gradient of a 5x5 stride-2 conv padded by 2)
# puts input pixel i at output 2i + k - 2; lax pads the dilated input by (k-1-2, 2+1).
_UP_PAD = ((2, 3), (2, 3))
_DOWN_PAD = ((2, 2), (2, 2))


def _bn_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Radford's batch-norm gain init, N(1, 0.02)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


_BN = dict(momentum=0.9, epsilon=1e-5, scale_init=_bn_scale_init)


def _num_octaves(image_size: int) -> int:
    """Stride-2 layers between 4x4 and the image; fails for sizes that are not 4*2^k."""
    n = round(math.log2(image_size / 4)) if image_size >= 8 else 0
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"DCGAN image_size must be 4*2^k with k >= 1 (8, 16, 32, 64, ...); "
                         f"got {image_size}.")
    return n


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, image_size, image_size, channels) in [-1, 1].

    Attributes:
      image_size: 64 (CelebA) or 32 (CIFAR-10, Color MNIST); any 4*2^k works.
      z_dim: latent size.
      width: channels of the last hidden layer (ngf); the first has width*2^(k-1).
      channels: image channels.
      conv_impl: "auto", "lax" or "matmul" (`layers.CONV_IMPLS`); same function, other program.
    """

    image_size: int = 64
    z_dim: int = 100
    width: int = 64
    channels: int = 3
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        chex.assert_shape(z, (None, self.z_dim))
        n = _num_octaves(self.image_size)
        c = self.width * 2 ** (n - 1)
        h = nn.Dense(4 * 4 * c, use_bias=False, kernel_init=_W_INIT, name="linear")(z)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn0", **_BN)(h))
        h = h.reshape(z.shape[0], 4, 4, c)
        for i in range(1, n):
            c //= 2
            h = layers.ConvTranspose(c, (5, 5), (2, 2), _UP_PAD, use_bias=False,
                                     kernel_init=_W_INIT, impl=self.conv_impl,
                                     name=f"deconv{i}")(h)
            h = nn.relu(nn.BatchNorm(use_running_average=not train, name=f"bn{i}", **_BN)(h))
        h = layers.ConvTranspose(self.channels, (5, 5), (2, 2), _UP_PAD, use_bias=False,
                                 kernel_init=_W_INIT, impl=self.conv_impl, name=f"deconv{n}")(h)
        return jnp.tanh(h)


class Discriminator(nn.Module):
    """Images (N, image_size, image_size, channels) -> logits (N,), batch-normed.

    In training mode (`train=True`) batch norm uses the statistics of the batch given
    and updates `batch_stats` (apply with `mutable=["batch_stats"]`).
    """

    image_size: int = 64
    width: int = 64
    channels: int = 3
    conv_impl: str = "auto"  # layers.CONV_IMPLS

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        chex.assert_shape(x, (None, self.image_size, self.image_size, self.channels))
        n = _num_octaves(self.image_size)
        h = layers.Conv(self.width, (5, 5), (2, 2), _DOWN_PAD, use_bias=False,
                        kernel_init=_W_INIT, impl=self.conv_impl, name="conv1")(x)
        h = nn.leaky_relu(h, 0.2)
        for i in range(2, n + 1):
            h = layers.Conv(self.width * 2 ** (i - 1), (5, 5), (2, 2), _DOWN_PAD,
                            use_bias=False, kernel_init=_W_INIT, impl=self.conv_impl,
                            name=f"conv{i}")(h)
            h = nn.BatchNorm(use_running_average=not train, name=f"bn{i}", **_BN)(h)
            h = nn.leaky_relu(h, 0.2)
        h = h.reshape(x.shape[0], -1)
        return nn.Dense(1, use_bias=False, kernel_init=_W_INIT, name="linear")(h)[:, 0]


def make(image_size: int = 64, z_dim: int = 100, width: int = 64, channels: int = 3,
         conv_impl: str = "auto") -> tuple[Generator, Discriminator]:
    """The DCGAN pair for `image_size` x `image_size` x `channels` images."""
    _num_octaves(image_size)
    layers.resolve_conv_impl(conv_impl)
    return (Generator(image_size=image_size, z_dim=z_dim, width=width, channels=channels,
                      conv_impl=conv_impl),
            Discriminator(image_size=image_size, width=width, channels=channels,
                          conv_impl=conv_impl))
