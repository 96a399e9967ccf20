"""One image-GAN training run: state, jitted step, loop, checkpoints, logging (runner "image").

The flagship workflow of Schaefer, Zheng & Anandkumar 2020 (ICR, Sec. 6): a DCGAN-like
pair on CIFAR-10 trained as a two-player game by any game optimizer (ACGD, CGD, SimGD,
AltGD with Adam, ...) with any GAN loss and penalty (DESIGN.md Secs. 3, 5, 6, 10).

- `TrainState` (a `flax.struct.dataclass`): step, both players' params and batch
  statistics, the game optimizer's state and the run's base key. It is built abstractly
  (`jax.eval_shape`) and created directly with its (replicated) sharding.
- `train_step(state, batches)` is jitted once with in/out shardings and the state donated.
  `batches` has shape (n_sub, B, H, W, C): alternating optimizers take discriminator step
  i on batch i and the generator step on batch n_disc (`Game.substep`, fresh data per
  critic iteration as in Gulrajani et al. 2017, Alg. 1); others use batch 0. The step
  key is `fold_in(base_key, step)`, so a resumed run draws the same noise.
- The loop reads the batches of step s by index (`data.images.device_batches`: a pure
  function of seed and step), so data order does not depend on where a run was resumed; checkpoints (Orbax) are taken every N steps
  and when SIGTERM/SIGINT arrives, and a run restarts from the latest one by itself.

Outputs in the workdir: `checkpoints/`, `metrics.jsonl` (one JSON object per logged
step), `tensorboard/` (event files, written without TensorFlow via tensorboardX),
`samples/step_XXXXXXXX.png` (a grid from fixed latents) and `loss_curves.png`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import chex
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gan_dynamics import objectives, parallel, penalties
from gan_dynamics.game import Game
from gan_dynamics.optimizers import create as create_optimizer
from gan_dynamics.optimizers.base import GameOptimizer

# Keys of the optimizer's info that are not per-step scalars worth logging.
_NOT_LOGGED = frozenset({"aux"})

EvalHook = Callable[[int, "TrainState", Callable[[jax.Array], jax.Array]], dict[str, float]]


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped."""

    step: jax.Array  # int32: generator steps taken
    params_x: Any  # generator parameters
    params_y: Any  # discriminator parameters
    stats_x: Any  # generator batch statistics ({} when the model has none)
    stats_y: Any  # discriminator batch statistics
    opt_state: Any
    key: jax.Array  # base key; the step's key is fold_in(key, step)


class Experiment(NamedTuple):
    """What a config builds, checked before anything is compiled."""

    generator: Any  # flax linen module: (z, train) -> images in [-1, 1]
    discriminator: Any  # flax linen module: (images, train) -> logits (B,)
    z_dim: int
    image_shape: tuple[int, ...]
    optimizer: GameOptimizer
    n_sub: int  # batches per step: the optimizer's `substeps` (AltGD n_disc + 1)
    source: Any  # data.images.ImageSource
    loss: str  # one of objectives.LOSSES
    penalty: Optional[penalties.Penalty]  # added to the discriminator's loss
    weight_clip: float  # clip the discriminator's parameters to ±c after each step; 0: off


# ---------------------------------------------------------------------------- config


def default_config() -> ml_collections.ConfigDict:
    """Defaults of every image experiment: the ICR flagship (WGAN loss, ACGD, CIFAR-10).

    Experiment files start from this and override (flax-examples style). The `train`,
    `loss` and `parallel` sections are also the schema `check_config` holds configs to;
    `model` and `optimizer` are keyword arguments of the model family (`models.registry`)
    and of the optimizer factory, which check their own keys.
    """
    config = ml_collections.ConfigDict()
    config.runner = "image"
    config.seed = 0
    config.data = ml_collections.ConfigDict(
        {
            "name": "cifar10",  # data.images.DATASETS
            "split": "train",
            "data_dir": "",  # tfds data_dir; "": $TFDS_DATA_DIR or ~/tensorflow_datasets
            "image_size": 0,  # 0: the dataset's default (32; 64 for celeb_a)
            "batch_size": 64,  # global batch, split over devices and processes
        }
    )
    config.model = ml_collections.ConfigDict({"name": "icr_dcgan", "z_dim": 128})
    config.loss = ml_collections.ConfigDict(
        {
            "name": "wgan",  # objectives.LOSSES: minimax, non_saturating, wgan, hinge
            "penalty": "none",  # penalties.PENALTIES: none, wgan_gp, gan_gp, dragan, r1, r2
            "penalty_options": {},  # the penalty's keyword options, e.g. {"weight": 10.0}
            "weight_clip": 0.0,  # clip the discriminator to ±c after each step; 0: off
        }
    )
    config.optimizer = ml_collections.ConfigDict(
        {"name": "acgd", "lr_x": 1e-4, "lr_y": 1e-4, "beta": 0.99, "eps": 1e-5,
         "tol": 1e-6, "atol": 1e-10, "max_iter": 100, "solve": "alternate"}
    )
    config.train = ml_collections.ConfigDict(
        {
            "num_steps": 200_000,  # generator steps (one game-optimizer update each)
            "log_every": 100,  # console, metrics.jsonl, TensorBoard
            "checkpoint_every": 2_000,
            "keep_checkpoints": 3,
            "sample_every": 2_000,  # sample grid from fixed latents and loss-curve PNG
            "num_samples": 64,  # images in the grid (a square number)
            "eval_every": 10_000,  # eval hooks passed to `run`
        }
    )
    config.parallel = ml_collections.ConfigDict(
        {
            "num_devices": 0,  # devices on the 'data' axis; 0: all
            "distributed": False,  # call jax.distributed.initialize() (multi-host)
            "coordinator_address": "",  # "" / -1: detected from the cluster environment
            "num_processes": -1,
            "process_id": -1,
        }
    )
    return config


def adam_altgd(lr: float, b1: float, b2: float, n_disc: int) -> ml_collections.ConfigDict:
    """`config.optimizer` for the usual GAN baseline: AltGD with Adam for both players,
    n_disc discriminator steps (each on a fresh batch) per generator step."""
    adam = {"name": "adam", "lr": lr, "b1": b1, "b2": b2}
    return ml_collections.ConfigDict(
        {"name": "altgd", "transform_x": dict(adam), "transform_y": dict(adam),
         "n_disc": n_disc, "order": "disc_first"}
    )


def set_loss(config: ml_collections.ConfigDict, name: str, penalty: str = "none",
             weight: float = 10.0, weight_clip: float = 0.0) -> ml_collections.ConfigDict:
    """Set `config.loss` to loss `name` with `penalty` of coefficient `weight` (λ)."""
    config.loss.name = name
    config.loss.penalty = penalty
    config.loss.penalty_options = {} if penalty == "none" else {"weight": weight}
    config.loss.weight_clip = weight_clip
    return config


def check_config(config: ml_collections.ConfigDict) -> None:
    """Fail with a readable message on unknown keys and bad values (before any compile)."""
    schema = default_config()

    def unknown(section, reference, name):
        extra = sorted(set(section.keys()) - set(reference.keys()))
        if extra:
            raise ValueError(
                f"Unknown config key(s) {extra} in {name}; known keys: {sorted(reference.keys())}."
            )

    unknown(config, schema, "config")
    missing = sorted(set(schema.keys()) - set(config.keys()))
    if missing:
        raise ValueError(f"Config lacks {missing}; start from gan_dynamics.train.default_config().")
    for section in ("data", "train", "loss", "parallel"):
        unknown(config[section], schema[section], f"config.{section}")
    t = config.train
    for name in ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                 "sample_every", "eval_every", "num_samples"):
        if int(t[name]) <= 0:
            raise ValueError(f"config.train.{name}={t[name]} must be a positive integer.")
    if math.isqrt(t.num_samples) ** 2 != t.num_samples:
        raise ValueError(f"config.train.num_samples={t.num_samples} must be a square (e.g. 64).")
    if config.loss.weight_clip < 0:
        raise ValueError(f"config.loss.weight_clip={config.loss.weight_clip} must be >= 0 (0: off).")
    if int(config.data.batch_size) <= 0:
        raise ValueError(f"config.data.batch_size={config.data.batch_size} must be positive.")


def _plain(section: Any) -> dict[str, Any]:
    return section.to_dict() if isinstance(section, ml_collections.ConfigDict) else dict(section)


def build_optimizer(config: ml_collections.ConfigDict) -> tuple[GameOptimizer, int]:
    """The game optimizer of `config.optimizer` and the number of batches it eats per step."""
    hparams = _plain(config.optimizer)
    name = hparams.pop("name")
    optimizer = create_optimizer(name, **hparams)
    return optimizer, optimizer.substeps


def build_models(config: ml_collections.ConfigDict) -> tuple[Any, Any, int, tuple[int, ...]]:
    """(generator, discriminator, z_dim, image shape the generator makes) of `config.model`."""
    from gan_dynamics.models import registry

    kwargs = _plain(config.model)
    generator, discriminator = registry.get_model(kwargs.pop("name"), **kwargs)
    z_dim = int(generator.z_dim)
    made = jax.eval_shape(
        lambda: generator.init_with_output(jax.random.PRNGKey(0), jnp.zeros((1, z_dim)),
                                           train=False)[0]
    )
    return generator, discriminator, z_dim, tuple(made.shape[1:])


def build_penalty(config: ml_collections.ConfigDict) -> Optional[penalties.Penalty]:
    """The penalty of `config.loss` (None for "none"), after checking the loss name."""
    objectives.get_loss(config.loss.name)
    return penalties.make_penalty(config.loss.penalty, **_plain(config.loss.penalty_options))


def build(config: ml_collections.ConfigDict, source: Any = None) -> Experiment:
    """Models, optimizer, data and loss from a config; every check happens here.

    `source` (a `data.images.ImageSource`) replaces the dataset `config.data` names.
    """
    check_config(config)
    optimizer, n_sub = build_optimizer(config)
    penalty = build_penalty(config)
    generator, discriminator, z_dim, image_shape = build_models(config)
    if source is None:
        from gan_dynamics.data import images

        d = config.data
        source = images.open_dataset(d.name, split=d.split, data_dir=d.data_dir or None,
                                     image_size=d.image_size or None)
    if image_shape != tuple(source.image_shape):
        raise ValueError(
            f"Dataset {config.data.name!r} gives images of shape {tuple(source.image_shape)} "
            f"but model {config.model.name!r} makes {image_shape}; pick a model (or "
            "model.image_size / model.channels) that matches the data."
        )
    return Experiment(
        generator, discriminator, z_dim, image_shape, optimizer, n_sub, source,
        config.loss.name, penalty, float(config.loss.weight_clip),
    )


# ------------------------------------------------------------------ models and game


def generate_fn(exp: Experiment, state: "TrainState") -> Callable[[jax.Array], jax.Array]:
    """Images from latents with the state's generator in inference mode."""
    return lambda z: exp.generator.apply(
        {"params": state.params_x, **state.stats_x}, z, train=False
    )


def step_game(exp: Experiment, state: "TrainState", batches: jax.Array, key: jax.Array) -> Game:
    """The GAN game of one step; substep i plays on batch i with its own latents and key.

    Model state (batch statistics) enters as constants and leaves in the aux
    (`objectives.GanAux`; DESIGN.md Sec. 3).
    """

    def batch(i):
        real = batches[i]
        key_z, key_penalty = jax.random.split(jax.random.fold_in(key, i))
        return real, jax.random.normal(key_z, (real.shape[0], exp.z_dim), real.dtype), key_penalty

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
        key=key_run,
    )


def create_state(exp: Experiment, seed: int, mesh: jax.sharding.Mesh) -> tuple[TrainState, Any]:
    """The initial state created directly with its sharding, and the abstract state.

    The abstract state (shapes, dtypes, shardings) is what a checkpoint restores into.
    """
    sharding = parallel.replicated(mesh)
    # Raw uint32 keys: they checkpoint as plain arrays.
    key = jax.random.PRNGKey(seed)
    abstract = jax.eval_shape(lambda k: init_state(exp, k), key)
    shardings = jax.tree.map(lambda _: sharding, abstract)
    state = jax.jit(lambda k: init_state(exp, k), out_shardings=shardings)(key)
    abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )
    return state, abstract


def make_train_step(exp: Experiment):
    """`train_step(state, batches) -> (state, metrics)`, a pure function of arrays."""

    def train_step(state: TrainState, batches: jax.Array):
        chex.assert_rank(batches, 2 + len(exp.image_shape))
        chex.assert_axis_dimension(batches, 0, exp.n_sub)
        key = jax.random.fold_in(state.key, state.step)
        game = step_game(exp, state, batches, key)
        params_x, params_y, opt_state, info = exp.optimizer.update(
            game, state.params_x, state.params_y, state.opt_state
        )
        if exp.weight_clip:
            params_y = penalties.clip_weights(params_y, exp.weight_clip)
        aux: objectives.GanAux = info["aux"]
        metrics = {k: v for k, v in info.items() if k not in _NOT_LOGGED}
        metrics.update(aux.metrics)
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
        make_train_step(exp),
        in_shardings=(state_shardings, parallel.batch_sharding(mesh, batch_axis=1)),
        out_shardings=(state_shardings, parallel.replicated(mesh)),
        donate_argnums=(0,),
    )


# ------------------------------------------------------------------------ outputs


class MetricWriter:
    """Scalars to `metrics.jsonl` and TensorBoard event files (no TensorFlow needed).

    On resume from step k, records of steps >= k left by the interrupted run are dropped
    from both, so the files describe one trajectory.
    """

    def __init__(self, workdir: str, resume_step: int, enabled: bool = True):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if not enabled:
            return
        if resume_step and os.path.exists(self.path):
            with open(self.path) as f:
                kept = [line for line in f if json.loads(line)["step"] < resume_step]
            with open(self.path, "w") as f:
                f.writelines(kept)
        elif os.path.exists(self.path):
            os.remove(self.path)
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"),
                                 purge_step=resume_step or None)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        for name, value in scalars.items():
            self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
    """The records a run wrote to `metrics.jsonl`, in step order."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def image_grid(images: np.ndarray) -> np.ndarray:
    """A square uint8 grid (rows of images, 1-pixel gaps) from images in [-1, 1]."""
    chex.assert_rank(images, 4)
    n, h, w, c = images.shape
    side = math.isqrt(n)
    pixels = np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).astype(np.uint8)
    grid = np.full((side * (h + 1) + 1, side * (w + 1) + 1, c), 255, np.uint8)
    for i in range(side * side):
        r, col = divmod(i, side)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = pixels[i]
    return grid[..., 0] if c == 1 else grid


def save_image_grid(images: np.ndarray, path: str, scale: int = 1) -> None:
    """Write `image_grid(images)` as a PNG, each pixel `scale` x `scale` screen pixels."""
    from PIL import Image

    grid = image_grid(images)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(grid).save(path)


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _StopSignal:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def save_loss_curves(records: Sequence[dict[str, float]], path: str) -> None:
    """Both players' losses (and the discriminator's penalty, if any) against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, label in (("f", "generator loss f"), ("g", "discriminator loss g"),
                        ("penalty", "penalty (in g)")):
        points = [(r["step"], r[name]) for r in records if name in r]
        if points:
            ax.plot(*zip(*points), label=label, lw=1)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- loop

# fold_in constant for the fixed latents of the sample grids (independent of training keys).
_SAMPLE_LATENTS = 0x5A4D


def step_batches(exp: Experiment, step: int, batch_size: int, seed: int,
                 mesh: jax.sharding.Mesh) -> jax.Array:
    """The (n_sub, batch_size, H, W, C) real batches of generator step `step`, sharded."""
    from gan_dynamics.data import images

    return images.device_batches(exp.source, step, exp.n_sub, batch_size=batch_size,
                                 seed=seed, mesh=mesh)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}


def _last_good_checkpoint(manager: ocp.CheckpointManager, bad_step: int, directory: str) -> str:
    # A checkpoint labelled c holds the parameters whose losses were evaluated at step c.
    good = [c for c in manager.all_steps() if c < bad_step]
    if not good:
        return "none (no checkpoint precedes it; restart from scratch)"
    return f"step {max(good)} in {directory}"


def run(config: ml_collections.ConfigDict, workdir: str,
        eval_hooks: Sequence[EvalHook] = (), source: Any = None) -> TrainState:
    """Train (or resume) the run `config` describes in `workdir`; return the final state.

    `eval_hooks` are called every `train.eval_every` steps as
    `hook(step, state, generate) -> {name: value}`, with `generate(z) -> images`; their
    results are logged under `eval/`. `source` replaces the dataset of `config.data`.
    """
    check_config(config)
    parallel.initialize_distributed(config.parallel)
    exp = build(config, source)
    mesh = parallel.make_mesh(config.parallel.num_devices)
    parallel.check_batch_size(config.data.batch_size, mesh)
    t = config.train
    num_steps, batch_size = int(t.num_steps), int(config.data.batch_size)

    state, abstract = create_state(exp, config.seed, mesh)
    train_step = jit_train_step(exp, mesh, abstract)

    ckpt_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
    manager = ocp.CheckpointManager(
        ckpt_dir,
        options=ocp.CheckpointManagerOptions(max_to_keep=int(t.keep_checkpoints), create=True),
    )
    if manager.latest_step() is not None:
        try:
            state = manager.restore(manager.latest_step(),
                                    args=ocp.args.StandardRestore(abstract))
        except ValueError as err:
            raise ValueError(
                f"The checkpoint at step {manager.latest_step()} in {ckpt_dir} does not fit "
                "this config (model, optimizer or loss changed?). Resume with the config "
                f"that wrote it, or use a fresh --workdir. Orbax said: {err}"
            ) from err
        print(f"Resuming from checkpoint step {int(state.step)} in {ckpt_dir}", flush=True)
    start = int(state.step)

    is_main = jax.process_index() == 0
    writer = MetricWriter(workdir, start, enabled=is_main)
    sample_z = jax.random.normal(
        jax.random.fold_in(jax.random.PRNGKey(config.seed), _SAMPLE_LATENTS),
        (int(t.num_samples), exp.z_dim),
    )
    generate = jax.jit(lambda s, z: generate_fn(exp, s)(z))

    def save_outputs(state, step):
        if not is_main:
            return
        images = np.asarray(generate(state, sample_z))
        save_image_grid(images, os.path.join(workdir, "samples", f"step_{step:08d}.png"))
        save_loss_curves(read_metrics(workdir), os.path.join(workdir, "loss_curves.png"))

    print(f"Training {num_steps} steps from step {start} on {mesh.devices.size} device(s); "
          f"workdir {workdir}", flush=True)
    if start >= num_steps:
        save_outputs(state, start)
    with _StopSignal() as stop:
        batches = step_batches(exp, start, batch_size, config.seed, mesh)
        for step in range(start, num_steps):
            state, metrics = train_step(state, batches)
            done = step + 1
            if done < num_steps:  # read the next batch while the device works
                batches = step_batches(exp, done, batch_size, config.seed, mesh)
            metrics = _scalars(jax.device_get(metrics))
            if not (math.isfinite(metrics["f"]) and math.isfinite(metrics["g"])):
                manager.wait_until_finished()
                raise FloatingPointError(
                    f"Non-finite loss at step {step} (f={metrics['f']}, g={metrics['g']}); "
                    f"stopping. Last good checkpoint: "
                    f"{_last_good_checkpoint(manager, step, ckpt_dir)}. Lower the learning "
                    "rates or add a penalty, and start in a fresh workdir."
                )
            if step == start or done % t.log_every == 0 or done == num_steps:
                writer.write(step, metrics)
                # Average since the first step (which includes compilation), outputs included.
                now = time.perf_counter()
                if step == start:
                    first_done = now
                    speed = "compiled and ran the first step"
                else:
                    rate = (step - start) / (now - first_done)
                    speed = (f"{rate:.3g} steps/s  ETA "
                             f"{_format_duration((num_steps - done) / rate)}")
                print(f"step {done}/{num_steps}  f={metrics['f']:.4g}  g={metrics['g']:.4g}  "
                      f"|  {speed}", flush=True)
            if eval_hooks and done % t.eval_every == 0:
                results = {}
                for hook in eval_hooks:
                    results.update({f"eval/{k}": float(v) for k, v in
                                    hook(done, state, lambda z: generate(state, z)).items()})
                if results:
                    writer.write(step, results)
            if done % t.sample_every == 0 or done == num_steps:
                save_outputs(state, done)
            if done % t.checkpoint_every == 0 or done == num_steps or stop.received:
                manager.save(done, args=ocp.args.StandardSave(state))
            if stop.received:
                manager.wait_until_finished()
                print(f"Signal {stop.received} received: saved checkpoint step {done} in "
                      f"{ckpt_dir}; run the same command again to resume.", flush=True)
                break
    manager.wait_until_finished()
    manager.close()
    writer.close()
    return state
