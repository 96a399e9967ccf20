"""Per-player base transforms: optax optimizers built from a small spec.

SimGD, AltGD and the other first-order game optimizers give each player its own optax
transform, so published baselines are exact (WGAN-GP: Adam lr 1e-4, betas (0.5, 0.9);
Gulrajani et al. 2017, Alg. 1). A spec is a mapping such as
`{"name": "adam", "lr": 1e-4, "b1": 0.5, "b2": 0.9}`. Every value may be a traced array
(momentum too: leave it out, not 0, for plain SGD, so no Python branch sees its value).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import optax

_BUILDERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda lr, momentum=None, nesterov=False: optax.sgd(lr, momentum, nesterov),
    "adam": lambda lr, b1=0.9, b2=0.999, eps=1e-8: optax.adam(lr, b1=b1, b2=b2, eps=eps),
    "rmsprop": lambda lr, decay=0.9, eps=1e-8, momentum=None: optax.rmsprop(
        lr, decay=decay, eps=eps, momentum=momentum
    ),
}


def make_transform(spec: Mapping[str, Any]) -> optax.GradientTransformation:
    """The optax transform named by `spec["name"]` with the remaining keys as arguments."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown player transform {name!r}; choose one of {sorted(_BUILDERS)} "
            "(e.g. {'name': 'adam', 'lr': 1e-4, 'b1': 0.5, 'b2': 0.9})."
        )
    try:
        return _BUILDERS[name](**spec)
    except TypeError as err:
        raise ValueError(f"Bad arguments {spec} for player transform {name!r}: {err}") from err
