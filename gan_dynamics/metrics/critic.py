"""Independent Wasserstein critic (Fedus et al. 2018, Sec. 5 and Fig. 8; Danihelka et al.
2017, "Comparison of maximum likelihood and GAN-based training of Real NVPs").

A fresh critic, independent of the GAN's discriminator, is trained with the WGAN-GP
objective (Gulrajani et al. 2017, Alg. 1: λ = 10 interpolation penalty, Adam with
lr 1e-4, β = (0.5, 0.9)) to separate one split of held-out real images from model
samples, and then evaluated on a second, disjoint pair of real images and samples:

    negative Wasserstein estimate  = E_fake D - E_real D   (on the evaluation pair),

the sign convention of Fedus et al.'s Fig. 8: the critic maximises E_real D - E_fake D,
an estimate of W_1(real, model) up to the critic's Lipschitz constant, so the reported
value is about -W_1: at most about 0, and higher is better. Evaluating on data the
critic was not trained on measures the distributions' distance rather than the critic's
memory, and a generator that copies training images is not rewarded, since neither real
split was ever trained on.

The critic: two stride-2 3x3 convolutions (width w, 2w; leaky ReLU 0.2), a linear
output; no normalisation (the gradient penalty is per example). Training is one jitted
`lax.scan` over `num_steps` critic updates, each on a fresh random minibatch of real
images and samples; everything is a pure function of the key.
"""

from __future__ import annotations

import dataclasses
import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_dynamics import penalties
from gan_dynamics.errors import UserError
from gan_dynamics.models import layers


@dataclasses.dataclass(frozen=True)
class CriticOptions:
    """Hyperparameters of the independent critic."""

    num_steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-4
    b1: float = 0.5
    b2: float = 0.9
    gp_weight: float = 10.0
    width: int = 32

    def __post_init__(self):
        if self.num_steps < 1 or self.batch_size < 1 or self.width < 1:
            raise UserError(f"Critic options need num_steps, batch_size and width >= 1; "
                            f"got {self}.")
        if not self.learning_rate > 0 or self.gp_weight < 0:
            raise UserError(f"Critic options need learning_rate > 0 and gp_weight >= 0; "
                            f"got {self}.")


class Critic(nn.Module):
    """Images (B, H, W, C) -> critic values (B,)."""

    width: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for w in (self.width, 2 * self.width):
            x = nn.leaky_relu(layers.Conv(w, (3, 3), strides=(2, 2))(x), 0.2)
        return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


def init_critic(key: jax.Array, image_shape: tuple[int, ...], options: CriticOptions):
    return Critic(options.width).init(key, jnp.zeros((1, *image_shape)))["params"]


@functools.partial(jax.jit, static_argnames="options")
def train_critic(key: jax.Array, real: jax.Array, fake: jax.Array,
                 options: CriticOptions = CriticOptions()):
    """Critic parameters after `options.num_steps` WGAN-GP updates on (real, fake).

    real (N, H, W, C) and fake (M, H, W, C): the pools minibatches are drawn from.
    Returns (params, losses (num_steps,)): the critic's loss E_fake D - E_real D + λ GP.
    """
    chex.assert_rank([real, fake], 4)
    chex.assert_equal_shape([real[0], fake[0]])
    module = Critic(options.width)
    penalty = penalties.interpolation_penalty(options.gp_weight)
    tx = optax.adam(options.learning_rate, b1=options.b1, b2=options.b2)
    key_init, key_train = jax.random.split(key)
    params = init_critic(key_init, real.shape[1:], options)

    def loss_fn(params, x_real, x_fake, key):
        critic = lambda x: module.apply({"params": params}, x)
        gp, _ = penalty.apply(critic, x_real, x_fake, key)
        return jnp.mean(critic(x_fake)) - jnp.mean(critic(x_real)) + gp

    def step(carry, i):
        params, opt_state = carry
        k_real, k_fake, k_gp = jax.random.split(jax.random.fold_in(key_train, i), 3)
        x_real = real[jax.random.randint(k_real, (options.batch_size,), 0, real.shape[0])]
        x_fake = fake[jax.random.randint(k_fake, (options.batch_size,), 0, fake.shape[0])]
        loss, grads = jax.value_and_grad(loss_fn)(params, x_real, x_fake, k_gp)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)),
                                       jnp.arange(options.num_steps))
    return params, losses


@functools.partial(jax.jit, static_argnums=0)
def _apply(width: int, params, x: jax.Array) -> jax.Array:
    return Critic(width).apply({"params": params}, x)


def negative_wasserstein(params, real: jax.Array, fake: jax.Array,
                         options: CriticOptions = CriticOptions(),
                         batch_size: int = 500) -> float:
    """E_fake D - E_real D of a trained critic over all of `real` and `fake`."""
    def mean_value(images):
        total = 0.0
        for start in range(0, images.shape[0], batch_size):
            total += float(jnp.sum(_apply(options.width, params, images[start:start + batch_size])))
        return total / images.shape[0]

    return mean_value(fake) - mean_value(real)


def independent_critic_score(key: jax.Array, real_train: jax.Array, fake_train: jax.Array,
                             real_eval: jax.Array, fake_eval: jax.Array,
                             options: CriticOptions = CriticOptions()) -> float:
    """Train a fresh critic on (real_train, fake_train) and return its negative
    Wasserstein estimate E_fake D - E_real D on (real_eval, fake_eval); higher is better."""
    if min(real_train.shape[0], fake_train.shape[0], real_eval.shape[0], fake_eval.shape[0]) < 2:
        raise UserError("The independent critic needs at least 2 images in each of its "
                        "four pools (real/fake, train/eval); raise config.eval.num_samples.")
    params, _ = train_critic(key, jnp.asarray(real_train), jnp.asarray(fake_train), options)
    return negative_wasserstein(params, jnp.asarray(real_eval), jnp.asarray(fake_eval), options)
