"""2-D mixtures of Gaussians of the mode-collapse literature, and their sample metrics.

- "ring": 8 Gaussians of standard deviation 0.02 evenly spaced on a circle of radius 2
  (Metz et al. 2017, *Unrolled GANs*, Sec. 3.1).
- "grid": 25 Gaussians of standard deviation 0.05 centred on the 5x5 grid
  {-4, -2, 0, 2, 4}² (Srivastava et al. 2017, *VEEGAN*, Sec. 5.1).

Each mode has equal weight. Sample quality (VEEGAN's protocol): a sample is *high
quality* when it lies within 3 standard deviations of the nearest mode's centre; a mode
is *covered* when at least `min_count` high-quality samples fall near it (VEEGAN draws
2500 samples; we keep their 3σ rule and make the count a parameter).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class GaussianMixture(NamedTuple):
    """Equal-weight isotropic Gaussians: centres (K, 2) and one standard deviation."""

    centers: Array
    std: float


def ring(num_modes: int = 8, radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
    """`num_modes` Gaussians evenly spaced on a circle (Metz et al.'s ring of 8)."""
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(jnp.asarray(centers, jnp.float32), float(std))


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """side x side Gaussians on a centred grid (VEEGAN's 5x5 grid at {-4, ..., 4}²)."""
    coords = spacing * (np.arange(side) - (side - 1) / 2)
    xx, yy = np.meshgrid(coords, coords, indexing="ij")
    centers = np.stack([xx.ravel(), yy.ravel()], axis=1)
    return GaussianMixture(jnp.asarray(centers, jnp.float32), float(std))


MIXTURES = {"ring": ring, "grid": grid}


def get_mixture(name: str) -> GaussianMixture:
    """The mixture called `name` ("ring" or "grid") with its published parameters."""
    if name not in MIXTURES:
        raise ValueError(f"Unknown Gaussian mixture {name!r}; choose one of {sorted(MIXTURES)}.")
    return MIXTURES[name]()


def sample(key: Array, mixture: GaussianMixture, n: int) -> Array:
    """n points (n, 2): a uniformly chosen mode plus isotropic Gaussian noise."""
    key_mode, key_noise = jax.random.split(key)
    modes = jax.random.randint(key_mode, (n,), 0, mixture.centers.shape[0])
    noise = jax.random.normal(key_noise, (n, 2), mixture.centers.dtype)
    return mixture.centers[modes] + mixture.std * noise


def nearest_modes(points: Array, mixture: GaussianMixture) -> tuple[Array, Array]:
    """(index of the nearest centre (n,), distance to it (n,))."""
    d2 = jnp.sum((points[:, None, :] - mixture.centers[None]) ** 2, axis=-1)
    index = jnp.argmin(d2, axis=1)
    return index, jnp.sqrt(jnp.take_along_axis(d2, index[:, None], axis=1)[:, 0])


def mode_metrics(points: Array, mixture: GaussianMixture, min_count: int = 20,
                 num_sigmas: float = 3.0) -> dict[str, Array]:
    """Modes covered and the fraction of high-quality samples (VEEGAN Sec. 5.1).

    Returns `modes` (number of modes with >= min_count samples within num_sigmas·std),
    `high_quality` (fraction of samples within num_sigmas·std of some mode) and
    `mode_kl` (KL divergence of the high-quality samples' mode histogram from uniform,
    0 when they spread evenly; +1 pseudo-count per mode keeps it finite).
    """
    index, dist = nearest_modes(points, mixture)
    good = dist <= num_sigmas * mixture.std
    k = mixture.centers.shape[0]
    counts = jnp.zeros((k,), jnp.float32).at[index].add(good.astype(jnp.float32))
    p = (counts + 1.0) / jnp.sum(counts + 1.0)
    return {
        "modes": jnp.sum(counts >= min_count).astype(jnp.float32),
        "high_quality": jnp.mean(good.astype(jnp.float32)),
        "mode_kl": jnp.sum(p * jnp.log(p * k)),
    }
