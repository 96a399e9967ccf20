"""Inception Score, Gaussian statistics and Fréchet distance against hand computations."""

import numpy as np
import pytest
import scipy.linalg

from gan_dynamics.data.images import ImageSource
from gan_dynamics.metrics import scores


def test_inception_score_equals_hand_computation():
    # Two splits of two samples over three classes.
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8],
                              [0.5, 0.5, 0.0 + 1e-300], [0.2, 0.3, 0.5]]))
    expected = []
    for part in (logits[:2], logits[2:]):
        p = np.exp(part) / np.exp(part).sum(1, keepdims=True)
        marginal = p.mean(0)
        kl = [sum(pi * np.log(pi / mj) for pi, mj in zip(row, marginal) if pi > 0) for row in p]
        expected.append(np.exp(np.mean(kl)))
    mean, std = scores.inception_score(logits, splits=2)
    np.testing.assert_allclose(mean, np.mean(expected), rtol=1e-12)
    np.testing.assert_allclose(std, np.std(expected), rtol=1e-9)


def test_inception_score_bounds():
    # Confident and uniformly spread over k classes: IS = k. Identical rows: IS = 1.
    k = 5
    logits = 50.0 * np.eye(k)[np.arange(40) % k]
    mean, std = scores.inception_score(logits, splits=4)
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    mean, _ = scores.inception_score(np.tile(np.arange(k, dtype=float), (40, 1)), splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12)


def test_inception_score_rejects_bad_splits():
    with pytest.raises(ValueError, match="splits"):
        scores.inception_score(np.zeros((3, 4)), splits=4)


def test_gaussian_statistics_streaming_equals_numpy():
    rng = np.random.default_rng(0)
    x = 1e4 + rng.normal(size=(101, 6)) @ rng.normal(size=(6, 6))  # large mean: cancellation
    sums = scores.init_moments(6)
    for start in range(0, 101, 17):
        sums = scores.accumulate_moments(sums, x[start:start + 17].astype(np.float32))
    mu, sigma = scores.finalize_moments(sums)
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu, x32.mean(0), rtol=1e-13)
    np.testing.assert_allclose(sigma, np.cov(x32, rowvar=False), rtol=1e-8, atol=1e-10)
    mu1, sigma1 = scores.gaussian_statistics(x32)
    np.testing.assert_allclose(sigma1, np.cov(x32, rowvar=False), rtol=1e-8, atol=1e-10)


def test_frechet_is_zero_for_identical_statistics():
    rng = np.random.default_rng(1)
    mu, sigma = scores.gaussian_statistics(rng.normal(size=(50, 8)))
    assert scores.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-10)


def test_frechet_equals_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    v1, v2 = rng.uniform(0.1, 3, size=7), rng.uniform(0.1, 3, size=7)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = scores.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def _scipy_frechet(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                 - 2 * np.real(np.trace(covmean)))


def test_frechet_equals_scipy_sqrtm_on_full_rank():
    rng = np.random.default_rng(3)
    mu1, s1 = scores.gaussian_statistics(rng.normal(size=(200, 10)))
    mu2, s2 = scores.gaussian_statistics(rng.normal(size=(200, 10)) @ rng.normal(size=(10, 10)))
    np.testing.assert_allclose(scores.frechet_distance(mu1, s1, mu2, s2),
                               _scipy_frechet(mu1, s1, mu2, s2), rtol=1e-10)


def test_frechet_rank_deficient_equals_factor_formula():
    """Fewer samples than dimensions: Σ_i = F_iF_iᵀ of rank < d; the exact trace term is
    the nuclear norm of F_2ᵀF_1 (singular values of a small matrix, no square roots of Σ)."""
    rng = np.random.default_rng(4)
    d, n1, n2 = 30, 8, 12
    x1, x2 = rng.normal(size=(n1, d)), rng.normal(size=(n2, d)) * 2 + 1
    mu1, s1 = scores.gaussian_statistics(x1)
    mu2, s2 = scores.gaussian_statistics(x2)
    f1 = (x1 - x1.mean(0)).T / np.sqrt(n1 - 1)
    f2 = (x2 - x2.mean(0)).T / np.sqrt(n2 - 1)
    exact = (np.sum((mu1 - mu2) ** 2) + np.sum(f1 ** 2) + np.sum(f2 ** 2)
             - 2 * np.sum(np.linalg.svd(f2.T @ f1, compute_uv=False)))
    np.testing.assert_allclose(scores.frechet_distance(mu1, s1, mu2, s2), exact, rtol=1e-10)
    # Same Gaussian with a singular covariance: 0, not a complex or NaN value.
    assert scores.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def _toy_source(n=23, size=4):
    images = np.random.default_rng(5).uniform(-1, 1, size=(n, size, size, 1)).astype(np.float32)
    return ImageSource("toy", n, (size, size, 1), lambda idx: images[idx]), images


def test_reference_statistics_computed_once_then_read_from_cache(tmp_path):
    source, images = _toy_source()
    calls = []

    def features_fn(x):
        calls.append(x.shape)
        return x.reshape(len(x), -1)[:, :5] * 3.0

    mu, sigma = scores.reference_statistics(source, "train", "toy_feats", features_fn,
                                            batch_size=10, cache_dir=str(tmp_path))
    assert calls == [(10, 4, 4, 1)] * 3  # padded last batch: one shape
    expected = images.reshape(23, -1)[:, :5].astype(np.float64) * 3.0
    np.testing.assert_allclose(mu, expected.mean(0), rtol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(expected, rowvar=False), rtol=1e-5, atol=1e-7)
    path = scores.reference_statistics_path("toy", "train", 4, "toy_feats", str(tmp_path))
    assert path.startswith(str(tmp_path)) and (tmp_path / "reference_statistics").is_dir()
    mu2, sigma2 = scores.reference_statistics(source, "train", "toy_feats", features_fn,
                                              batch_size=10, cache_dir=str(tmp_path))
    assert len(calls) == 3
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_DYNAMICS_CACHE", str(tmp_path))
    assert scores.default_cache_dir() == str(tmp_path)
