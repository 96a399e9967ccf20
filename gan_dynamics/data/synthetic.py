"""Gaussians supported on an affine subspace: the data of Fedus et al. 2018, Sec. 4.

Experiment I (Sec. 4.1, Eq. 11): in R^d, draw μ_r and w_r once per seed; the data are
`x = μ_r + w_r z` with z ~ N(0, σ²), a Gaussian on a 1-D line, N(μ_r, σ² w_r w_rᵀ).
Experiment II (Sec. 4.2) keeps these data and gives the generator k = 3 latent
directions, `x = μ_g + W_g z` with z ~ N(0, σ² I_k), i.e. N(μ_g, σ² W_g W_gᵀ).

Both are an `AffineGaussian(mu, w)` with w of shape (d, k). The paper does not publish the
law of μ_r and w_r; we draw μ ~ N(0, mean_std² I_d) and each column of w from
N(0, direction_std² I_d / d), so that E‖w_j‖² = direction_std² whatever d is.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

Array = jax.Array


class AffineGaussian(NamedTuple):
    """x = mu + w z with z ~ N(0, σ² I_k): mean mu (d,), directions w (d, k)."""

    mu: Array
    w: Array


def draw_affine_gaussian(
    key: Array,
    dim: int,
    latent_dim: int = 1,
    mean_std: float = 1.0,
    direction_std: float = 1.0,
    dtype=jnp.float32,
) -> AffineGaussian:
    """Random parameters: mu ~ N(0, mean_std² I), w_ij ~ N(0, direction_std² / dim)."""
    if dim < 1 or latent_dim < 1:
        raise ValueError(f"Need dim >= 1 and latent_dim >= 1, got dim={dim}, "
                         f"latent_dim={latent_dim}.")
    key_mu, key_w = jax.random.split(key)
    mu = mean_std * jax.random.normal(key_mu, (dim,), dtype)
    w = direction_std / jnp.sqrt(dim) * jax.random.normal(key_w, (dim, latent_dim), dtype)
    return AffineGaussian(mu, w)


def latents(key: Array, n: int, latent_dim: int, sigma: float | Array, dtype=jnp.float32) -> Array:
    """n latent codes z ~ N(0, σ² I_k), shape (n, k)."""
    return sigma * jax.random.normal(key, (n, latent_dim), dtype)


def affine_points(params: AffineGaussian, z: Array) -> Array:
    """x = mu + w z for each row z of `z` (n, k) -> (n, d)."""
    chex.assert_rank(z, 2)
    chex.assert_equal_shape_suffix([z, params.w[0]], 1)
    return params.mu + z @ params.w.T


def sample(key: Array, params: AffineGaussian, sigma: float | Array, n: int) -> Array:
    """n points of N(mu, σ² w wᵀ), shape (n, d)."""
    return affine_points(params, latents(key, n, params.w.shape[1], sigma, params.mu.dtype))


def moments(params: AffineGaussian, sigma: float | Array) -> tuple[Array, Array]:
    """Closed-form mean (d,) and covariance σ² w wᵀ (d, d)."""
    factor = sigma * params.w
    return params.mu, factor @ factor.T


def parallel_line(
    key: Array, data: AffineGaussian, offset: float, latent_dim: int = 1
) -> AffineGaussian:
    """The "parallel lines" start of Fedus et al. Fig. 1 (Arjovsky et al. 2017's example).

    The line through mu_data + offset·u (u a random unit vector orthogonal to the data
    line's directions) with the data's directions: parallel to, and at distance |offset|
    from, the data line, so the two supports are disjoint. With latent_dim > 1 (Exp II)
    the extra generator directions start at zero, so the generator's distribution is
    exactly that shifted line.
    """
    chex.assert_rank(data.w, 2)
    dim, data_k = data.w.shape
    if dim <= data_k:
        raise ValueError(f"A parallel, disjoint line needs dim > {data_k}, got dim={dim}.")
    if latent_dim < data_k:
        raise ValueError(f"latent_dim={latent_dim} cannot hold the data's {data_k} directions.")
    q, _ = jnp.linalg.qr(data.w)
    u = jax.random.normal(key, (dim,), data.mu.dtype)
    u = u - q @ (q.T @ u)
    u = u / jnp.linalg.norm(u)
    extra = jnp.zeros((dim, latent_dim - data_k), data.w.dtype)
    return AffineGaussian(data.mu + offset * u, jnp.concatenate([data.w, extra], axis=1))
