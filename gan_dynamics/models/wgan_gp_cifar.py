"""The CIFAR-10 DCGAN of the WGAN-GP code (Gulrajani et al. 2017, `gan_cifar.py`, DIM=128).

Source: github.com/igul222/improved_wgan_training, `gan_cifar.py` with its `tflib` ops
(the model behind the paper's CIFAR-10 DCGAN-architecture results and the ICR paper's
Adam WGAN-GP baseline):

  G: z (128) -> Linear(4*4*4*DIM) -> BatchNorm (per feature, axes [0]) -> ReLU
     -> 4x4x(4*DIM) -> [Deconv 5x5 stride 2 SAME -> BatchNorm -> ReLU] to 2*DIM, DIM
     -> Deconv 5x5 stride 2 SAME to 3 -> tanh                       (32x32x3)
  D: [Conv 5x5 stride 2 SAME -> LeakyReLU(0.2)] to DIM, 2*DIM, 4*DIM -> Linear(1)
     (no batch norm: MODE='wgan-gp')

Every linear/conv has a bias. With DIM = 128: generator 1,056,768 (linear) + 16,384
(BN1 scale/offset over 8192 features) + 3,277,056 + 512 + 819,328 + 256 + 9,603
= 5,179,907 parameters; critic 9,728 + 819,456 + 3,277,312 + 8,193 = 4,114,689.
Initialisation follows tflib: conv filters uniform with std sqrt(4 / (fan_in + fan_out))
("he_init", fans counted per stride as tflib does), linear weights uniform with Glorot
std sqrt(2 / (n_in + n_out)), biases zero, BN scale 1 and offset 0.
"""

from __future__ import annotations

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_dynamics.models import layers

_BN = dict(momentum=0.9, epsilon=1e-5)


def _uniform_std(std: float) -> nn.initializers.Initializer:
    """tflib's `uniform(stdev)`: U(-std*sqrt(3), std*sqrt(3)), whose std is `std`."""
    bound = std * math.sqrt(3.0)

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _linear(features: int, n_in: int, name: str) -> nn.Dense:
    return nn.Dense(features, kernel_init=_uniform_std(math.sqrt(2.0 / (n_in + features))),
                    name=name)


def _conv(c_in: int, c_out: int, impl: str, name: str) -> layers.Conv:
    # tflib Conv2D, stride 2: fan_in = c_in*k^2, fan_out = c_out*k^2/stride^2.
    std = math.sqrt(4.0 / (c_in * 25 + c_out * 25 / 4))
    return layers.Conv(c_out, (5, 5), (2, 2), "SAME", kernel_init=_uniform_std(std),
                       impl=impl, name=name)


def _deconv(c_in: int, c_out: int, impl: str, name: str) -> layers.ConvTranspose:
    # tflib Deconv2D (always stride 2): fan_in = c_in*k^2/stride^2, fan_out = c_out*k^2.
    std = math.sqrt(4.0 / (c_in * 25 / 4 + c_out * 25))
    return layers.ConvTranspose(c_out, (5, 5), (2, 2), "SAME", kernel_init=_uniform_std(std),
                                impl=impl, name=name)


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, 32, 32, channels) in [-1, 1].

    Attributes:
      z_dim: latent size (128 in the original).
      width: DIM of the original (128); channels go 4*width -> 2*width -> width.
      channels: output channels (3 for CIFAR-10).
      conv_impl: "auto", "lax" or "matmul" (`layers.CONV_IMPLS`); same function, other program.
    """

    z_dim: int = 128
    width: int = 128
    channels: int = 3
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        chex.assert_shape(z, (None, self.z_dim))
        c4, c2, c1 = 4 * self.width, 2 * self.width, self.width
        h = _linear(4 * 4 * c4, self.z_dim, "linear")(z)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1", **_BN)(h))
        h = h.reshape(z.shape[0], 4, 4, c4)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn2", **_BN)(
            _deconv(c4, c2, self.conv_impl, "deconv2")(h)))
        h = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn3", **_BN)(
            _deconv(c2, c1, self.conv_impl, "deconv3")(h)))
        return jnp.tanh(_deconv(c1, self.channels, self.conv_impl, "deconv5")(h))


class Discriminator(nn.Module):
    """Images (N, 32, 32, channels) -> critic values (N,); no batch norm.

    `train` is accepted for a uniform interface and has no effect.
    """

    width: int = 128
    channels: int = 3
    conv_impl: str = "auto"  # layers.CONV_IMPLS

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        del train
        chex.assert_shape(x, (None, 32, 32, self.channels))
        h = x
        c_in = self.channels
        for i, c_out in enumerate([self.width, 2 * self.width, 4 * self.width], start=1):
            h = nn.leaky_relu(_conv(c_in, c_out, self.conv_impl, f"conv{i}")(h), 0.2)
            c_in = c_out
        h = h.reshape(x.shape[0], -1)
        return _linear(1, h.shape[-1], "linear")(h)[:, 0]


def make(z_dim: int = 128, width: int = 128, channels: int = 3,
         conv_impl: str = "auto") -> tuple[Generator, Discriminator]:
    """The WGAN-GP CIFAR-10 generator and critic (defaults: DIM=128 as in `gan_cifar.py`)."""
    layers.resolve_conv_impl(conv_impl)
    return (Generator(z_dim=z_dim, width=width, channels=channels, conv_impl=conv_impl),
            Discriminator(width=width, channels=channels, conv_impl=conv_impl))
