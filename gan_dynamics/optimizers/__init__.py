"""Game optimizers: one module each, one interface (`base.GameOptimizer`).

`create(name, **hyperparameters)` builds any of them by name, so that an experiment's
config chooses the optimizer with one string.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from gan_dynamics.checks import check_hyperparameters
from gan_dynamics.errors import UserError, did_you_mean
from gan_dynamics.optimizers.base import GameOptimizer

# name -> "module:factory" inside this package; modules load lazily.
_REGISTRY = {
    "simgd": "simgd:simgd",
    "altgd": "altgd:altgd",
    "cgd": "cgd:cgd",
    "acgd": "cgd:acgd",
    "extragradient": "extragradient:extragradient",
    "ogda": "ogda:ogda",
    "consensus": "consensus:consensus",
    "sga": "sga:sga",
}

NAMES = tuple(_REGISTRY)


def factory(name: str):
    """The factory function of the optimizer called `name`."""
    if name not in _REGISTRY:
        raise UserError(f"Unknown game optimizer {name!r}; choose one of {list(_REGISTRY)}."
                        + did_you_mean(name, _REGISTRY))
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"gan_dynamics.optimizers.{module}"), attr)


def create(name: str, **hyperparameters: Any) -> GameOptimizer:
    """Build the optimizer `name`; unknown or bad hyperparameters fail with a UserError
    naming the accepted ones or the valid range (`checks.check_hyperparameters`;
    values that are JAX arrays, e.g. a sweep's traced lr, are not checked)."""
    make = factory(name)
    accepted = inspect.signature(make).parameters
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        hints = "".join(did_you_mean(k, accepted) for k in unknown)
        raise UserError(
            f"Optimizer {name!r} does not take {unknown}; it takes {list(accepted)}.{hints}"
        )
    check_hyperparameters(name, hyperparameters)
    return make(**hyperparameters)
