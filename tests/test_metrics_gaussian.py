"""Closed-form Gaussian metrics against direct formulas (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gan_dynamics.metrics import gaussian


def _random(key, d, k):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (d,), jnp.float64), jax.random.normal(k2, (d, k), jnp.float64)


def _scipy_w2(m1, c1, m2, c2):
    root2 = scipy.linalg.sqrtm(c2)
    cross = scipy.linalg.sqrtm(root2 @ c1 @ root2)
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.real(np.trace(cross)))


@pytest.mark.parametrize("d,k1,k2", [(4, 4, 4), (5, 7, 5), (3, 3, 6)])
def test_frechet_matches_scipy_on_full_rank(x64, d, k1, k2):
    key1, key2 = jax.random.split(jax.random.key(d + k1 + k2))
    m1, f1 = _random(key1, d, k1)
    m2, f2 = _random(key2, d, k2)
    expected = _scipy_w2(*(np.asarray(a) for a in (m1, f1 @ f1.T, m2, f2 @ f2.T)))
    got = float(gaussian.frechet_distance_sq(m1, f1, m2, f2))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_frechet_between_lines_has_closed_form(x64):
    """Two 1-D lines: W2² = ‖Δμ‖² + ‖a‖² + ‖b‖² - 2|a·b| (optimal coupling z ↦ ±z)."""
    key1, key2 = jax.random.split(jax.random.key(7))
    m1, a = _random(key1, 6, 1)
    m2, b = _random(key2, 6, 1)
    for sign in (1.0, -1.0):
        expected = (jnp.sum((m1 - m2) ** 2) + jnp.sum(a ** 2) + jnp.sum(b ** 2)
                    - 2 * jnp.abs(jnp.sum(a * sign * b)))
        got = gaussian.frechet_distance_sq(m1, a, m2, sign * b)
        np.testing.assert_allclose(float(got), float(expected), rtol=1e-12)


def test_frechet_is_zero_for_the_same_line_and_shift_for_parallel_lines(x64):
    m, a = _random(jax.random.key(3), 5, 1)
    assert float(gaussian.frechet_distance_sq(m, a, m, -a)) == pytest.approx(0.0, abs=1e-12)
    shift = jnp.arange(5.0)
    np.testing.assert_allclose(float(gaussian.frechet_distance_sq(m + shift, a, m, a)),
                               float(shift @ shift), rtol=1e-12)
    # An overcomplete factor that spans the same covariance is the same Gaussian.
    padded = jnp.concatenate([a, jnp.zeros((5, 2))], axis=1)
    assert float(gaussian.frechet_distance_sq(m, padded, m, a)) == pytest.approx(0.0, abs=1e-12)


def test_squared_parameter_error_is_the_direct_formula(x64):
    key1, key2 = jax.random.split(jax.random.key(11))
    m1, f1 = _random(key1, 4, 3)
    m2, f2 = _random(key2, 4, 1)
    c1, c2 = np.asarray(f1 @ f1.T), np.asarray(f2 @ f2.T)
    expected = np.sum((np.asarray(m1) - np.asarray(m2)) ** 2) + np.linalg.norm(c1 - c2, "fro") ** 2
    np.testing.assert_allclose(float(gaussian.squared_parameter_error(m1, f1, m2, f2)),
                               expected, rtol=1e-12)


def test_metrics_reject_mismatched_dimensions():
    with pytest.raises(AssertionError):
        gaussian.frechet_distance_sq(jnp.zeros(3), jnp.zeros((3, 1)), jnp.zeros(4),
                                     jnp.zeros((4, 1)))
