"""The neural-net distance (Arora et al. 2017, Sec. 3; `metrics.nn_distance`) as a periodic
evaluation of the image runner: `make_eval_hooks(config, exp)` reads `config.nn_distance`
and compares real images of a held-out split with the generator's samples at each
evaluation, `hook(step, state, generate) -> {"nn_distance": d, "nn_distance_train": ...}`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_dynamics.checks import is_int_at_least
from gan_dynamics.data import images
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import nn_distance as nnd
from gan_dynamics.runners.train_config import nn_distance_section

EvalHook = Callable[[int, Any, Callable[[jax.Array], jax.Array]], dict[str, float]]


def _estimation_config(section: ml_collections.ConfigDict) -> nnd.NNDistanceConfig:
    config = nnd.NNDistanceConfig(
        measure=section.measure, critic=section.critic, hidden=tuple(section.hidden),
        clip=float(section.clip), steps=int(section.steps), lr=float(section.lr),
        batch=int(section.batch), held_out=float(section.held_out))
    nnd.check(config)
    return config


def check_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config.nn_distance` over its defaults, checked before any data is opened (its
    keys, the estimation's values, `num_samples` >= 2, `seed` >= 0); UserError naming
    the key."""
    defaults = nn_distance_section()
    section = config.nn_distance
    unknown = sorted(set(section.keys()) - set(defaults.keys()))
    if unknown:
        raise UserError(f"Unknown key(s) {unknown} in config.nn_distance; known keys: "
                        f"{sorted(defaults.keys())}.")
    # A plain merge: the section's values are checked below, naming the key, not by the
    # defaults' types.
    merged = ml_collections.ConfigDict({
        **defaults.to_dict(), **(section.to_dict() if hasattr(section, "to_dict") else dict(section))})
    hidden = merged.hidden
    if not (isinstance(hidden, (tuple, list)) and all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)):
        raise UserError(f"config.nn_distance.hidden={hidden!r} must be a tuple of layer widths "
                        "(positive integers), e.g. (256, 256); () for a linear critic.")
    if not isinstance(merged.split, str):
        raise UserError(f"config.nn_distance.split={merged.split!r} must be a split's name, "
                        "e.g. 'test'.")
    for key, least in (("num_samples", 2), ("seed", 0)):
        value = merged[key]
        if not is_int_at_least(value, least):
            raise UserError(f"config.nn_distance.{key}={value!r} must be an integer >= "
                            f"{least}.")
    try:
        _estimation_config(merged)
    except (ValueError, TypeError) as err:
        raise UserError(f"config.nn_distance: {err}") from err
    return merged


def make_eval_hooks(config: ml_collections.ConfigDict, exp: Any) -> list[EvalHook]:
    """The neural-net distance as an image-runner evaluation hook (none without a section).

    Reads `config.nn_distance` (keys and defaults: `train_config.nn_distance_section()`). The hook compares
    `num_samples` real images of `split` (of the dataset the config trains on) with as
    many samples of `generate` at standard normal latents of `exp.z_dim` (fixed by the
    section's seed, so successive evaluations see the same latents and real images).
    """
    if "nn_distance" not in config:
        return []
    merged = check_section(config)
    estimation = _estimation_config(merged)
    n = int(merged.num_samples)
    real = _real_images(config, exp, merged.split, n, int(merged.seed))
    z = jax.random.normal(jax.random.key(int(merged.seed)), (n, int(exp.z_dim)))
    distance = jax.jit(lambda key, fake: nnd.nn_distance(key, real, fake, estimation))

    def hook(step: int, state: Any, generate: Callable[[jax.Array], jax.Array]) -> dict[str, float]:
        del state
        fake = jnp.asarray(generate(z))
        out = distance(jax.random.fold_in(jax.random.key(int(merged.seed)), step), fake)
        return {name: float(v) for name, v in out.items()}

    return [hook]


def _real_images(config: ml_collections.ConfigDict, exp: Any, split: str, n: int,
                 seed: int) -> jax.Array:
    """n real images of `split` of the dataset `config.data` names (fixed by `seed`)."""
    d = config.data
    try:
        source = images.open_dataset(d.name, split=split, data_dir=d.data_dir or None,
                                     image_size=d.image_size or None)
    except UserError:  # not prepared: the message has the prepare command
        raise
    except (ValueError, FileNotFoundError) as err:
        raise UserError(f"config.nn_distance.split={split!r} of dataset {d.name!r}: "
                        f"{err}") from err
    if tuple(source.image_shape) != tuple(exp.image_shape):
        raise UserError(f"config.nn_distance.split={split!r} gives images "
                        f"{source.image_shape}, the generator makes {exp.image_shape}.")
    total = source.num_examples
    idx = np.random.default_rng(seed).choice(total, size=min(n, total), replace=False)
    return jnp.asarray(source.read(np.sort(idx)))
