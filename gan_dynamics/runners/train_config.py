"""The image runner's config schema and the builders that turn a config into an `Experiment`.

`default_config()` holds the defaults of every image experiment (the ICR flagship: WGAN
loss, ACGD, CIFAR-10; Schaefer, Zheng & Anandkumar 2020, Sec. 6); experiment files start
from it and override (flax-examples style). `build(config)` checks the config and builds
the models, optimizer, data and loss before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections

from gan_dynamics import objectives, penalties
from gan_dynamics.checks import check_memory, check_value, is_int_at_least, is_positive_int
from gan_dynamics.errors import UserError, did_you_mean
from gan_dynamics.metrics import classifier as classifier_lib
from gan_dynamics.metrics import critic as critic_lib
from gan_dynamics.metrics import feature_scores
from gan_dynamics.optimizers import create as create_optimizer
from gan_dynamics.optimizers.base import GameOptimizer


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
            "num_workers": 0,  # decoding worker processes (data.loader); 0: threads
            "prefetch": 2,  # steps of batches in flight to the devices
        }
    )
    config.model = ml_collections.ConfigDict({"name": "icr_dcgan", "z_dim": 128})
    config.loss = ml_collections.ConfigDict(
        {
            "name": "wgan",  # objectives.LOSSES: minimax, non_saturating, wgan, hinge
            "penalty": "none",  # penalties.PENALTIES: none, wgan_gp, gan_gp, dragan, r1, r2
            "penalty_options": {},  # the penalty's keyword options, e.g. {"weight": 10.0}
            # Clip the critic's weights to ±c after every critic update (each of AltGD's
            # n_disc steps; the optimizer's projection); 0: off. WGAN (Arjovsky): 0.01.
            "weight_clip": 0.0,
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
            # Stop cleanly (checkpoint, results.json, exit 0) at the first budget reached;
            # 0: none. Seconds: wall-clock since the run started, compilation excluded;
            # gradient evaluations: the optimizers' count (docs/design.md Sec. 4).
            "budget": {"steps": 0, "grad_evals": 0, "seconds": 0.0},
            # K independent GANs of this setting in one jitted step (train_seeds): seed k
            # trains with seed + k and writes its own run in DIR/seed_<k>/; 1: one run.
            "num_seeds": 1,
            # With num_seeds > 1: how many seeds one vmapped call steps; the groups run one
            # after another in the same program. 0: all on a GPU/TPU, 1 on a CPU (measured
            # faster there: one seed's step already fills the cores).
            "seeds_at_once": 0,
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
    config.diagnostics = diagnostics_section()
    config.eval = eval_section()
    return config


# Sample metrics `config.eval.metrics` may name (`image_eval`; docs/metrics.md).
FEATURE_SCORES = ("kid", "precision", "recall", "density", "coverage", "fid_inf")
METRICS = ("classifier_is", "classifier_fid", "critic", "ms_ssim", "inception_score", "fid",
           *FEATURE_SCORES)


def eval_section() -> ml_collections.ConfigDict:
    """`config.eval`: the sample metrics of periodic evaluation (`image_eval`); off."""
    return ml_collections.ConfigDict({
        "metrics": "",  # comma-separated subset of METRICS, e.g. "classifier_is,critic"; "": off
        "num_samples": 1000,  # generated images per evaluation (and at most as many real)
        "split": "test",  # held-out real images (never read by training)
        "batch_size": 250,  # images per generator / classifier / Inception call
        "seed": 0,  # latents of the evaluation samples, the critic's initialisation
        "is_splits": 10,  # parts of the Inception Scores' mean and std
        "classifier": dataclasses.asdict(classifier_lib.ClassifierOptions()),
        "critic": dataclasses.asdict(critic_lib.CriticOptions()),
        "inception_weights": "",  # converted .npz; "": the cache's default path
        "resize": "pytorch_fid",  # to the Inception's 299x299: "pytorch_fid" | "clean"
        "features": "inception",  # network of the feature scores: "inception" | "classifier"
        "scores": dataclasses.asdict(feature_scores.ScoreOptions()),
    })


def diagnostics_section() -> ml_collections.ConfigDict:
    """`config.diagnostics`: periodic spectra of the game (`image_diagnostics`); off."""
    return ml_collections.ConfigDict({
        "every": 0,  # diagnose at eval steps that are multiples of this; 0: off
        "k": 6,  # eigenvalues of the field's Jacobian per criterion
        "which": "LM,LR",  # criteria: LM |λ|, LR max Re, SR min Re, LI max |Im|
        "tol": 1e-3,  # relative residual of each eigenvalue
        "max_restarts": 30,
        "hessian": True,  # each player's extreme Hessian eigenvalues
        "decomposition": False,  # norms of J's symmetric/antisymmetric parts
        "cgd_system": True,  # CGD/ACGD system's condition number (those optimizers only)
        "batch_size": 0,  # the fixed batch's size; 0: config.data.batch_size
    })


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
    """Fail with a UserError on unknown keys and bad values (before any compile).

    Sections other helpers add (`eval`, `diagnostics`) are checked by their owners'
    `make_eval_hooks`; the optimizer's and model's keys by their factories.
    """
    schema = default_config()

    def unknown(section, reference, name):
        extra = sorted(set(section.keys()) - set(reference.keys()))
        if extra:
            hints = "".join(did_you_mean(k, reference.keys()) for k in extra)
            raise UserError(f"Unknown config key(s) {extra} in {name}.{hints} Known keys: "
                            f"{sorted(reference.keys())}.")

    unknown(config, _with_optional_sections(schema), "config")
    missing = sorted(set(schema.keys()) - set(config.keys()))
    if missing:
        raise UserError(f"Config lacks {missing}; start from "
                        "gan_dynamics.runners.train_config.default_config().")
    for section in ("data", "train", "loss", "parallel"):
        unknown(config[section], schema[section], f"config.{section}")
    t = config.train
    for name in ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                 "sample_every", "eval_every", "num_samples"):
        if not is_positive_int(t[name]):
            raise UserError(f"config.train.{name}={t[name]!r} must be a positive integer.")
    # Configs saved before budgets (or seeds) existed (a run's config.json) have none.
    num_seeds = t.get("num_seeds", 1)
    if not is_positive_int(num_seeds):
        raise UserError(f"config.train.num_seeds={num_seeds!r} must be a positive integer "
                        "(1: one run; K: K seeds in one program).")
    at_once = t.get("seeds_at_once", 0)
    if not is_int_at_least(at_once, 0):
        raise UserError(f"config.train.seeds_at_once={at_once!r} must be an integer >= 0 "
                        "(0: all seeds in one vmapped call on a GPU/TPU, one at a time on a "
                        "CPU; N: groups of N).")
    budget = t.get("budget", schema.train.budget)
    unknown(budget, schema.train.budget, "config.train.budget")
    for name in ("steps", "grad_evals", "seconds"):
        value = budget.get(name, 0)
        whole = name != "seconds"
        if isinstance(value, (str, bool)) or not (
                isinstance(value, int) if whole else isinstance(value, (int, float))) \
                or not value >= 0:
            raise UserError(f"config.train.budget.{name}={value!r} must be "
                            f"{'an integer' if whole else 'a number'} >= 0 (0: no budget).")
    if math.isqrt(t.num_samples) ** 2 != t.num_samples:
        raise UserError(f"config.train.num_samples={t.num_samples} must be a square number "
                        "(e.g. 64) to fill the sample grid.")
    if not is_positive_int(config.data.batch_size):
        raise UserError(f"config.data.batch_size={config.data.batch_size!r} must be a "
                        "positive integer (the global batch, e.g. 64).")
    if not is_positive_int(config.data.prefetch):
        raise UserError(f"config.data.prefetch={config.data.prefetch!r} must be a positive "
                        "integer (steps of batches sent to the devices ahead, e.g. 2).")
    workers = config.data.num_workers
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 0):
        raise UserError(f"config.data.num_workers={workers!r} must be an integer >= 0 "
                        "(decoding processes; 0 decodes in threads of this process).")
    if not (isinstance(config.data.image_size, int) and config.data.image_size >= 0):
        raise UserError(f"config.data.image_size={config.data.image_size!r} must be an "
                        "integer >= 0 (0: the dataset's own size).")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool):
        raise UserError(f"config.seed={config.seed!r} must be an integer.")
    clip = config.loss.weight_clip
    if isinstance(clip, (str, bool)) or not clip >= 0:
        raise UserError(f"config.loss.weight_clip={clip!r} must be >= 0 (0: off; WGAN "
                        "uses 0.01).")
    build_penalty(config)
    options = _plain(config.loss.penalty_options)
    for key, value in options.items():
        if key == "weight":
            check_value("config.loss.penalty_options.", key, value)
    p = config.parallel
    if not (isinstance(p.num_devices, int) and p.num_devices >= 0):
        raise UserError(f"config.parallel.num_devices={p.num_devices!r} must be an integer "
                        ">= 0 (0: all devices).")
    if not isinstance(config.model.get("name", None), str):
        raise UserError("config.model needs a `name` (models.registry), e.g. "
                        "--config.model.name=dcgan.")
    for key in ("z_dim", "width", "image_size", "channels"):
        if key in config.model and not is_positive_int(config.model[key]):
            raise UserError(f"config.model.{key}={config.model[key]!r} must be a positive "
                            "integer.")
    if not isinstance(config.optimizer.get("name", None), str):
        raise UserError("config.optimizer needs a `name`, e.g. "
                        "--config.optimizer='{\"name\": \"acgd\", \"lr_x\": 1e-4}'.")
    if num_seeds > 1:
        _check_seeds(config, budget)


def _check_seeds(config: ml_collections.ConfigDict, budget: Any) -> None:
    """The options a K-seed run (`train_seeds`) cannot honour, refused in one line each."""
    if config.parallel.distributed:
        raise UserError("config.train.num_seeds > 1 runs in one process: with several "
                        "processes each reads only its rows of a batch and the seeds' "
                        "checkpoints are cut from arrays whole in one process; run the seeds "
                        "as separate tasks, or set parallel.distributed=False.")
    if config.train.keep_checkpoints < 2:
        raise UserError("config.train.keep_checkpoints must be at least 2 with num_seeds > 1: "
                        "the seeds' checkpoints are written one after another, and a run "
                        "killed between two resumes from an older step every seed holds.")
    for name in ("grad_evals", "seconds"):
        if budget.get(name, 0):
            raise UserError(f"config.train.budget.{name} cannot stop a run of num_seeds > 1: "
                            "its seeds step together but count gradient evaluations and "
                            "seconds apart, so seed k would not stop where it stops alone; "
                            "use budget.steps, or run the seeds as separate tasks.")


def seed_config(config: ml_collections.ConfigDict, k: int) -> ml_collections.ConfigDict:
    """The config of seed k of a K-seed run: the run alone with seed `config.seed + k`
    (what DIR/seed_<k>/config.json holds, so every tool reads the seed as a run)."""
    one = ml_collections.ConfigDict(config.to_dict())
    one.seed = int(config.seed) + k
    one.train.num_seeds = 1
    one.train.seeds_at_once = 0
    return one


def nn_distance_section() -> ml_collections.ConfigDict:
    """`config.nn_distance`: the neural-net distance hook (`image_nn_distance`), evaluated
    when the section is present (it is not in `default_config`)."""
    return ml_collections.ConfigDict({
        "num_samples": 2048,  # of each set, split half to fit, half to report
        "measure": "gan", "critic": "mlp", "hidden": (256, 256), "clip": 0.0,
        "steps": 1000, "lr": 1e-3, "batch": 256, "held_out": 0.5,
        "split": "test",  # the real images compared with the samples
        "seed": 0,
    })


# Optional sections of periodic evaluation -> the module whose `make_eval_hooks(config,
# exp)` reads it; the loop imports a module only when its section is present.
EVAL_SECTIONS = {
    "eval": "gan_dynamics.runners.image_eval",
    "diagnostics": "gan_dynamics.runners.image_diagnostics",
    "nn_distance": "gan_dynamics.runners.image_nn_distance",
}


def _with_optional_sections(schema: ml_collections.ConfigDict) -> dict[str, Any]:
    """Top-level keys a config may have: the schema's plus the evaluation sections."""
    return {**schema, **{section: None for section in EVAL_SECTIONS}}


def _plain(section: Any) -> dict[str, Any]:
    return section.to_dict() if isinstance(section, ml_collections.ConfigDict) else dict(section)


def build_optimizer(config: ml_collections.ConfigDict) -> tuple[GameOptimizer, int]:
    """The game optimizer of `config.optimizer` and the number of batches it eats per step.

    `config.loss.weight_clip` > 0 becomes the optimizer's projection of the critic
    (`project_y`), applied after every update of the critic.
    """
    hparams = _plain(config.optimizer)
    name = hparams.pop("name")
    if config.loss.weight_clip > 0:
        hparams["project_y"] = penalties.weight_clip(float(config.loss.weight_clip))
    try:
        optimizer = create_optimizer(name, **hparams)
    except UserError as err:
        raise UserError(
            f"config.optimizer: {err} To switch optimizers, replace the whole section with "
            f"a Python dict: --config.optimizer='{{\"name\": \"{name}\", ...}}' "
            "(e.g. {\"name\": \"acgd\", \"lr_x\": 1e-4, \"lr_y\": 1e-4})."
            if "does not take" in str(err) else f"config.optimizer: {err}") from err
    return optimizer, optimizer.substeps


def build_models(config: ml_collections.ConfigDict) -> tuple[Any, Any, int, tuple[int, ...]]:
    """(generator, discriminator, z_dim, image shape the generator makes) of `config.model`."""
    from gan_dynamics.models import registry

    kwargs = _plain(config.model)
    try:
        generator, discriminator = registry.get_model(kwargs.pop("name"), **kwargs)
    except (ValueError, TypeError) as err:
        raise UserError(f"config.model: {err}") from err
    z_dim = int(generator.z_dim)
    made = jax.eval_shape(
        lambda: generator.init_with_output(jax.random.key(0), jnp.zeros((1, z_dim)),
                                           train=False)[0]
    )
    return generator, discriminator, z_dim, tuple(made.shape[1:])


def build_penalty(config: ml_collections.ConfigDict) -> Optional[penalties.Penalty]:
    """The penalty of `config.loss` (None for "none"), after checking the loss name."""
    try:
        objectives.get_loss(config.loss.name)
        return penalties.make_penalty(config.loss.penalty, **_plain(config.loss.penalty_options))
    except (ValueError, TypeError) as err:
        raise UserError(f"config.loss: {err}") from err


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

        _check_data_size(config, image_shape)
        _check_seeds_memory(config, image_shape)
        d = config.data
        try:
            source = images.open_dataset(d.name, split=d.split, data_dir=d.data_dir or None,
                                         image_size=d.image_size or None)
        except UserError:  # DatasetNotPreparedError: the prepare command
            raise
        except ValueError as err:
            raise UserError(str(err)) from err
    if source.num_examples < 1:
        raise UserError(f"Dataset {config.data.name!r} split {config.data.split!r} has no "
                        "examples; prepare it again or pick another split.")
    if image_shape != tuple(source.image_shape):
        raise UserError(
            f"Dataset {config.data.name!r} gives images of shape {tuple(source.image_shape)} "
            f"but model {config.model.name!r} makes {image_shape}; pick a model (or "
            "model.image_size / model.channels) that matches the data."
        )
    return Experiment(
        generator, discriminator, z_dim, image_shape, optimizer, n_sub, source,
        config.loss.name, penalty,
    )


def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "image": schema, values, optimizer, penalty, models (and the dataset with
    `data`), and what each evaluation section reads (its module's `check_section`),
    without compiling; UserError if any is bad."""
    try:
        if data:
            build(config)
        else:
            check_config(config)
            build_optimizer(config)
            build_penalty(config)
            image_shape = build_models(config)[3]
            _check_data_size(config, image_shape)
            _check_seeds_memory(config, image_shape)
        for section, module in EVAL_SECTIONS.items():
            if section in config:
                importlib.import_module(module).check_section(config)
    except (ValueError, TypeError) as err:
        raise err if isinstance(err, UserError) else UserError(str(err)) from err


def _check_seeds_memory(config: ml_collections.ConfigDict, image_shape: tuple[int, ...]
                        ) -> None:
    """UserError when a K-seed run's batches alone (K x batch_size float32 images per step,
    the least its step holds) exceed the device's memory: a count like 10**12 is refused
    here, not after building K configs."""
    num_seeds = config.train.get("num_seeds", 1)
    if num_seeds > 1:
        check_memory(f"config.train.num_seeds={num_seeds}: one step's batches",
                     num_seeds * int(config.data.batch_size) * math.prod(image_shape) * 4)


def _check_data_size(config: ml_collections.ConfigDict, image_shape: tuple[int, ...]) -> None:
    """UserError when `config.data.image_size` asks for images the model does not make
    (before any image is resized to it)."""
    size = config.data.image_size
    if size and size != image_shape[0]:
        raise UserError(f"config.data.image_size={size} but model {config.model.name!r} makes "
                        f"images of shape {image_shape}; pick a model (or model.image_size / "
                        "model.channels) that matches the data, or 0 for the dataset's size.")
