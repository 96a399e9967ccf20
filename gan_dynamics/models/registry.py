"""Image GAN architectures by name: config strings -> (Generator, Discriminator) modules.

Every pair follows one interface (flax linen, NHWC, images in [-1, 1]):

  generator:     `G.apply(variables, z, train)` with z (N, z_dim) -> images (N, H, W, C)
  discriminator: `D.apply(variables, x, train)` -> logits / critic values (N,)

`variables` is `{"params": ..., "batch_stats": ...}` (no "batch_stats" where a network
has no batch norm). In training, apply with `train=True, mutable=["batch_stats"]` and
thread the returned statistics as the game's aux (docs/design.md Sec. 3). Initialise with
`G.init(key, jnp.zeros((1, z_dim)), train=False)` and
`D.init(key, jnp.zeros((1, H, W, C)), train=False)`.

Names: "icr_dcgan" (ICR paper CIFAR-10 pair), "wgan_gp_cifar" (WGAN-GP code's CIFAR-10
DCGAN, DIM=128), "dcgan" (Radford et al. DCGAN as in Fedus et al.; `image_size` 64 or
32), "mix" (MIX+GAN mixtures of another model, `models.mix`: base, components,
entropy_weight, and the base's own arguments). Keyword arguments go to the family's
`make` (z_dim, width, channels, image_size).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import flax.linen as nn
import jax
import numpy as np

from gan_dynamics.models import dcgan, icr_dcgan, mix, wgan_gp_cifar


def make_mix(base: str, components: int = 5, entropy_weight: float = 0.1,
             **base_kwargs: Any) -> tuple[mix.MixGenerator, mix.MixDiscriminator]:
    """MIX+`base`: mixtures of T = `components` copies of registry model `base`.

    `base_kwargs` go to the base model (e.g. z_dim, width, image_size).
    """
    if base == "mix":
        raise ValueError("model.base='mix': a mixture's base must be a plain model.")
    return mix.make(*get_model(base, **base_kwargs), components, entropy_weight)


MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    "icr_dcgan": icr_dcgan.make,
    "wgan_gp_cifar": wgan_gp_cifar.make,
    "dcgan": dcgan.make,
    "mix": make_mix,  # MIX+<base>: {"name": "mix", "base": "dcgan", "components": 5, ...}
}


def get_model(name: str, **kwargs: Any) -> tuple[nn.Module, nn.Module]:
    """The (generator, discriminator) pair called `name`, built with `kwargs`.

    Raises ValueError naming the known models, or the accepted keyword arguments.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    make = MODELS[name]
    accepted = inspect.signature(make).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    forwards = any(p.kind is p.VAR_KEYWORD for p in accepted.values())  # "mix": to its base
    if unknown and not forwards:
        raise ValueError(f"Model {name!r} takes no argument(s) {unknown}; it accepts "
                         f"{sorted(accepted)}.")
    return make(**kwargs)


def param_count(params: Any) -> int:
    """Number of scalars in a parameter pytree (pass `variables["params"]`)."""
    return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))
