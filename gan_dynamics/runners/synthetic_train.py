"""The training of the synthetic manifold experiments (Fedus et al. 2018, Secs. 4.1-4.3)
as pure functions of (key, lr).

`make_train(config)` returns a pure `train(key, lr) -> TrainResult` that draws the data
line, initialises both players, and scans every training step (the purejaxrl pattern),
so that `jax.vmap` over keys and learning rates runs a whole sweep as one program
(`gan_dynamics.runners.sweep`); `make_chunk_fns` cuts the same scan into chunks for
progress and checkpoints. `synthetic_run` is the runner that uses them for one seed.

Randomness. A run's key is split into the data line, the generator, the discriminator,
an independent fresh generator (the "random init" reference line) and the training
steps; step t draws its batches from `fold_in(steps_key, t)`, and substep i of that step
(AltGD's i-th discriminator step, then the generator step) from `fold_in(., i)`, so that
every discriminator step sees fresh data and latents.

Optimizers. `config.optimizer.name` is any game optimizer; `lr` is traced. Optimizers
that take per-player optax transforms (simgd, altgd, extragradient, ...) get
`config.optimizer.transform` with `lr` for both players; those that take `lr_x, lr_y`
(cgd, acgd) get lr for both. `n_disc` is passed to optimizers that accept it (altgd:
n_disc discriminator steps per generator step, as in the paper); simultaneous
optimizers (simgd, cgd, acgd, ...) update both players once per step, as the ICR paper
trains ACGD, so for them one step is one joint update and n_disc does not apply. Compare
costs through the logged `grad_evals`.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_dynamics import objectives, penalties
from gan_dynamics.data import synthetic as synthetic_data
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import gaussian
from gan_dynamics.models import synthetic as models
from gan_dynamics.optimizers import create as create_optimizer
from gan_dynamics.optimizers import factory as optimizer_factory

Array = jax.Array
INITS = ("random", "parallel")
# Diagnostics averaged over each logging block (from the optimizers' `info`).
INFO_METRICS = ("f", "g", "grad_norm_x", "grad_norm_y", "update_norm_x", "update_norm_y")
ERROR_METRICS = ("param_error", "w2", "mean_error")
METRICS = ERROR_METRICS + INFO_METRICS + ("grad_evals",)


class TrainResult(NamedTuple):
    """What one run returns; arrays over time have n_logs + 1 entries (index 0: start).

    Attributes:
      step: (T,) the step after which each entry was logged (0 = initialisation).
      metrics: name -> (T,): errors at that step; diagnostics averaged over the block
        of steps ending there (NaN at 0); cumulative gradient evaluations.
      reference: name -> scalar: the errors of an independent, freshly initialised
        generator against the same data (the paper's "random init" line).
      data: the data's AffineGaussian.
      generator: the generator's AffineGaussian at each logged step (leaves (T, ...)),
        or None unless `record_generator`.
    """

    step: Array
    metrics: dict[str, Array]
    reference: dict[str, Array]
    data: synthetic_data.AffineGaussian
    generator: Any


def errors(generator: synthetic_data.AffineGaussian, data: synthetic_data.AffineGaussian,
           sigma: float) -> dict[str, Array]:
    """Squared parameter error, W2², and the mean's part ‖μ_g - μ_r‖² of both."""
    args = (generator.mu, sigma * generator.w, data.mu, sigma * data.w)
    return {
        "param_error": gaussian.squared_parameter_error(*args),
        "w2": gaussian.frechet_distance_sq(*args),
        "mean_error": jnp.sum((generator.mu - data.mu) ** 2),
    }


def validate(config: ml_collections.ConfigDict) -> None:
    """Fail before compiling on values that cannot work, saying what to change."""
    objectives.fedus_model(config.model)
    optimizer_factory(config.optimizer.name)
    if config.init not in INITS:
        raise ValueError(f"config.init={config.init!r}; choose one of {INITS}.")
    for name in ("dim", "latent_dim", "hidden", "batch", "steps", "log_every"):
        if int(config[name]) < 1:
            raise ValueError(f"config.{name} must be >= 1, got {config[name]}.")
    if config.steps % config.log_every:
        raise ValueError(f"config.steps={config.steps} must be a multiple of "
                         f"config.log_every={config.log_every}.")
    if config.sigma <= 0:
        raise ValueError(f"config.sigma must be > 0, got {config.sigma}.")
    if config.init == "parallel" and config.dim < 2:
        raise ValueError("The parallel-lines start needs config.dim >= 2.")
    if objectives.fedus_model(config.model).clip and not config.weight_clip > 0:
        raise ValueError(f"config.model={config.model!r} clips the critic's weights to "
                         f"±config.weight_clip, which must be > 0 (Arjovsky et al.: "
                         f"{objectives.WGAN_CLIP}); got {config.weight_clip}.")
    if config.weight_clip < 0:
        raise ValueError(f"config.weight_clip must be >= 0, got {config.weight_clip}.")


def make_optimizer(optimizer_config: ml_collections.ConfigDict, lr: Array,
                   project_y: Optional[Callable[[Any], Any]] = None):
    """The game optimizer of `optimizer_config` with learning rate `lr` for both players
    and `project_y` (the critic's weight clipping, or None) as its critic projection."""
    name = optimizer_config.name
    accepted = inspect.signature(optimizer_factory(name)).parameters
    hparams = dict(optimizer_config.get("options", {}))
    if project_y is not None:
        hparams["project_y"] = project_y
    if "transform_x" in accepted:
        spec = {**dict(optimizer_config.transform), "lr": lr}
        hparams.update(transform_x=spec, transform_y=spec)
    elif "lr_x" in accepted:
        hparams.update(lr_x=lr, lr_y=lr)
    else:
        raise ValueError(f"Optimizer {name!r} takes neither transform_x nor lr_x; "
                         "make_optimizer does not know where its learning rate goes.")
    if "n_disc" in accepted:
        hparams["n_disc"] = int(optimizer_config.n_disc)
    return create_optimizer(name, **hparams)


def uses_n_disc(optimizer_name: str) -> bool:
    """Whether `n_disc` applies to this optimizer (alternating ones) or not (simultaneous)."""
    return "n_disc" in inspect.signature(optimizer_factory(optimizer_name)).parameters


def _penalty_options(config: ml_collections.ConfigDict) -> dict[str, Any]:
    penalty = objectives.fedus_model(config.model).penalty
    if penalty == "none":
        return {}
    options = {"weight": config.penalty_weight}
    if penalty == "dragan":
        options.update(dict(config.dragan))
    return options


class RunState(NamedTuple):
    """Everything a run carries from step to step (the data line is fixed per run)."""

    params_x: synthetic_data.AffineGaussian
    params_y: Any
    opt_state: Any
    data: synthetic_data.AffineGaussian
    steps_key: Array


class RunFns(NamedTuple):
    """A run as pure pieces: `init(key, lr) -> (RunState, reference errors)` and
    `step(state, t, lr) -> (state, info)`, the update of step number t."""

    init: Callable[[Array, Array], tuple[RunState, dict[str, Array]]]
    step: Callable[[RunState, Array, Array], tuple[RunState, dict[str, Array]]]


def make_run_fns(config: ml_collections.ConfigDict) -> RunFns:
    """The initialisation and the single training step of a run of `config`."""
    validate(config)
    dim, k, sigma = int(config.dim), int(config.latent_dim), float(config.sigma)
    batch = int(config.batch)
    dtype = jnp.dtype(config.get("dtype", "float32"))
    disc = models.MLPDiscriminator(int(config.hidden), param_dtype=dtype)
    generate = objectives.stateless(models.generate)
    discriminate = objectives.linen_apply(disc)
    penalty_options = _penalty_options(config)
    # Model "wgan_clip": the critic is clipped after every one of its updates, inside the
    # optimizer (each of AltGD's n_disc steps), not after the whole step.
    clip = (penalties.weight_clip(float(config.weight_clip))
            if objectives.fedus_model(config.model).clip else None)

    def init_generator(key):
        return jax.tree.map(lambda a: a.astype(dtype), models.init_generator(
            key, dim, k, config.mean_std, config.direction_std))

    def game_at(step_key, data_line):
        def batch_at(i):
            key_real, key_z, key_penalty = jax.random.split(jax.random.fold_in(step_key, i), 3)
            real = synthetic_data.sample(key_real, data_line, sigma, batch)
            z = synthetic_data.latents(key_z, batch, k, sigma, dtype)
            return real, z, key_penalty

        return objectives.make_gan_game_by_name(
            config.model, generate, discriminate, *batch_at(0),
            penalty_options=penalty_options, substep_batch=batch_at)

    def init(key: Array, lr: Array) -> tuple[RunState, dict[str, Array]]:
        key_data, key_gen, key_disc, key_ref, key_parallel, key_steps = jax.random.split(key, 6)
        data_line = jax.tree.map(lambda a: a.astype(dtype), synthetic_data.draw_affine_gaussian(
            key_data, dim, 1, config.mean_std, config.direction_std))
        if config.init == "parallel":
            params_x = synthetic_data.parallel_line(key_parallel, data_line,
                                                    config.parallel_offset, k)
        else:
            params_x = init_generator(key_gen)
        params_y = disc.init(key_disc, jnp.zeros((1, dim), dtype))["params"]
        opt_state = make_optimizer(config.optimizer, lr, clip).init(params_x, params_y)
        reference = errors(init_generator(key_ref), data_line, sigma)
        return RunState(params_x, params_y, opt_state, data_line, key_steps), reference

    def step(state: RunState, t: Array, lr: Array) -> tuple[RunState, dict[str, Array]]:
        game = game_at(jax.random.fold_in(state.steps_key, t), state.data)
        px, py, opt_state, info = make_optimizer(config.optimizer, lr, clip).update(
            game, state.params_x, state.params_y, state.opt_state)
        return state._replace(params_x=px, params_y=py, opt_state=opt_state), info

    return RunFns(init, step)


class TrainCarry(NamedTuple):
    """What a run carries from one logging block to the next: its state and the
    cumulative gradient evaluations (the logged `grad_evals`)."""

    state: RunState
    grad_evals: Array


class ChunkFns(NamedTuple):
    """A run as a start and a chunk of logging blocks, for runs that report as they go.

    `start(key, lr) -> (carry, reference, logged, generator)`: the initial carry, the
    random-init reference errors and the entries logged at step 0.
    `advance(carry, chunk, lr) -> (carry, logged, generators)`: logging blocks
    `chunk * blocks .. (chunk + 1) * blocks - 1` (each `log_every` steps); `logged` has
    one entry per block. Running `start` and then `advance` for chunk 0, 1, ... computes
    what `make_train`'s `train` scans in one go.
    """

    start: Callable[[Array, Array], tuple[TrainCarry, dict[str, Array], dict[str, Array], Any]]
    advance: Callable[[TrainCarry, Array, Array], tuple[TrainCarry, dict[str, Array], Any]]
    blocks: int


def make_chunk_fns(config: ml_collections.ConfigDict, blocks: int,
                   record_generator: bool = False) -> ChunkFns:
    """`start` and `advance` (chunks of `blocks` logging blocks) of a run of `config`."""
    fns = make_run_fns(config)
    sigma, log_every = float(config.sigma), int(config.log_every)
    summed = INFO_METRICS + ("grad_evals",)

    def start(key: Array, lr: Array):
        state, reference = fns.init(key, lr)
        logged = {name: jnp.full((), jnp.nan, jnp.float32) for name in INFO_METRICS}
        logged.update(errors(state.params_x, state.data, sigma),
                      grad_evals=jnp.zeros((), jnp.float32))
        return (TrainCarry(state, jnp.zeros((), jnp.float32)), reference, logged,
                state.params_x if record_generator else None)

    def one_step(carry, t, lr):
        state, sums = carry
        state, info = fns.step(state, t, lr)
        return (state, {name: sums[name] + info[name] for name in summed}), None

    def one_block(carry: TrainCarry, block: Array, lr: Array):
        sums = {name: jnp.zeros((), jnp.float32) for name in summed}
        block_steps = block * log_every + jnp.arange(log_every)
        (state, sums), _ = jax.lax.scan(lambda c, t: one_step(c, t, lr),
                                        (carry.state, sums), block_steps)
        grad_evals = carry.grad_evals + sums["grad_evals"]
        logged = {name: sums[name] / log_every for name in INFO_METRICS}
        logged.update(errors(state.params_x, state.data, sigma), grad_evals=grad_evals)
        return TrainCarry(state, grad_evals), (
            logged, state.params_x if record_generator else None)

    def advance(carry: TrainCarry, chunk: Array, lr: Array):
        carry, (logged, generators) = jax.lax.scan(
            lambda c, b: one_block(c, b, lr), carry, chunk * blocks + jnp.arange(blocks))
        return carry, logged, generators

    return ChunkFns(start, advance, int(blocks))


def make_train(config: ml_collections.ConfigDict,
               record_generator: bool = False) -> Callable[[Array, Array], TrainResult]:
    """A pure `train(key, lr)` running `config.steps` steps; jit/vmap it freely."""
    steps, log_every = int(config.steps), int(config.log_every)
    fns = make_chunk_fns(config, steps // log_every, record_generator)

    def train(key: Array, lr: Array) -> TrainResult:
        carry, reference, start, generator = fns.start(key, lr)
        carry, logged, generators = fns.advance(carry, jnp.zeros((), jnp.int32), lr)
        return assemble(start, logged, reference, carry.state.data, generator, generators,
                        log_every)

    return train


def assemble(start: dict[str, Array], logged: dict[str, Array], reference: dict[str, Array],
             data: synthetic_data.AffineGaussian, generator: Any, generators: Any,
             log_every: int) -> TrainResult:
    """The TrainResult of a run from its step-0 entries and the blocks' (time axis last
    but one for batched runs: `logged` leaves are (..., T))."""
    xp = jnp if isinstance(next(iter(logged.values())), jax.Array) else np
    metrics = {name: xp.concatenate([xp.asarray(start[name])[..., None].astype(
        logged[name].dtype), logged[name]], axis=-1) for name in METRICS}
    if generator is not None:
        generators = jax.tree.map(lambda a, b: xp.concatenate([a[None], b]), generator,
                                  generators)
    num_logs = next(iter(logged.values())).shape[-1]
    return TrainResult(xp.arange(num_logs + 1) * log_every, metrics, reference, data,
                       generators)


def chunk_blocks(config: ml_collections.ConfigDict, target_chunks: int = 20) -> int:
    """Logging blocks per chunk: `config.chunk_steps / log_every` when set, else the
    divisor of the number of blocks nearest to `target_chunks` chunks (one compiled
    program runs every chunk, so the chunk must divide the run)."""
    blocks = int(config.steps) // int(config.log_every)
    chunk_steps = int(config.get("chunk_steps", 0) or 0)
    if chunk_steps:
        if chunk_steps % int(config.log_every) or int(config.steps) % chunk_steps:
            raise UserError(f"config.chunk_steps={chunk_steps} must be a multiple of "
                            f"config.log_every={config.log_every} and divide config.steps="
                            f"{config.steps} (0: choose automatically).")
        return chunk_steps // int(config.log_every)
    # Divisors in pairs (b, blocks // b) up to the square root: a run of 10**12 steps is
    # checked in a second, not in hours.
    small = [b for b in range(1, math.isqrt(blocks) + 1) if blocks % b == 0]
    divisors = small + [blocks // b for b in small]
    return min(divisors, key=lambda b: (abs(blocks // b - target_chunks), -b))


def seed_key(base_seed: int, index: int | Array, impl: Optional[str] = None) -> Array:
    """The key of run number `index` of a sweep (a single run with the same index equals it).

    `impl` is the PRNG implementation (None: JAX's default, threefry2x32); every key of the
    run derives from this one and keeps it. Runs use threefry2x32: under vmap, "rbg" and
    "unsafe_rbg" draw a batch of keys' bits from the batch's first key (JAX's batching of
    rng_bit_generator), so a sweep's seed would not equal its single run.
    """
    return jax.random.fold_in(jax.random.key(base_seed, impl=impl or None), index)
