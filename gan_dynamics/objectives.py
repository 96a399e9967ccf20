"""GAN losses from discriminator logits, and the `Game` a GAN defines.

With discriminator logits D, σ the sigmoid, x real data and G(z) generated data
(docs/design.md Sec. 5; the generator x-player minimises f, the discriminator y-player g):

- "minimax" (saturating; Goodfellow et al. 2014, Eq. 1; Fedus et al. 2018, Eq. 2):
  `g = -E log σ(D(x)) - E log(1 - σ(D(G(z))))`, `f = -g` (zero-sum).
- "non_saturating" (Goodfellow et al. 2014, Sec. 3; Fedus et al., Eq. 3): the same g,
  `f = -E log σ(D(G(z)))` (general-sum).
- "wgan" (Arjovsky et al. 2017, Eq. 3; Fedus et al., Sec. 2.2): `g = E D(G(z)) - E D(x)`,
  `f = -g` (zero-sum). The loss alone: weight clipping is not part of it but a
  projection of the critic (`penalties.weight_clip`) that the game optimizer applies.
- "hinge" (Lim & Ye 2017; Miyato et al. 2018):
  `g = E relu(1 - D(x)) + E relu(1 + D(G(z)))`, `f = -E D(G(z))` (general-sum).

log σ and log(1 - σ) are computed as -softplus(-t) and -softplus(t), finite for any logit.

`make_gan_game` closes a GAN over one batch (real data, latent codes, a key) and returns a
`gan_dynamics.game.Game`. A penalty (`gan_dynamics.penalties`) is added to g only, so the
game is zero-sum exactly when the loss is (minimax, WGAN) and there is no penalty. Fedus
et al.'s model names (ns, minimax, wgan, wgan_clip, wgan_gp, gan_gp, dragan_ns) map to a
loss, a penalty and whether the critic's weights are clipped in `FEDUS_MODELS`: "wgan" is
the WGAN loss alone, unclipped (the ICR paper's "WGAN loss with no regularisation");
"wgan_clip" is Arjovsky et al.'s WGAN, the same loss with the critic clipped to [-c, c]
(c = `WGAN_CLIP` = 0.01 unless a runner's config sets another).

The generator's loss alone. Each loss also gives f up to terms that do not depend on the
generator, as a function of D(G(z)) only (`AdversarialLoss.generator_loss`: the minimax
and WGAN losses drop their term over real data). The game's `loss_x` evaluates just G(z)
and D(G(z)) with it: an optimizer that updates the generator alone (AltGD) needs neither
D on real data nor the penalty, whose gradient in x it does not use.

Model state. Apply functions are pure: `apply(params, state, inputs) -> (outputs,
new_state)`, where state is a model's non-trained variables (flax's batch statistics) or
None. One game evaluation runs G on z once and D on the real batch, then on the generated
batch, threading D's state through both passes in that order, as PyTorch's reference
training code updates running statistics. The penalty's critic evaluations use D's state
as given and discard what they produce. The new states come back in the game's aux
(`GanAux`); second-derivative products treat them as constants (docs/design.md Sec. 3).
`loss_x` runs G(z), then D(G(z)) from D's state as given. `Game.carry(aux)` is the same
game starting from the states in `aux`, which AltGD uses to carry batch statistics from
one of its steps to the next.

Penalties see G(z) undetached: g is a function of both players, so the mixed block
Dyx g that competitive optimizers use includes how the interpolates x̂ (WGAN-GP, GAN-GP)
and the points of R2 move with the generator. Simultaneous and alternating gradient
descent use only ∇y g, where this makes no difference.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gan_dynamics.game import Game
from gan_dynamics.penalties import Penalty, make_penalty, per_example_logits

Array = jax.Array
PRNGKey = jax.Array
Params = Any
State = Any
# apply(params, state, inputs) -> (outputs, new_state)
ApplyFn = Callable[[Params, State, Array], tuple[Array, State]]
# (d_real (N,), d_fake (M,)) -> (f, g)
LossPair = Callable[[Array, Array], tuple[Array, Array]]


# ---------------------------------------------------------------------------- losses


def minimax_losses(d_real: Array, d_fake: Array) -> tuple[Array, Array]:
    """Saturating GAN: g the discriminator's cross-entropy, f = -g."""
    g = jnp.mean(jax.nn.softplus(-d_real)) + jnp.mean(jax.nn.softplus(d_fake))
    return -g, g


def non_saturating_losses(d_real: Array, d_fake: Array) -> tuple[Array, Array]:
    """Non-saturating GAN: the same g, f = -E log σ(D(G(z)))."""
    _, g = minimax_losses(d_real, d_fake)
    return jnp.mean(jax.nn.softplus(-d_fake)), g


def wgan_losses(d_real: Array, d_fake: Array) -> tuple[Array, Array]:
    """Wasserstein GAN: g = E D(G(z)) - E D(x), f = -g."""
    g = jnp.mean(d_fake) - jnp.mean(d_real)
    return -g, g


def hinge_losses(d_real: Array, d_fake: Array) -> tuple[Array, Array]:
    """Hinge GAN: g = E relu(1 - D(x)) + E relu(1 + D(G(z))), f = -E D(G(z))."""
    g = jnp.mean(jax.nn.relu(1.0 - d_real)) + jnp.mean(jax.nn.relu(1.0 + d_fake))
    return -jnp.mean(d_fake), g


class AdversarialLoss(NamedTuple):
    """A GAN loss.

    Attributes:
      name: its name in `LOSSES`.
      losses: `(d_real, d_fake) -> (f, g)`.
      zero_sum: whether g == -f exactly.
      generator_loss: `d_fake -> f'`, f without its terms in d_real (constant in the
        generator): f' = f for the non-saturating and hinge losses; the minimax loss
        drops -E log σ(D(x)) and WGAN E D(x), so its f' = -E D(G(z)).
    """

    name: str
    losses: LossPair
    zero_sum: bool
    generator_loss: Callable[[Array], Array]


_LOSSES = {
    loss.name: loss
    for loss in (
        AdversarialLoss("minimax", minimax_losses, zero_sum=True,
                        generator_loss=lambda d_fake: -jnp.mean(jax.nn.softplus(d_fake))),
        AdversarialLoss("non_saturating", non_saturating_losses, zero_sum=False,
                        generator_loss=lambda d_fake: jnp.mean(jax.nn.softplus(-d_fake))),
        AdversarialLoss("wgan", wgan_losses, zero_sum=True,
                        generator_loss=lambda d_fake: -jnp.mean(d_fake)),
        AdversarialLoss("hinge", hinge_losses, zero_sum=False,
                        generator_loss=lambda d_fake: -jnp.mean(d_fake)),
    )
}
LOSSES = tuple(_LOSSES)


def get_loss(name: str) -> AdversarialLoss:
    """The loss called `name` (one of `LOSSES`)."""
    if name not in _LOSSES:
        hint = (f" {name!r} is a model name: use fedus_model({name!r}) or make_gan_game_by_name"
                f" (in an image config: loss.name, loss.penalty and loss.weight_clip)."
                if name in FEDUS_MODELS else "")
        raise ValueError(f"Unknown GAN loss {name!r}; choose one of {list(LOSSES)}.{hint}")
    return _LOSSES[name]


# ------------------------------------------------------------------ Fedus et al. models


# Arjovsky et al. 2017 (Alg. 1): the critic's weights are clipped to [-0.01, 0.01].
WGAN_CLIP = 0.01


class GanModel(NamedTuple):
    """A named GAN variant: loss, penalty name, and whether the critic's weights are
    clipped (to ±c, c = `WGAN_CLIP` unless the runner's config sets another)."""

    loss: str
    penalty: str
    clip: bool = False


# Fedus et al. 2018, Sec. 2 and 4: GAN-GP = NS + interpolation penalty, DRAGAN-NS = NS +
# DRAGAN penalty. "wgan" is the WGAN loss alone (no penalty, no clipping); "wgan_clip" is
# Arjovsky et al.'s WGAN, whose critic is clipped after every update.
FEDUS_MODELS = {
    "ns": GanModel("non_saturating", "none"),
    "minimax": GanModel("minimax", "none"),
    "wgan": GanModel("wgan", "none"),
    "wgan_clip": GanModel("wgan", "none", clip=True),
    "wgan_gp": GanModel("wgan", "wgan_gp"),
    "gan_gp": GanModel("non_saturating", "gan_gp"),
    "dragan_ns": GanModel("non_saturating", "dragan"),
}


def fedus_model(name: str) -> GanModel:
    """The (loss, penalty, clip) of one of Fedus et al.'s model names."""
    if name not in FEDUS_MODELS:
        raise ValueError(f"Unknown GAN model {name!r}; choose one of {list(FEDUS_MODELS)}.")
    return FEDUS_MODELS[name]


# ---------------------------------------------------------------------------- the game


class GanAux(NamedTuple):
    """What one GAN game evaluation returns besides (f, g).

    Attributes:
      state_x: the generator's new model state (after G(z)).
      state_y: the discriminator's new model state (after D(x), then D(G(z))).
      metrics: scalars: `d_real`, `d_fake` (mean logits), `g_adversarial` (g without the
        penalty), and with a penalty `penalty` and `penalty_grad_norm` (mean ‖∇D‖ at the
        penalty's points). The generator's own loss (`Game.loss_x`) reports `d_fake` only.
    """

    state_x: State
    state_y: State
    metrics: dict[str, Array]


def stateless(apply: Callable[[Params, Array], Array]) -> ApplyFn:
    """`(params, inputs) -> outputs` as an ApplyFn whose state passes through unchanged."""

    def apply_fn(params, state, inputs):
        return apply(params, inputs), state

    return apply_fn


def linen_apply(module: Any, **apply_kwargs: Any) -> ApplyFn:
    """A flax linen module as an ApplyFn.

    `state` is the dict of non-parameter collections (e.g. `{"batch_stats": ...}`), empty or
    None for a module without any; those collections are mutable in the call and their new
    values are the new state. `apply_kwargs` go to `module.apply` (e.g. `train=True`).
    """

    def apply_fn(params, state, inputs):
        if not state:
            return module.apply({"params": params}, inputs, **apply_kwargs), state
        return module.apply(
            {"params": params, **state}, inputs, mutable=list(state), **apply_kwargs
        )

    return apply_fn


def make_gan_game(
    loss: str,
    generate: ApplyFn,
    discriminate: ApplyFn,
    real: Array,
    z: Array,
    key: Optional[PRNGKey] = None,
    *,
    penalty: Optional[Penalty] = None,
    state_x: State = None,
    state_y: State = None,
    substep_batch: Optional[Callable[[Array], tuple[Array, Array, PRNGKey]]] = None,
) -> Game:
    """The GAN game on one batch: x = generator parameters, y = discriminator parameters.

    Args:
      loss: one of `LOSSES`.
      generate: `(params_x, state_x, z) -> (fake, new_state_x)`; fake has real's
        per-example shape.
      discriminate: `(params_y, state_y, inputs) -> (logits, new_state_y)`, logits (N,) or
        (N, 1).
      real: real batch (N, ...), e.g. images (N, H, W, C) or vectors (N, d).
      z: latent batch for the generator.
      key: randomness of the penalty (required when the penalty draws points).
      penalty: added to g (`penalties.make_penalty`); None for none.
      state_x, state_y: the models' current state (batch statistics), or None.
      substep_batch: optional `i -> (real, z, key)`, fresh data number i; the game's
        `substep(i)` is then this game on that batch, from the same model states.

    Returns:
      A `Game` whose `losses(px, py)` returns `((f, g), GanAux)`; `zero_sum` is True
      exactly when the loss is zero-sum and there is no penalty. Its `loss_x(px, py)`
      returns `(f', GanAux)`, f' the loss's `generator_loss` of D(G(z)) (G and D(G(z))
      only; metrics: `d_fake`), and `carry(aux)` is this game from the states in aux.
    """
    adversarial = get_loss(loss)
    if penalty is not None and penalty.needs_key and key is None:
        raise ValueError(f"Penalty {penalty.name!r} draws random points: pass `key`.")
    if real.ndim < 1 or z.ndim < 1:
        raise ValueError(
            f"real must be a batch (N, ...) with N on axis 0 and z a batch of codes; got "
            f"real {real.shape}, z {z.shape}."
        )

    def generated(params_x):
        fake, new_state_x = generate(params_x, state_x, z)
        if fake.shape[1:] != real.shape[1:]:
            raise ValueError(
                f"Generated examples have shape {fake.shape[1:]} but real ones {real.shape[1:]}."
            )
        return fake, new_state_x

    def losses(params_x, params_y):
        fake, new_state_x = generated(params_x)
        d_real, mid_state_y = discriminate(params_y, state_y, real)
        d_fake, new_state_y = discriminate(params_y, mid_state_y, fake)
        d_real = per_example_logits(d_real, real.shape[0])
        d_fake = per_example_logits(d_fake, fake.shape[0])
        f, g = adversarial.losses(d_real, d_fake)
        metrics = {"d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake), "g_adversarial": g}
        if penalty is not None:
            critic = lambda inputs: discriminate(params_y, state_y, inputs)[0]  # noqa: E731
            value, diagnostics = penalty.apply(critic, real, fake, key)
            g = g + value
            metrics = {**metrics, "penalty": value, **diagnostics}
        return (f, g), GanAux(new_state_x, new_state_y, metrics)

    def loss_x(params_x, params_y):
        fake, new_state_x = generated(params_x)
        d_fake, new_state_y = discriminate(params_y, state_y, fake)
        d_fake = per_example_logits(d_fake, fake.shape[0])
        metrics = {"d_fake": jnp.mean(d_fake)}
        return adversarial.generator_loss(d_fake), GanAux(new_state_x, new_state_y, metrics)

    substep = None
    if substep_batch is not None:

        def substep(i):
            return make_gan_game(
                loss, generate, discriminate, *substep_batch(i),
                penalty=penalty, state_x=state_x, state_y=state_y,
            )

    carry_state = None
    if state_x is not None or state_y is not None:

        def carry_state(aux):
            return make_gan_game(
                loss, generate, discriminate, real, z, key, penalty=penalty,
                state_x=aux.state_x, state_y=aux.state_y, substep_batch=substep_batch,
            )

    return Game(
        losses=losses,
        zero_sum=adversarial.zero_sum and penalty is None,
        substep=substep,
        loss_x=loss_x,
        carry_state=carry_state,
    )


def make_gan_game_by_name(
    model: str,
    generate: ApplyFn,
    discriminate: ApplyFn,
    real: Array,
    z: Array,
    key: Optional[PRNGKey] = None,
    *,
    penalty_options: Optional[dict[str, Any]] = None,
    **game_kwargs: Any,
) -> Game:
    """`make_gan_game` for a Fedus et al. model name (e.g. "dragan_ns").

    `penalty_options` go to `make_penalty` (e.g. `{"weight": 5.0}`) and are unused by
    models without a penalty, so that one config sweeps over model names. The model's
    weight clipping ("wgan_clip") is not part of the game: it is a projection the runner
    gives the optimizer (`penalties.weight_clip`).
    """
    spec = fedus_model(model)
    penalty = None
    if spec.penalty != "none":
        penalty = make_penalty(spec.penalty, **(penalty_options or {}))
    return make_gan_game(
        spec.loss, generate, discriminate, real, z, key, penalty=penalty, **game_kwargs
    )
