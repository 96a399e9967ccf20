"""Generic checks of user-set values, below every other module.

The hyperparameter rules every optimizer applies to its arguments (`check_hyperparameters`,
called by `optimizers.create`): learning rates > 0, momenta in [0, 1), tolerances >= 0,
iteration counts >= 1. Values that are not concrete numbers (JAX arrays, e.g. a sweep's
traced learning rate) are left alone: sweeps validate their grids from the config instead.
`non_finite` finds the NaN and inf values of a nested config; `one_of` and
`is_positive_int` are the checks every schema repeats; `check_memory` refuses a size
whose arrays cannot fit the device (an absurd count fails in a second, not at an
allocation deep inside or after minutes of building). Each runner checks its own schema
with these (`runners/*`), and `runners.dispatch.check` runs the runner's checks.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Iterable, Mapping

import ml_collections

from gan_dynamics.errors import UserError, did_you_mean

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
        raise UserError(f"{where}{name}={value!r} must be {_WORDS[rule]} ({meaning}).") from None
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


def is_int_at_least(value: Any, least: int) -> bool:
    """An int >= least (not a bool, not a float that happens to be whole)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def is_positive_int(value: Any) -> bool:
    """An int > 0 (not a bool, not a float that happens to be whole)."""
    return is_int_at_least(value, 1)


def one_of(where: str, value: Any, choices: Iterable[str]) -> None:
    """UserError "<where>=<value> is not one of [...]. Did you mean ...?" unless `value` is
    one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise UserError(f"{where}={value!r} is not one of {choices}."
                        + did_you_mean(str(value), choices))


def memory_bytes() -> int:
    """Memory of the first device: its allocator's limit on an accelerator, the machine's
    RAM on a CPU (whose allocator reports none)."""
    import jax  # here, not at the top: the other checks must not start a backend

    stats = jax.local_devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def format_bytes(nbytes: float) -> str:
    """'1.5 GB' (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1024:
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PB"


def check_memory(what: str, nbytes: int) -> None:
    """UserError when `what` (e.g. "config.train.num_seeds=4096: one step's batches")
    needs more than the device's memory."""
    available = memory_bytes()
    if nbytes > available:
        raise UserError(f"{what} need {format_bytes(nbytes)}, more than the "
                        f"{format_bytes(available)} of memory here; lower it.")
