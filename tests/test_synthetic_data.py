"""Synthetic manifold data and affine generators: closed-form moments, checked by sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics.data import synthetic as data
from gan_dynamics.models import synthetic as models


def _sample_moments(x):
    x = np.asarray(x)
    return x.mean(0), np.cov(x, rowvar=False, bias=True)


@pytest.mark.parametrize("latent_dim", [1, 3])
def test_samples_have_closed_form_mean_and_covariance(x64, latent_dim):
    key_params, key_sample = jax.random.split(jax.random.key(0))
    params = data.draw_affine_gaussian(key_params, dim=4, latent_dim=latent_dim,
                                       dtype=jnp.float64)
    sigma = 0.7
    n = 200_000
    x = data.sample(key_sample, params, sigma, n)
    mean, cov = data.moments(params, sigma)
    emp_mean, emp_cov = _sample_moments(x)
    # Monte Carlo standard errors are ~ scale / sqrt(n) ~ 2e-3; 5 sigma bounds.
    np.testing.assert_allclose(emp_mean, mean, atol=1e-2)
    np.testing.assert_allclose(emp_cov, cov, atol=1e-2)
    # The data lie on a latent_dim-dimensional affine subspace.
    assert np.linalg.matrix_rank(np.asarray(x - mean)[:50], tol=1e-8) == latent_dim


def test_generator_samples_match_its_gaussian(x64):
    key_init, key_z = jax.random.split(jax.random.key(1))
    params = models.init_generator(key_init, dim=5, latent_dim=3)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    sigma = 1.3
    x = models.generate(params, data.latents(key_z, 200_000, 3, sigma, jnp.float64))
    mean, cov = data.moments(params, sigma)
    emp_mean, emp_cov = _sample_moments(x)
    np.testing.assert_allclose(emp_mean, mean, atol=2e-2)
    np.testing.assert_allclose(emp_cov, cov, atol=2e-2)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_parameter_law_scales_with_dimension(x64):
    """E‖w‖² = direction_std² and E‖mu‖² = d mean_std², for any d."""
    keys = jax.random.split(jax.random.key(2), 4000)
    for dim in (2, 50):
        draws = jax.vmap(lambda k: data.draw_affine_gaussian(
            k, dim, 1, mean_std=0.5, direction_std=2.0, dtype=jnp.float64))(keys)
        assert abs(float(jnp.mean(jnp.sum(draws.w ** 2, axis=(1, 2)))) - 4.0) < 0.2
        assert abs(float(jnp.mean(jnp.sum(draws.mu ** 2, axis=1))) / (0.25 * dim) - 1) < 0.05


@pytest.mark.parametrize("latent_dim", [1, 3])
def test_parallel_line_is_parallel_and_disjoint(x64, latent_dim):
    key_data, key_line = jax.random.split(jax.random.key(3))
    target = data.draw_affine_gaussian(key_data, 6, 1, dtype=jnp.float64)
    line = data.parallel_line(key_line, target, offset=2.5, latent_dim=latent_dim)
    assert line.w.shape == (6, latent_dim)
    np.testing.assert_allclose(line.w[:, :1], target.w)
    np.testing.assert_allclose(line.w[:, 1:], 0.0)
    shift = line.mu - target.mu
    # Orthogonal to the data direction, at the requested distance: the lines never meet.
    np.testing.assert_allclose(float(jnp.linalg.norm(shift)), 2.5, rtol=1e-12)
    np.testing.assert_allclose(float(shift @ target.w[:, 0]), 0.0, atol=1e-12)


def test_parallel_line_needs_room():
    target = data.draw_affine_gaussian(jax.random.key(0), 1, 1)
    with pytest.raises(ValueError, match="dim > 1"):
        data.parallel_line(jax.random.key(1), target, offset=1.0)


def test_discriminator_gives_one_logit_per_example():
    disc = models.MLPDiscriminator(hidden=16)
    x = jnp.ones((7, 4))
    params = disc.init(jax.random.key(0), x)
    assert params["params"]["hidden"]["kernel"].shape == (4, 16)
    assert disc.apply(params, x).shape == (7,)
