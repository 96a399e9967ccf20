"""Every value a user sets, checked before anything is compiled.

`check(config)` runs the checks of the config's runner (image, toy_game, synthetic,
sweep): non-finite numbers anywhere, then the runner's own schema and builders (models,
optimizers, penalties; the dataset too with `data=True`), so a bad value fails in a
second with a message naming the key and a fix instead of minutes later as a diverged
run. `check_hyperparameters` is what the optimizer factory applies to its arguments:
learning rates > 0, momenta in [0, 1), tolerances >= 0, iteration counts >= 1. Values
that are not concrete numbers (JAX arrays, e.g. a sweep's traced learning rate) are
left alone: sweeps validate their grids from the config instead.

`resolve_quick(config, overridden)` applies a config's `quick_settings` (when `quick` is
set) only to the keys the command line did not set, so `--config.quick=True
--config.steps=1000` runs 1000 steps.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Iterable, Mapping

import ml_collections

from gan_dynamics.errors import UserError

# Hyperparameter name -> (rule, what it is). Rules: "positive" (> 0), "unit" ([0, 1)),
# "nonnegative" (>= 0), "count" (integer >= 1).
_RULES = {
    "lr": ("positive", "a learning rate, e.g. 1e-4"),
    "lr_x": ("positive", "the generator's learning rate, e.g. 1e-4"),
    "lr_y": ("positive", "the discriminator's learning rate, e.g. 1e-4"),
    "eps": ("positive", "a small constant that keeps a division finite, e.g. 1e-8"),
    "align_eps": ("positive", "SGA's alignment constant, e.g. 0.1"),
    "beta": ("unit", "ACGD's second-moment decay, e.g. 0.99"),
    "b1": ("unit", "Adam's first-moment decay, e.g. 0.5"),
    "b2": ("unit", "Adam's second-moment decay, e.g. 0.999"),
    "decay": ("unit", "RMSProp's decay, e.g. 0.9"),
    "momentum": ("unit", "a momentum, e.g. 0.9"),
    "tol": ("nonnegative", "a relative solver tolerance, e.g. 1e-6"),
    "atol": ("nonnegative", "an absolute solver tolerance, e.g. 1e-10"),
    "gamma": ("nonnegative", "the consensus weight, e.g. 1.0"),
    "lam": ("nonnegative", "SGA's weight, e.g. 1.0"),
    "weight": ("nonnegative", "a penalty weight λ, e.g. 10"),
    "max_iter": ("count", "a solver iteration bound, e.g. 100"),
    "restart": ("count", "the GMRES restart length, e.g. 20"),
    "n_disc": ("count", "discriminator steps per generator step, e.g. 1 or 5"),
}

_WORDS = {"positive": "a finite number > 0", "unit": "a number in [0, 1)",
          "nonnegative": "a finite number >= 0", "count": "an integer >= 1"}


def _concrete(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def check_value(where: str, name: str, value: Any) -> None:
    """Check one hyperparameter `name` (rules above); `where` prefixes the message."""
    if name not in _RULES or value is None:
        return
    rule, meaning = _RULES[name]
    if isinstance(value, (str, bool)):
        raise UserError(f"{where}{name}={value!r} must be {_WORDS[rule]} ({meaning}).")
    if not _concrete(value):
        return  # traced (a sweep's lr): checked from the config instead
    try:
        v = float(value)
    except (TypeError, ValueError):  # complex, arrays of several values, other objects
        raise UserError(f"{where}{name}={value!r} must be {_WORDS[rule]} ({meaning}).")
    ok = math.isfinite(v) and {
        "positive": v > 0,
        "unit": 0 <= v < 1,
        "nonnegative": v >= 0,
        "count": v >= 1 and v == int(v),
    }[rule]
    if not ok:
        raise UserError(f"{where}{name}={value!r} must be {_WORDS[rule]} ({meaning}).")


def check_hyperparameters(name: str, hyperparameters: Mapping[str, Any]) -> None:
    """The optimizer factory's check of `create(name, **hyperparameters)`."""
    where = f"Optimizer {name!r}: "
    for key, value in hyperparameters.items():
        if key in ("transform_x", "transform_y") and isinstance(value, Mapping):
            for t_key, t_value in value.items():
                check_value(f"{where}{key}.", t_key, t_value)
        else:
            check_value(where, key, value)


def non_finite(tree: Any, prefix: str = "config") -> list[str]:
    """Paths of the NaN/inf floats anywhere in a (nested) config."""
    if isinstance(tree, ml_collections.ConfigDict):
        tree = tree.to_dict()
    if isinstance(tree, Mapping):
        return [p for k, v in tree.items() for p in non_finite(v, f"{prefix}.{k}")]
    if isinstance(tree, (list, tuple)):
        return [p for i, v in enumerate(tree) for p in non_finite(v, f"{prefix}[{i}]")]
    if isinstance(tree, float) and not math.isfinite(tree):
        return [f"{prefix}={tree}"]
    return []


# -- quick ------------------------------------------------------------------------------

def _leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, path + "."))
        else:
            out[path] = value
    return out


def _nest(leaves: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in leaves.items():
        node = tree
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return tree


def resolve_quick(config: ml_collections.ConfigDict,
                  overridden: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """An unlocked copy of `config` whose `quick_settings` leave the `overridden` keys alone.

    The runner applies `quick_settings` when `quick` is set; keys the command line set
    (and everything below or above them) are dropped from it first.
    """
    resolved = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    if not resolved.get("quick", False) or "quick_settings" not in resolved:
        return resolved
    overridden = tuple(overridden)

    def touched(path: str) -> bool:
        return any(o == path or path.startswith(o + ".") or o.startswith(path + ".")
                   for o in overridden)

    kept = {p: v for p, v in _leaves(resolved.quick_settings.to_dict()).items()
            if not touched(p)}
    resolved.quick_settings = ml_collections.ConfigDict(_nest(kept))
    return resolved


# -- per runner -------------------------------------------------------------------------

def _as_user_error(err: Exception) -> UserError:
    return err if isinstance(err, UserError) else UserError(str(err))


def check_image(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "image": schema, values, optimizer, penalty, models (and the dataset)."""
    from gan_dynamics.runners import train_config

    try:
        if data:
            train_config.build(config)
        else:
            train_config.check_config(config)
            train_config.build_optimizer(config)
            train_config.build_penalty(config)
            train_config.build_models(config)
    except (ValueError, TypeError) as err:
        raise _as_user_error(err) from err


def check_toy(config: ml_collections.ConfigDict) -> None:
    """Runner "toy_game": schema, the game and every optimizer entry."""
    from gan_dynamics.runners import toy_run

    try:
        toy_run.check_config(config)
        toy_run.build_entries(config)
    except (ValueError, TypeError) as err:
        raise _as_user_error(err) from err


def check_synthetic(config: ml_collections.ConfigDict) -> None:
    """Runner "synthetic": schema, values and the optimizer at the configured lr."""
    from gan_dynamics.runners import synthetic_run

    try:
        config = synthetic_run.resolve(config)
        synthetic_run.validate(config)
        _check_synthetic_values(config)
        check_value("config.optimizer.", "lr", config.optimizer.lr)
        synthetic_run.make_optimizer(config.optimizer, float(config.optimizer.lr))
    except (ValueError, TypeError) as err:
        raise _as_user_error(err) from err


def _check_synthetic_values(config: ml_collections.ConfigDict) -> None:
    """What `synthetic_run.validate` leaves: penalty weight, DRAGAN scale, spreads."""
    for key in ("penalty_weight", "mean_std", "direction_std", "parallel_offset"):
        value = config.get(key, 0.0)
        if isinstance(value, (str, bool)) or not value >= 0:
            raise UserError(f"config.{key}={value!r} must be a finite number >= 0.")
    scale = config.get("dragan", {}).get("scale", 0.0)
    if isinstance(scale, (str, bool)) or not scale >= 0:
        raise UserError(f"config.dragan.scale={scale!r} must be >= 0 (e.g. 0.5).")


def check_sweep(config: ml_collections.ConfigDict) -> None:
    """Runner "sweep": every cell's config and every learning rate of its grid."""
    from gan_dynamics.runners import sweep, synthetic_run

    try:
        config = synthetic_run.resolve(config)
        sweep.validate(config)
        _check_synthetic_values(config)
        for optimizer in sweep._names(config.run_optimizers):
            settings = config.optimizers[optimizer]
            lrs = list(settings.get("lrs", ())) if config.sweep == "lr" else []
            for lr in lrs:
                check_value(f"config.optimizers.{optimizer}.lrs: ", "lr", lr)
            if "lr" in settings:
                check_value(f"config.optimizers.{optimizer}.", "lr", settings.lr)
            cell = sweep.cell_config(config, sweep._names(config.models)[0], optimizer)
            synthetic_run.make_optimizer(cell.optimizer,
                                         float(lrs[0] if lrs else cell.optimizer.lr))
    except (ValueError, TypeError) as err:
        raise _as_user_error(err) from err


def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Everything a run of `config` needs, checked without compiling; UserError if not.

    `data=False` skips opening an image dataset (the README test builds configs whose
    data is not prepared on every machine).
    """
    bad = non_finite(config)
    if bad:
        raise UserError(f"{', '.join(bad)}: NaN and inf are not valid settings; give a "
                        "finite number.")
    runner = config.get("runner")
    if runner == "image":
        check_image(config, data)
    elif runner == "toy_game":
        check_toy(config)
    elif runner == "synthetic":
        check_synthetic(config)
    elif runner == "sweep":
        check_sweep(config)
