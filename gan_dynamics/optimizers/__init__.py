"""Game optimizers: one module each, one interface (`base.GameOptimizer`).

`create(name, **hyperparameters)` builds any of them by name, so that an experiment's
config chooses the optimizer with one string.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

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
        raise ValueError(f"Unknown game optimizer {name!r}; choose one of {list(_REGISTRY)}.")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"gan_dynamics.optimizers.{module}"), attr)


def create(name: str, **hyperparameters: Any) -> GameOptimizer:
    """Build the optimizer `name`; unknown hyperparameters fail with the accepted ones."""
    make = factory(name)
    accepted = inspect.signature(make).parameters
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise ValueError(
            f"Optimizer {name!r} does not take {unknown}; it takes {list(accepted)}."
        )
    return make(**hyperparameters)
