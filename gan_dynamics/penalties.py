"""Discriminator regularisers: gradient penalties and WGAN weight clipping.

Every penalty is added to the discriminator's loss g only, which makes any GAN game
general-sum (Fedus et al. 2018, Sec. 2.3; docs/design.md Sec. 5). With critic logits D:

- interpolation penalty (WGAN-GP, Gulrajani et al. 2017, Eq. 3; Fedus et al., Eq. 7;
  GAN-GP when paired with the non-saturating loss): `λ E (‖∇x̂ D(x̂)‖ - 1)²` at
  `x̂ = ε x + (1-ε) G(z)`, ε ~ U[0, 1] per example; one-sided variant `λ E max(0, ‖∇‖-1)²`.
- DRAGAN (Kodali et al. 2017; DRAGAN-NS of Fedus et al. with the NS loss): the
  same penalty at perturbed real data `x + δ`, `δ = c · std(x) · u`. The public reference
  code (Kodali et al.'s DRAGAN; google/compare_gan's `dragan_penalty`, c = 0.5) takes std
  as one scalar over every entry of the batch and u uniform; the paper writes δ Gaussian.
  Both laws and a per-feature std are options. compare_gan also clips x + δ to its data
  range [0, 1]; we do not clip (Fedus et al. scale data to [-1, 1]).
- R1 / R2 (Mescheder et al. 2018, Eq. 9 and 10): `γ/2 E ‖∇x D(x)‖²` on real / generated data.
- Weight clipping (Arjovsky et al. 2017, Algorithm 1) is not a loss: it is a projection of
  the critic's network weights onto the box [-c, c] (`clip_weights`), which every game
  optimizer applies after each update of the critic (`weight_clip(c)` is the projection
  its factories take as `project_y`; `optimizers.base`).

A penalty sees the discriminator only as a *critic*: a function from a batch of inputs
(N, ...) (images (N, H, W, C) or vectors (N, d)) to logits (N,) or (N, 1), closed over the
discriminator's parameters, so that the penalty is differentiable in those parameters and,
through G(z), in the generator's. ‖∇D‖ is per example, over all non-batch axes, from the
gradient of Σ_n D(x_n): for a critic that couples examples (batch normalisation in
training mode) this is the usual implementation, the sum of the batch's outputs
differentiated at each example. Model state a critic evaluation would produce (batch
statistics) is discarded: penalty evaluations never update model state.

Square roots: `‖v‖ = sqrt(Σ v² + norm_eps)`. Without `norm_eps` the penalty's gradient is
0/0 wherever ∇D = 0 exactly (a critic with zero last layer, the Dirac-GAN at ψ = 0), and
competitive optimizers differentiate the penalty's gradient once more. The default 1e-10
is tf-gan's choice; it changes the penalty by about λ·norm_eps/(2‖∇D‖) and keeps it twice
differentiable everywhere (compare_gan uses 1e-4). R1/R2 use the squared norm and need no
square root.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

Array = jax.Array
PRNGKey = jax.Array
Params = Any
# inputs (N, ...) -> logits (N,) or (N, 1)
Critic = Callable[[Array], Array]
# (critic, real, fake, key) -> (penalty value, diagnostics)
PenaltyFn = Callable[[Critic, Array, Array, Optional[PRNGKey]], tuple[Array, dict[str, Array]]]

NORM_EPS = 1e-10
DRAGAN_NOISE = ("uniform", "normal")
DRAGAN_STD = ("global", "per_feature")


class Penalty(NamedTuple):
    """A regulariser of the discriminator's loss.

    Attributes:
      name: the registry name it was built under (for logs; `make_penalty` sets it).
      apply: `(critic, real, fake, key) -> (value, diagnostics)`; value is the scalar
        added to g, diagnostics a dict of scalars (`penalty_grad_norm`: mean per-example
        ‖∇D‖ at the penalty's points).
      needs_key: whether `apply` draws random numbers (then `key` must not be None).
    """

    name: str
    apply: PenaltyFn
    needs_key: bool


# ------------------------------------------------------------------ building blocks


def per_example_logits(logits: Array, batch_size: int) -> Array:
    """Logits of shape (N,) or (N, 1) as (N,); anything else is an error."""
    if logits.shape not in ((batch_size,), (batch_size, 1)):
        raise ValueError(
            f"The discriminator must return one logit per example, shape ({batch_size},) or "
            f"({batch_size}, 1); it returned shape {logits.shape}."
        )
    return logits.reshape(batch_size)


def input_gradients(critic: Critic, points: Array) -> Array:
    """∇x D at each example: the gradient of Σ_n D(x_n) with respect to `points`."""
    n = points.shape[0]
    return jax.grad(lambda p: jnp.sum(per_example_logits(critic(p), n)))(points)


def per_example_sq_norm(grads: Array) -> Array:
    """Σ over all non-batch axes of grads², shape (N,)."""
    return jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim)))


def gradient_norm_penalty(
    critic: Critic,
    points: Array,
    *,
    weight: float | Array,
    one_sided: bool = False,
    norm_eps: float = NORM_EPS,
) -> tuple[Array, dict[str, Array]]:
    """`weight · E (‖∇D(x)‖ - 1)²` over `points` (one-sided: `max(0, ‖∇D‖ - 1)²`)."""
    norms = jnp.sqrt(per_example_sq_norm(input_gradients(critic, points)) + norm_eps)
    excess = norms - 1.0
    if one_sided:
        excess = jax.nn.relu(excess)
    return weight * jnp.mean(jnp.square(excess)), {"penalty_grad_norm": jnp.mean(norms)}


def squared_gradient_penalty(
    critic: Critic, points: Array, *, weight: float | Array
) -> tuple[Array, dict[str, Array]]:
    """`weight/2 · E ‖∇D(x)‖²` over `points` (R1 on real data, R2 on generated data)."""
    sq = per_example_sq_norm(input_gradients(critic, points))
    return 0.5 * weight * jnp.mean(sq), {"penalty_grad_norm": jnp.mean(jnp.sqrt(sq))}


def interpolates(key: PRNGKey, real: Array, fake: Array) -> Array:
    """`ε x + (1-ε) G(z)` with one ε ~ U[0, 1] per example (Gulrajani et al. 2017, Alg. 1)."""
    if real.shape != fake.shape:
        raise ValueError(
            f"Interpolates need real and generated batches of one shape; got {real.shape} and "
            f"{fake.shape}. Draw as many latent codes as real examples."
        )
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    return eps * real + (1.0 - eps) * fake


def dragan_points(
    key: PRNGKey,
    real: Array,
    *,
    scale: float | Array = 0.5,
    noise: str = "uniform",
    std: str = "global",
) -> Array:
    """Perturbed real data `x + scale · std(x) · u` (DRAGAN, Kodali et al. 2017).

    Args:
      key: randomness for u.
      real: the real batch (N, ...).
      scale: c in the formula (0.5 in DRAGAN's and compare_gan's code).
      noise: law of u, elementwise: "uniform" U[-1, 1] (the reference code) or "normal"
        N(0, 1) (the paper's Gaussian perturbation).
      std: "global": one standard deviation over every entry of the batch (reference
        code); "per_feature": the standard deviation over the batch axis of each feature.
    """
    _check_choice("noise", noise, DRAGAN_NOISE)
    _check_choice("std", std, DRAGAN_STD)
    if noise == "uniform":
        u = jax.random.uniform(key, real.shape, real.dtype, minval=-1.0, maxval=1.0)
    else:
        u = jax.random.normal(key, real.shape, real.dtype)
    sigma = jnp.std(real) if std == "global" else jnp.std(real, axis=0, keepdims=True)
    return real + scale * sigma * u


# ------------------------------------------------------------------------- penalties


def interpolation_penalty(
    weight: float | Array = 10.0,
    one_sided: bool = False,
    norm_eps: float = NORM_EPS,
) -> Penalty:
    """WGAN-GP's penalty at random interpolates of real and generated data (λ = 10)."""
    _check_nonnegative("weight", weight)
    _check_nonnegative("norm_eps", norm_eps)

    def apply(critic, real, fake, key):
        points = interpolates(_require_key(key, "The interpolation penalty"), real, fake)
        return gradient_norm_penalty(
            critic, points, weight=weight, one_sided=one_sided, norm_eps=norm_eps
        )

    return Penalty("wgan_gp", apply, needs_key=True)


def dragan_penalty(
    weight: float | Array = 10.0,
    scale: float | Array = 0.5,
    noise: str = "uniform",
    std: str = "global",
    one_sided: bool = False,
    norm_eps: float = NORM_EPS,
) -> Penalty:
    """DRAGAN's penalty at perturbed real data (λ = 10, c = 0.5); see `dragan_points`."""
    _check_nonnegative("weight", weight)
    _check_nonnegative("scale", scale)
    _check_nonnegative("norm_eps", norm_eps)
    _check_choice("noise", noise, DRAGAN_NOISE)
    _check_choice("std", std, DRAGAN_STD)

    def apply(critic, real, fake, key):
        del fake
        points = dragan_points(_require_key(key, "The DRAGAN penalty"), real, scale=scale, noise=noise, std=std)
        return gradient_norm_penalty(
            critic, points, weight=weight, one_sided=one_sided, norm_eps=norm_eps
        )

    return Penalty("dragan", apply, needs_key=True)


def r1_penalty(weight: float | Array = 10.0) -> Penalty:
    """R1: `γ/2 E ‖∇D(x)‖²` on real data (Mescheder et al. 2018, Eq. 9); weight is γ."""
    _check_nonnegative("weight", weight)

    def apply(critic, real, fake, key):
        del fake, key
        return squared_gradient_penalty(critic, real, weight=weight)

    return Penalty("r1", apply, needs_key=False)


def r2_penalty(weight: float | Array = 10.0) -> Penalty:
    """R2: `γ/2 E ‖∇D(G(z))‖²` on generated data (Mescheder et al. 2018, Eq. 10); weight is γ."""
    _check_nonnegative("weight", weight)

    def apply(critic, real, fake, key):
        del real, key
        return squared_gradient_penalty(critic, fake, weight=weight)

    return Penalty("r2", apply, needs_key=False)


_REGISTRY: dict[str, Optional[Callable[..., Penalty]]] = {
    "none": None,
    "wgan_gp": interpolation_penalty,
    "gan_gp": interpolation_penalty,  # Fedus et al.'s name when paired with the NS loss
    "dragan": dragan_penalty,
    "r1": r1_penalty,
    "r2": r2_penalty,
}
PENALTIES = tuple(_REGISTRY)


def make_penalty(name: str, **kwargs: Any) -> Optional[Penalty]:
    """The penalty called `name` with its keyword options; "none" gives None.

    Options: wgan_gp, gan_gp: weight (λ), one_sided, norm_eps; dragan: weight, scale (c),
    noise, std, one_sided, norm_eps; r1, r2: weight (γ).
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown penalty {name!r}; choose one of {list(PENALTIES)}.")
    make = _REGISTRY[name]
    if make is None:
        if kwargs:
            raise ValueError(f"Penalty 'none' takes no options; got {sorted(kwargs)}.")
        return None
    accepted = list(inspect.signature(make).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"Penalty {name!r} does not take {unknown}; it takes {accepted}.")
    return make(**kwargs)._replace(name=name)


# --------------------------------------------------------------------- weight clipping

# Pytree keys whose leaves weight clipping leaves alone: they are not network weights.
# "mixture_logits" holds a MIX+GAN player's mixture weights (`models.mix`), which live on
# the simplex through a softmax and have no box to be projected on.
UNCLIPPED_KEYS = ("mixture_logits",)


def _is_unclipped(path: tuple[Any, ...]) -> bool:
    """True for a pytree path (`jax.tree_util` keys) under one of `UNCLIPPED_KEYS`."""
    return any(getattr(k, "key", getattr(k, "name", None)) in UNCLIPPED_KEYS for k in path)


def clip_weights(params: Params, c: float | Array) -> Params:
    """The network's weights clipped to [-c, c] (Arjovsky et al. 2017, Alg. 1; c = 0.01).

    A projection of the discriminator's parameters, not a term of any loss. Like the
    reference code it clips every leaf of the network (weights, biases, scales); leaves
    under a key in `UNCLIPPED_KEYS` (MIX+GAN's mixture logits) are returned unchanged.
    """
    _check_nonnegative("c", c)
    return jax.tree_util.tree_map_with_path(
        lambda path, p: p if _is_unclipped(path) else jnp.clip(p, -c, c), params)


def weight_clip(c: float) -> Callable[[Params], Params]:
    """The projection `params -> clip_weights(params, c)` for an optimizer's `project_y`.

    c must be > 0 (a clip of 0 would pin every weight to zero; leave the projection out
    instead).
    """
    try:
        bound = float(c)
    except (TypeError, ValueError):
        bound = float("nan")
    if isinstance(c, (bool, str)) or not bound > 0:
        raise ValueError(f"Weight clipping needs a bound c > 0 (Arjovsky et al.: 0.01); "
                         f"got {c!r}.")
    return lambda params: clip_weights(params, bound)


# ---------------------------------------------------------------------------- checks


def _require_key(key: Optional[PRNGKey], what: str) -> PRNGKey:
    if key is None:
        raise ValueError(f"{what} draws random points: pass a PRNG key to the game.")
    return key


def _check_nonnegative(name: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not value >= 0:
        raise ValueError(f"Penalty option {name} must be >= 0; got {value}.")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"Penalty option {name}={value!r} is unknown; choose one of {list(choices)}."
        )
