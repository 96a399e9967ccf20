"""The image runner's state and its jitted training step.

- `TrainState` (a `flax.struct.dataclass`): step, both players' params and batch
  statistics, the game optimizer's state and the run's base key. It is built abstractly
  (`jax.eval_shape`) and created directly with its (replicated) sharding.
- `train_step(state, batches)` is jitted once with in/out shardings and the state donated.
  `batches` has shape (n_sub, B, H, W, C): alternating optimizers take discriminator step
  i on batch i and the generator step on batch n_disc (`Game.substep`, fresh data per
  critic iteration as in Gulrajani et al. 2017, Alg. 1); others use batch 0. The step
  key is `fold_in(base_key, step)`, so a resumed run draws the same noise. Weight
  clipping (`config.loss.weight_clip`) is the optimizer's projection of the critic,
  applied inside the update after every critic step (`train_config.build_optimizer`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import chex
import flax
import jax
import jax.numpy as jnp

from gan_dynamics import objectives, parallel, progress
from gan_dynamics.game import Game
from gan_dynamics.models import mix
from gan_dynamics.runners.train_config import Experiment

# Keys of the optimizer's info that are not per-step scalars worth logging.
_NOT_LOGGED = frozenset({"aux", "aux_y"})


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped."""

    step: jax.Array  # int32: generator steps taken
    params_x: Any  # generator parameters
    params_y: Any  # discriminator parameters
    stats_x: Any  # generator batch statistics ({} when the model has none)
    stats_y: Any  # discriminator batch statistics
    opt_state: Any
    key: jax.Array  # base key as raw key data (it checkpoints as a plain uint32 array)


# ------------------------------------------------------------------ models and game


def generate_fn(exp: Experiment, state: "TrainState") -> Callable[[jax.Array], jax.Array]:
    """Images from latents with the state's generator in inference mode."""
    return lambda z: exp.generator.apply(
        {"params": state.params_x, **state.stats_x}, z, train=False
    )


def step_game(exp: Experiment, state: "TrainState", batches: jax.Array, key: jax.Array,
              mesh: Optional[jax.sharding.Mesh] = None) -> Game:
    """The GAN game of one step; substep i plays on batch i with its own latents and key.

    Model state (batch statistics) enters as constants and leaves in the aux
    (`objectives.GanAux`; docs/design.md Sec. 3). With a `mesh`, the latents are split
    over its 'data' axis like the real rows: without that constraint XLA keeps the
    generated batch whole on every device, and each device runs the generator (and D on
    the fakes, and CGD's mixed products) on the whole batch.
    """

    def batch(i):
        real = batches[i]
        key_z, key_penalty = jax.random.split(jax.random.fold_in(key, i))
        z = jax.random.normal(key_z, (real.shape[0], exp.z_dim), real.dtype)
        if mesh is not None:
            z = jax.lax.with_sharding_constraint(z, parallel.batch_sharding(mesh))
        return real, z, key_penalty

    if isinstance(exp.generator, mix.MixGenerator):  # MIX+GAN: the mixtures' exact payoff
        return mix.make_module_game(
            exp.loss, exp.generator, exp.discriminator, *batch(0), penalty=exp.penalty,
            state_x=state.stats_x, state_y=state.stats_y,
            substep_batch=batch if exp.n_sub > 1 else None)
    return objectives.make_gan_game(
        exp.loss,
        objectives.linen_apply(exp.generator, train=True),
        objectives.linen_apply(exp.discriminator, train=True),
        *batch(0),
        penalty=exp.penalty,
        state_x=state.stats_x,
        state_y=state.stats_y,
        substep_batch=batch if exp.n_sub > 1 else None,
    )


# ----------------------------------------------------------------- state and step


def _split_params(variables: Any) -> tuple[Any, dict[str, Any]]:
    """(params, every other collection): the trained and the carried variables."""
    variables = dict(variables)
    return variables.pop("params"), variables


def init_state(exp: Experiment, key: jax.Array) -> TrainState:
    """Fresh parameters, model state and optimizer state from the run's key."""
    key_x, key_y, key_run = jax.random.split(key, 3)
    z = jnp.zeros((1, exp.z_dim), jnp.float32)
    image = jnp.zeros((1, *exp.image_shape), jnp.float32)
    vars_x = exp.generator.init(key_x, z, train=False)
    vars_y = exp.discriminator.init(key_y, image, train=False)
    params_x, stats_x = _split_params(vars_x)
    params_y, stats_y = _split_params(vars_y)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params_x=params_x,
        params_y=params_y,
        stats_x=stats_x,
        stats_y=stats_y,
        opt_state=exp.optimizer.init(params_x, params_y),
        key=jax.random.key_data(key_run),
    )


def create_state(exp: Experiment, seed: int, mesh: jax.sharding.Mesh) -> tuple[TrainState, Any]:
    """The initial state created directly with its sharding, and the abstract state.

    The abstract state (shapes, dtypes, shardings) is what a checkpoint restores into.
    """
    sharding = parallel.replicated(mesh)
    key = jax.random.key(seed)
    abstract = jax.eval_shape(lambda k: init_state(exp, k), key)
    shardings = jax.tree.map(lambda _: sharding, abstract)
    init = progress.compile("the initial state",
                            jax.jit(lambda k: init_state(exp, k), out_shardings=shardings), key)
    state = init(key)
    abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )
    return state, abstract


def make_train_step(exp: Experiment, mesh: Optional[jax.sharding.Mesh] = None):
    """`train_step(state, batches) -> (state, metrics)`, a pure function of arrays.

    `mesh`: the data-parallel mesh the step is jitted for (`step_game`); None on one device.
    """

    def train_step(state: TrainState, batches: jax.Array):
        chex.assert_rank(batches, 2 + len(exp.image_shape))
        chex.assert_axis_dimension(batches, 0, exp.n_sub)
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        game = step_game(exp, state, batches, key, mesh)
        params_x, params_y, opt_state, info = exp.optimizer.update(
            game, state.params_x, state.params_y, state.opt_state
        )
        # `aux` holds the model state the step ends in. The GAN metrics (d_real, d_fake,
        # g_adversarial, penalty) come from the discriminator's last evaluation: for
        # AltGD its last critic step (`aux_y`; the generator step evaluates only D(G(z))),
        # for the simultaneous optimizers their one evaluation at the step's start.
        aux: objectives.GanAux = info["aux"]
        metrics = {k: v for k, v in info.items() if k not in _NOT_LOGGED}
        metrics.update(info.get("aux_y", aux).metrics)
        new_state = state.replace(
            step=state.step + 1, params_x=params_x, params_y=params_y,
            stats_x=aux.state_x, stats_y=aux.state_y, opt_state=opt_state,
        )
        return new_state, metrics

    return train_step


def jit_train_step(exp: Experiment, mesh: jax.sharding.Mesh, abstract: Any):
    """The train step jitted once: state replicated and donated, batch split on 'data'."""
    state_shardings = jax.tree.map(lambda a: a.sharding, abstract)
    return jax.jit(
        make_train_step(exp, mesh),
        in_shardings=(state_shardings, parallel.batch_sharding(mesh, batch_axis=1)),
        out_shardings=(state_shardings, parallel.replicated(mesh)),
        donate_argnums=(0,),
    )
