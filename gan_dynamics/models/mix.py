"""MIX+GAN: mixtures of T generators and T discriminators (Arora et al. 2017, Sec. 5).

Arora, Ge, Liang, Ma & Zhang, *Generalization and equilibrium in generative adversarial
nets* (ICML 2017). Sec. 4 shows that approximate equilibria exist when both players are
small mixtures of nets; Sec. 5 turns this into a training protocol, MIX+GAN: each player
is a mixture of T copies of one architecture with their own parameters u_i (generators)
and v_j (discriminators), and mixture weights `w = softmax(logits)` learned by
backpropagation (the paper's "exponentiated gradient" parametrisation, Eq. 7). The payoff
is the mixture's expected payoff (Eq. 8),

    Σ_i Σ_j w^G_i w^D_j F(u_i, v_j),

with F any GAN loss of `gan_dynamics.objectives` (penalties included), evaluated for
every (generator, discriminator) pair: T generator passes, T discriminator passes on the
real batch and T² on the generated batches. Each player adds the entropy regulariser of
Sec. 5 on its own weights,

    R(w) = -(1/T) Σ_i log w_i     (≥ log T, smallest at uniform weights),

scaled by `entropy_weight` (0.1 by default: the paper does not publish its value).
Because each player regularises only its own weights, the regularised game is
general-sum: a mixture of a zero-sum loss (WGAN, minimax) is zero-sum only when the
regulariser is off (`entropy_weight=0`), and competitive optimizers take their
general-sum path otherwise.

Parameters. A mixture player's parameters are the pytree

    {"components": <the base model's parameters, stacked on a leading axis of size T>,
     "mixture_logits": {"logits": (T,)}}

so the components are initialised by `vmap` over T keys and evaluated by `vmap` (one
batched call, no Python loop over components); the nested `vmap` over (i, j) evaluates
each discriminator on each generator's samples as one batched program. Weight clipping
(WGAN) projects the critics' network weights only, never the mixture logits: the
optimizer's projection `penalties.weight_clip` skips leaves under the key
`MIXTURE_LOGITS`. A base model's non-trained state (batch statistics) is stacked the
same way and carried like any model's state.

Sampling (Sec. 6: "we first select a generator from the mixture according to their
assigned weights, and then draw a sample from the selected generator"). A mixture
generator's latent has one more coordinate than its components' latent: z = (s, z'),
z ~ N(0, I). The component is the one whose cumulative-weight interval holds Φ(s) (Φ
the standard normal CDF), which picks component i with probability w_i exactly, and the
sample is G_i(z'). A mixture generator is thus a function of a Gaussian latent like any
other generator, and every consumer of samples (sample grids, metrics) uses it unchanged.

Two levels:
- pure functions over apply functions (`init_mixture`, `make_mix_gan_game`,
  `mixture_generate`), for runners built on `objectives.ApplyFn`s;
- flax linen modules `MixGenerator` / `MixDiscriminator` (`make`, registered as model
  "mix" in `models.registry`) with the same `init` / `apply(variables, x, train)`
  interface as every image model, and `make_module_game` for the image runner.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_dynamics import objectives
from gan_dynamics.game import Game
from gan_dynamics.penalties import Penalty

Array = jax.Array
Params = Any
State = Any

COMPONENTS = "components"
MIXTURE_LOGITS = "mixture_logits"
LOGITS = "logits"
# Non-trained variable collections a base model may carry (flax batch norm's).
_STATE_COLLECTIONS = ("batch_stats",)


# ------------------------------------------------------------------ parameters, weights


def mixture_params(components: Params, logits: Array) -> dict[str, Any]:
    """The mixture parameter pytree from stacked component parameters and logits (T,)."""
    return {COMPONENTS: components, MIXTURE_LOGITS: {LOGITS: logits}}


def num_components(params: dict[str, Any]) -> int:
    """T, the number of components of a mixture parameter pytree."""
    return int(params[MIXTURE_LOGITS][LOGITS].shape[-1])


def init_mixture(init_one: Callable[[Array], Params], key: Array, components: int) -> dict:
    """T components initialised by `vmap` over T keys, with uniform weights (zero logits).

    `init_one(key)` returns one component's parameters.
    """
    if components < 1:
        raise ValueError(f"A mixture needs at least one component; got components={components}.")
    stacked = jax.vmap(init_one)(jax.random.split(key, components))
    dtype = jax.tree.leaves(stacked)[0].dtype if jax.tree.leaves(stacked) else jnp.float32
    return mixture_params(stacked, jnp.zeros((components,), dtype))


def weights(params: dict[str, Any]) -> Array:
    """The mixture weights w = softmax(logits) (T,)."""
    return jax.nn.softmax(params[MIXTURE_LOGITS][LOGITS])


def entropy_regularizer(logits: Array) -> Array:
    """Arora et al.'s R(w) = -(1/T) Σ log w_i of w = softmax(logits); log T at uniform w."""
    return -jnp.mean(jax.nn.log_softmax(logits))


# ------------------------------------------------------------------------- sampling


def choose_components(logits: Array, select: Array) -> Array:
    """Component indices (N,) for selection latents s (N,) ~ N(0, 1): index i w.p. w_i.

    Inverse-CDF sampling of the categorical law softmax(logits) at the uniform Φ(s).
    """
    chex.assert_rank(select, 1)
    cumulative = jnp.cumsum(jax.nn.softmax(logits))
    uniform = jax.scipy.stats.norm.cdf(select).astype(cumulative.dtype)
    index = jnp.searchsorted(cumulative, uniform, side="right")
    return jnp.minimum(index, logits.shape[-1] - 1)


def split_latent(z: Array) -> tuple[Array, Array]:
    """A mixture latent (N, 1 + k) -> (selection latents (N,), component latents (N, k))."""
    chex.assert_rank(z, 2)
    return z[:, 0], z[:, 1:]


def mixture_generate(generate: objectives.ApplyFn, params: dict[str, Any], state: State,
                     z: Array) -> Array:
    """Samples of the mixture: component chosen by z[:, 0] (`choose_components`), G_i(z[:, 1:]).

    Every component runs on the batch (one vmapped call) and each example keeps its
    chosen component's output. `state` is the stacked component state (or None); it is
    not updated (sampling is inference).
    """
    select, latent = split_latent(z)
    outputs, _ = jax.vmap(generate, in_axes=(0, 0, None))(params[COMPONENTS], state, latent)
    index = choose_components(params[MIXTURE_LOGITS][LOGITS], select)
    return outputs[index, jnp.arange(latent.shape[0])]


# ------------------------------------------------------------------------------ game


def make_mix_gan_game(
    loss: str,
    generate: objectives.ApplyFn,
    discriminate: objectives.ApplyFn,
    real: Array,
    z: Array,
    key: Optional[Array] = None,
    *,
    penalty: Optional[Penalty] = None,
    state_x: State = None,
    state_y: State = None,
    entropy_weight: float | Array = 0.1,
    substep_batch: Optional[Callable[[Array], tuple[Array, Array, Array]]] = None,
) -> Game:
    """The MIX+GAN game on one batch: each player a mixture (`mixture_params` layout).

    Args:
      loss, penalty, key, real, substep_batch: as in `objectives.make_gan_game`; the
        penalty applies to each discriminator component on each pair (i, j), with the
        same key (common random numbers across pairs).
      generate, discriminate: ApplyFns of ONE component (the base model).
      z: latents of the components (N, k), shared by every generator component (the
        components' expectations over z are what the payoff needs; sharing draws is
        common random numbers). A mixture latent's selection coordinate is not part of it.
      state_x, state_y: the components' states stacked on a leading axis, or None.
      entropy_weight: λ of the entropy regulariser λ R(w) each player adds to its own loss
        (a Python number decides zero-sumness; it may be traced when nonzero).

    Returns:
      A `Game` whose losses are `f = Σ_ij w^G_i w^D_j f_ij + λ R(w^G)` and
      `g = Σ_ij w^G_i w^D_j g_ij + λ R(w^D)`; aux is an `objectives.GanAux` with the
      components' new states stacked (a discriminator's new state is the w^G-weighted
      average over the generated batches it saw) and metrics weighted by the mixtures,
      plus the weights' Shannon entropies and largest weights.
    """

    def pair(px, sx, py, sy):
        game = objectives.make_gan_game(loss, generate, discriminate, real, z, key,
                                        penalty=penalty, state_x=sx, state_y=sy)
        return game.losses(px, py)

    def losses(params_x, params_y):
        t_x, t_y = num_components(params_x), num_components(params_y)
        # Inner map over discriminators j, outer over generators i: what does not depend
        # on an axis is not batched over it (G_i(z) runs T times, D_j(real) T times,
        # D_j(G_i(z)) T² times), and each vmapped op is one batched op.
        all_pairs = _map_components(_map_components(pair, t_y, (None, None, 0, 0)), t_x,
                                    (0, 0, None, None))
        (f_ij, g_ij), aux = all_pairs(params_x[COMPONENTS], state_x,
                                      params_y[COMPONENTS], state_y)
        logits_x = params_x[MIXTURE_LOGITS][LOGITS]
        logits_y = params_y[MIXTURE_LOGITS][LOGITS]
        wx, wy = jax.nn.softmax(logits_x), jax.nn.softmax(logits_y)
        f = jnp.einsum("i,ij,j->", wx, f_ij, wy)
        g = jnp.einsum("i,ij,j->", wx, g_ij, wy)
        if not _is_zero(entropy_weight):
            f = f + entropy_weight * entropy_regularizer(logits_x)
            g = g + entropy_weight * entropy_regularizer(logits_y)
        cx, cy = jax.lax.stop_gradient(wx), jax.lax.stop_gradient(wy)
        new_state_x = jax.tree.map(lambda a: a[:, 0], aux.state_x)
        new_state_y = jax.tree.map(lambda a: jnp.einsum("i,ij...->j...", cx, a), aux.state_y)
        metrics = {name: jnp.einsum("i,ij,j->", cx, value, cy)
                   for name, value in aux.metrics.items()}
        metrics.update(_weight_metrics("x", cx), **_weight_metrics("y", cy))
        return (f, g), objectives.GanAux(new_state_x, new_state_y, metrics)

    substep = None
    if substep_batch is not None:

        def substep(i):
            return make_mix_gan_game(
                loss, generate, discriminate, *substep_batch(i), penalty=penalty,
                state_x=state_x, state_y=state_y, entropy_weight=entropy_weight)

    carry_state = None
    if state_x is not None or state_y is not None:

        def carry_state(aux):  # as `objectives.make_gan_game`'s: AltGD's critic steps
            return make_mix_gan_game(
                loss, generate, discriminate, real, z, key, penalty=penalty,
                state_x=aux.state_x, state_y=aux.state_y, entropy_weight=entropy_weight,
                substep_batch=substep_batch)

    base_zero_sum = objectives.get_loss(loss).zero_sum and penalty is None
    return Game(losses=losses, zero_sum=base_zero_sum and _is_zero(entropy_weight),
                substep=substep, carry_state=carry_state)


def _map_components(fn: Callable, size: int, in_axes: tuple) -> Callable:
    """`jax.vmap(fn, in_axes)` over a component axis of length `size`.

    One component is evaluated by indexing it out (and the outputs given back their axis
    of length 1): a one-component mixture then runs exactly the plain model's program,
    bit for bit. (vmap over an axis of length 1 computes the same values, but XLA may
    order the reductions of its derivatives differently, an ulp apart.)
    """
    if size > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def one(*args):
        args = [a if axis is None else jax.tree.map(lambda leaf: leaf[0], a)
                for a, axis in zip(args, in_axes)]
        return jax.tree.map(lambda leaf: leaf[None], fn(*args))

    return one


def _is_zero(value: float | Array) -> bool:
    return isinstance(value, (int, float)) and value == 0


def _weight_metrics(player: str, w: Array) -> dict[str, Array]:
    return {f"mix_entropy_{player}": -jnp.sum(w * jnp.log(w)),
            f"mix_max_weight_{player}": jnp.max(w)}


# --------------------------------------------------------------------- linen modules


class _Logits(nn.Module):
    """The mixture logits (T,), zero at initialisation (uniform weights)."""

    num_components: int

    @nn.compact
    def __call__(self) -> Array:
        return self.param(LOGITS, nn.initializers.zeros, (self.num_components,))


def _apply_components(module: nn.Module, base: nn.Module, num: int, x: Array,
                      train: bool) -> Array:
    """Inside `module`'s compact call: T copies of `base` on x, outputs stacked (T, N, ...).

    The copies' parameters are `module`'s param "components" (base's parameter tree with
    a leading axis T) and their batch statistics its variable ("batch_stats",
    "components"), initialised by `vmap` of `base.init` over T keys and applied by `vmap`
    of `base.apply`.
    """
    base = base.clone(parent=None, name=None)

    def init_all(key):
        keys = jax.random.split(key, num)
        return jax.vmap(lambda k: base.init(k, x[:1], train=False))(keys)

    # flax re-traces a param's init (shapes only) on every apply to check the stored shape.
    params = module.param(COMPONENTS, lambda key: init_all(key)["params"])
    state = {}
    for c in _STATE_COLLECTIONS:
        if module.is_initializing() and c in jax.eval_shape(init_all, jax.random.key(0)):
            # Initial statistics (BN: mean 0, variance 1) do not depend on the key.
            module.variable(c, COMPONENTS, lambda c=c: init_all(module.make_rng("params"))[c])
        if module.has_variable(c, COMPONENTS):
            state[c] = module.get_variable(c, COMPONENTS)

    def one(p, s):
        if train and s:
            return base.apply({"params": p, **s}, x, train=train, mutable=list(s))
        return base.apply({"params": p, **s}, x, train=train), s

    out, new_state = jax.vmap(one)(params, state)
    if train and not module.is_initializing():
        for c, value in new_state.items():
            if module.is_mutable_collection(c):
                module.put_variable(c, COMPONENTS, value)
    return out


class MixGenerator(nn.Module):
    """A mixture of T generators `base`: z (N, 1 + base.z_dim) -> samples (N, ...).

    z[:, 0] chooses the component by the mixture weights (`choose_components`), z[:, 1:]
    is its latent. Variables: `{"params": {"components": ..., "mixture_logits":
    {"logits": (T,)}}, "batch_stats": {"components": ...}}` (no batch_stats when base has
    none).

    Attributes:
      base: any generator module `(z, train) -> samples` with a `z_dim` attribute.
      num_components: T.
      entropy_weight: λ of the entropy regulariser (read by `make_module_game`).
    """

    base: nn.Module
    num_components: int = 5
    entropy_weight: float = 0.1

    @property
    def z_dim(self) -> int:
        return 1 + int(self.base.z_dim)

    @nn.compact
    def __call__(self, z: Array, train: bool) -> Array:
        chex.assert_shape(z, (None, self.z_dim))
        select, latent = split_latent(z)
        outputs = _apply_components(self, self.base, self.num_components, latent, train)
        logits = _Logits(self.num_components, name=MIXTURE_LOGITS)()
        return outputs[choose_components(logits, select), jnp.arange(z.shape[0])]


class MixDiscriminator(nn.Module):
    """A mixture of T discriminators `base`: x -> Σ_j w_j D_j(x) (N,).

    The weighted logit is the mixed critic's value for WGAN's identity measuring
    function; training uses the pairwise payoff (`make_module_game`), not this output.
    Variables as `MixGenerator`'s.
    """

    base: nn.Module
    num_components: int = 5
    entropy_weight: float = 0.1

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        per_component = _apply_components(self, self.base, self.num_components, x, train)
        per_component = jax.vmap(lambda d: objectives.per_example_logits(d, x.shape[0]))(
            per_component)
        logits = _Logits(self.num_components, name=MIXTURE_LOGITS)()
        return jnp.einsum("j,jn->n", jax.nn.softmax(logits), per_component)


def _base_of(module: nn.Module) -> nn.Module:
    return module.base.clone(parent=None, name=None)


def make_module_game(
    loss: str,
    generator: MixGenerator,
    discriminator: MixDiscriminator,
    real: Array,
    z: Array,
    key: Optional[Array] = None,
    *,
    penalty: Optional[Penalty] = None,
    state_x: State = None,
    state_y: State = None,
    substep_batch: Optional[Callable[[Array], tuple[Array, Array, Array]]] = None,
    train: bool = True,
) -> Game:
    """`make_mix_gan_game` for the linen mixtures, with `objectives.make_gan_game`'s
    arguments: mixture latents z (N, 1 + k) (the selection coordinate is unused by the
    payoff, which weighs every component exactly) and states in the modules' layout
    (`{"batch_stats": {"components": ...}}` or {}).
    """
    if generator.entropy_weight != discriminator.entropy_weight:
        raise ValueError(
            f"The mixtures' entropy weights differ (generator {generator.entropy_weight}, "
            f"discriminator {discriminator.entropy_weight}); build both with one `make`.")

    def components_batch(real, z, key):
        return real, split_latent(z)[1], key

    game = make_mix_gan_game(
        loss,
        objectives.linen_apply(_base_of(generator), train=train),
        objectives.linen_apply(_base_of(discriminator), train=train),
        *components_batch(real, z, key),
        penalty=penalty,
        state_x=_component_state(state_x or {}),
        state_y=_component_state(state_y or {}),
        entropy_weight=generator.entropy_weight,
        substep_batch=(None if substep_batch is None
                       else lambda i: components_batch(*substep_batch(i))),
    )
    return _in_module_layout(game)


def _in_module_layout(game: Game) -> Game:
    """The game with its aux states in the modules' layout (`_mixture_state`); its
    substeps and carried games too, so AltGD carries batch statistics from one critic
    step to the next as in the plain game."""

    def losses(params_x, params_y):
        (f, g), aux = game.losses(params_x, params_y)
        return (f, g), aux._replace(state_x=_mixture_state(aux.state_x),
                                    state_y=_mixture_state(aux.state_y))

    def substep(i):
        return _in_module_layout(game.at_substep(i))

    def carry_state(aux):
        return _in_module_layout(game.carry(aux._replace(
            state_x=_component_state(aux.state_x), state_y=_component_state(aux.state_y))))

    return Game(losses=losses, zero_sum=game.zero_sum,
                substep=None if game.substep is None else substep,
                carry_state=None if game.carry_state is None else carry_state)


def _component_state(state: dict[str, Any]) -> Optional[dict[str, Any]]:
    """`{"batch_stats": {"components": S}}` -> `{"batch_stats": S}`; None when stateless."""
    state = {c: v[COMPONENTS] for c, v in state.items() if c in _STATE_COLLECTIONS}
    return state or None


def _mixture_state(state: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The inverse of `_component_state`."""
    return {c: {COMPONENTS: v} for c, v in (state or {}).items()}


def make(generator: nn.Module, discriminator: nn.Module, components: int = 5,
         entropy_weight: float = 0.1) -> tuple[MixGenerator, MixDiscriminator]:
    """MIX+GAN: mixtures of T = `components` copies of the pair (generator, discriminator).

    The mixture generator's latent is 1 + the base's z_dim (the first coordinate picks
    the component). `models.registry` builds the base pair by name ("mix" entries).
    """
    if int(components) < 1:
        raise ValueError(f"model.components={components} must be >= 1.")
    if not entropy_weight >= 0:
        raise ValueError(f"model.entropy_weight={entropy_weight} must be >= 0.")
    return (MixGenerator(generator, int(components), float(entropy_weight)),
            MixDiscriminator(discriminator, int(components), float(entropy_weight)))
