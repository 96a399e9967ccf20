"""Closed-form distances between Gaussians given as mean and covariance factor.

A Gaussian here is N(mean, F Fᵀ) with a factor F of shape (d, k); the synthetic
experiments' data and generators are such Gaussians with F = σ w (Fedus et al. 2018,
Secs. 4.1-4.2), and they are rank-deficient (k < d), which is why everything works from
the factors rather than from square roots of covariances.

- Squared parameter error (Fedus et al. Sec. 4.3): ‖μ_1 - μ_2‖² + ‖Σ_1 - Σ_2‖_F².
- Squared Fréchet / 2-Wasserstein distance (Dowson & Landau 1982):
  W2² = ‖μ_1 - μ_2‖² + tr Σ_1 + tr Σ_2 - 2 tr (Σ_2^½ Σ_1 Σ_2^½)^½.
  With Σ_i = F_i F_iᵀ, the eigenvalues of Σ_2^½ Σ_1 Σ_2^½ are the squared singular values
  of F_2ᵀ F_1, so the trace term is the nuclear norm ‖F_2ᵀ F_1‖_*: a (k_2 x k_1) SVD,
  exact for singular covariances where eigendecompositions of Σ would need clipping.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

Array = jax.Array


def _check(mean1: Array, factor1: Array, mean2: Array, factor2: Array) -> None:
    chex.assert_rank([mean1, factor1, mean2, factor2], [1, 2, 1, 2])
    chex.assert_equal_shape([mean1, mean2])
    chex.assert_equal_shape_prefix([mean1, factor1, factor2], 1)


def squared_parameter_error(mean1: Array, factor1: Array, mean2: Array, factor2: Array) -> Array:
    """‖μ_1 - μ_2‖² + ‖F_1F_1ᵀ - F_2F_2ᵀ‖_F²."""
    _check(mean1, factor1, mean2, factor2)
    cov_diff = factor1 @ factor1.T - factor2 @ factor2.T
    return jnp.sum((mean1 - mean2) ** 2) + jnp.sum(cov_diff ** 2)


def frechet_distance_sq(mean1: Array, factor1: Array, mean2: Array, factor2: Array) -> Array:
    """W2² between N(μ_1, F_1F_1ᵀ) and N(μ_2, F_2F_2ᵀ); never negative."""
    _check(mean1, factor1, mean2, factor2)
    cross = jnp.sum(jnp.linalg.svd(factor2.T @ factor1, compute_uv=False))
    value = (jnp.sum((mean1 - mean2) ** 2) + jnp.sum(factor1 ** 2) + jnp.sum(factor2 ** 2)
             - 2.0 * cross)
    # Exact arithmetic gives >= 0 (the trace term is a fidelity bound); rounding may not.
    return jnp.maximum(value, 0.0)
