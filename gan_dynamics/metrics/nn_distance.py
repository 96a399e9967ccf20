"""The neural-net distance between two sample sets (Arora et al. 2017, Def. 3.1).

For a class F of discriminators D and a concave measuring function φ,

    d_{F,φ}(μ, ν) = sup_{D ∈ F}  E_{x~μ} φ(D(x)) + E_{x~ν} φ(1 - D(x)) - 2 φ(1/2),

(Arora et al., Eq. 3 and Example 3.2):
- "wgan": φ(t) = t, D a real-valued critic: d = sup E_μ D - E_ν D, which needs a bounded
  class (WGAN weight clipping: every parameter in [-c, c]); a linear clipped critic
  `D(x) = aᵀx + b`, |a_k| ≤ c, gives the closed form c ‖E_μ x - E_ν x‖₁.
- "gan": φ = log with D = σ(t) for a logit t: d = sup E_μ log σ(t) + E_ν log σ(-t) + 2 log 2,
  the original GAN's objective, in [0, 2 log 2] (the Jensen-Shannon divergence times
  two when F holds every function).

Estimate: draw a discriminator of the class, fit it by Adam ascent (projected onto the
clipping box after each step when `clip` > 0) on a training part of both sample sets,
and report the objective on the held-out part, so that a discriminator that memorised
its training samples does not inflate the distance (Sec. 3's point: the distance is
meaningful when estimated on fresh samples). The result is a lower bound of the class's
supremum up to the held-out sampling error.

Usable on any two sample sets (`nn_distance`, pure and vmappable over keys); the image
runner evaluates it periodically (`runners.image_nn_distance`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gan_dynamics.models.mlp import MLPDiscriminator

Array = jax.Array
MEASURES = ("wgan", "gan")
CRITICS = ("linear", "mlp")


class NNDistanceConfig(NamedTuple):
    """How the distance is estimated.

    Attributes:
      measure: "wgan" (φ = identity) or "gan" (φ = log of a sigmoid probability).
      critic: "linear" or "mlp" (`hidden` widths).
      hidden: hidden widths of the MLP critic.
      clip: weight clipping box [-clip, clip] of every critic parameter (0: none; the
        "wgan" measure needs a bounded class, so it requires clip > 0).
      steps: Adam steps of the critic fit.
      lr: Adam learning rate.
      batch: examples of each set per step (full training part when larger).
      held_out: fraction of each sample set kept out of the fit and used to report.
    """

    measure: str = "gan"
    critic: str = "mlp"
    hidden: tuple[int, ...] = (64, 64)
    clip: float = 0.0
    steps: int = 500
    lr: float = 1e-3
    batch: int = 256
    held_out: float = 0.5


def check(config: NNDistanceConfig) -> None:
    """Fail early with a message on a bad estimation config."""
    if config.measure not in MEASURES:
        raise ValueError(f"nn_distance.measure={config.measure!r}; choose one of {MEASURES}.")
    if config.critic not in CRITICS:
        raise ValueError(f"nn_distance.critic={config.critic!r}; choose one of {CRITICS}.")
    if config.measure == "wgan" and not config.clip > 0:
        raise ValueError("nn_distance.measure='wgan' (φ = identity) is unbounded without a "
                         "bounded class: set nn_distance.clip > 0 (e.g. 0.01).")
    if not 0 < config.held_out < 1:
        raise ValueError(f"nn_distance.held_out={config.held_out} must be in (0, 1).")
    if config.steps < 1 or config.batch < 1 or not config.lr > 0:
        raise ValueError("nn_distance.steps, batch and lr must be positive.")


def objective(measure: str, d_p: Array, d_q: Array) -> Array:
    """E_p φ(D) + E_q φ(1 - D) - 2 φ(1/2) from critic outputs on the two sets."""
    if measure == "wgan":
        return jnp.mean(d_p) - jnp.mean(d_q)
    return (jnp.mean(jax.nn.log_sigmoid(d_p)) + jnp.mean(jax.nn.log_sigmoid(-d_q))
            + 2.0 * math.log(2.0))


def _critic(config: NNDistanceConfig) -> MLPDiscriminator:
    """The critic class F: [Dense(h) -> ReLU]* -> Dense(1) on flattened inputs (linear
    with no hidden layer)."""
    return MLPDiscriminator(hidden=() if config.critic == "linear" else tuple(config.hidden))


def _flat(x: Array) -> Array:
    return x.reshape(x.shape[0], -1)


def _project(params: Any, clip: float) -> Any:
    return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params) if clip > 0 else params


def nn_distance(key: Array, p: Array, q: Array, config: NNDistanceConfig | None = None
                ) -> dict[str, Array]:
    """The neural-net distance d_{F,φ}(p, q) of two sample sets (N, ...) and (M, ...).

    Pure and jittable (the config is static); vmap it over keys and sample sets.

    Returns:
      `nn_distance` (held-out objective of the fitted critic) and `nn_distance_train`
      (its value on the fitting part; much larger than the held-out one means the
      critic overfits).
    """
    config = NNDistanceConfig() if config is None else config
    check(config)
    p, q = jnp.asarray(p), jnp.asarray(q)
    n_p = p.shape[0] - int(round(config.held_out * p.shape[0]))
    n_q = q.shape[0] - int(round(config.held_out * q.shape[0]))
    if min(n_p, n_q, p.shape[0] - n_p, q.shape[0] - n_q) < 1:
        raise ValueError(f"Too few samples ({p.shape[0]}, {q.shape[0]}) to split "
                         f"{config.held_out:.0%} held out.")
    key_init, key_perm_p, key_perm_q, key_steps = jax.random.split(key, 4)
    p = p[jax.random.permutation(key_perm_p, p.shape[0])]
    q = q[jax.random.permutation(key_perm_q, q.shape[0])]
    train_p, test_p, train_q, test_q = p[:n_p], p[n_p:], q[:n_q], q[n_q:]
    critic = _critic(config)
    train_p, test_p, train_q, test_q = map(_flat, (train_p, test_p, train_q, test_q))
    params = _project(critic.init(key_init, train_p[:1])["params"], config.clip)
    adam = optax.adam(config.lr)
    bp, bq = min(config.batch, n_p), min(config.batch, n_q)

    def value(params, xp, xq):
        return objective(config.measure, critic.apply({"params": params}, xp),
                         critic.apply({"params": params}, xq))

    def step(carry, k):
        params, opt_state = carry
        kp, kq = jax.random.split(k)
        xp = train_p[jax.random.choice(kp, n_p, (bp,), replace=False)]
        xq = train_q[jax.random.choice(kq, n_q, (bq,), replace=False)]
        grad = jax.grad(lambda w: -value(w, xp, xq))(params)
        updates, opt_state = adam.update(grad, opt_state, params)
        return (_project(optax.apply_updates(params, updates), config.clip), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, adam.init(params)),
                                  jax.random.split(key_steps, config.steps))
    return {"nn_distance": value(params, test_p, test_q),
            "nn_distance_train": value(params, train_p, train_q)}
