"""FID∞ removes FID's 1/N bias on Gaussian features whose FID is known in closed form."""

import numpy as np
import pytest

from gan_dynamics.metrics import fid_infinity, scores

D = 8
DRAWS = 40  # independent sample sets: their mean shows the bias above the draws' noise


def _generator_covariance():
    a = np.random.default_rng(123).normal(size=(D, D)) / np.sqrt(D)
    return a @ a.T + 0.5 * np.eye(D)


@pytest.mark.parametrize("reference", ["statistics", "features"])
def test_intercept_removes_the_bias_that_raw_fid_has(reference):
    # Generated features ~ N(0, Σ), real ~ N(0, I): the true FID is the Fréchet distance
    # of the two Gaussians. With the real statistics known exactly only the samples'
    # covariance error biases FID_N; with real features at the same N both sets' do.
    sigma = _generator_covariance()
    true = scores.frechet_distance(np.zeros(D), sigma, np.zeros(D), np.eye(D))
    chol = np.linalg.cholesky(sigma)
    values, smallest_n = [], []
    for seed in range(DRAWS):
        rng = np.random.default_rng(seed)
        fake = rng.normal(size=(2000, D)) @ chol.T
        if reference == "statistics":
            ref = {"reference_statistics": (np.zeros(D), np.eye(D))}
        else:
            ref = {"real": rng.normal(size=(2000, D))}
        result = fid_infinity.fid_infinity(fake, **ref, seed=seed)
        assert result.sizes == fid_infinity.default_sizes(2000) and result.sizes[0] == 200
        values.append(result.value)
        smallest_n.append(result.fids[0])
    noise = np.std(values) / np.sqrt(DRAWS)
    # Measured: the intercepts' mean is within 0.01 of the truth (noise 0.008), FID_200's
    # mean is 0.15 (statistics) and 0.27 (features) above it.
    assert abs(np.mean(values) - true) < max(4 * noise, 0.03)
    assert np.mean(smallest_n) - true > 0.1


def test_extrapolate_recovers_a_line_exactly():
    sizes = np.array([100, 250, 400, 1000])
    intercept, slope = fid_infinity.extrapolate(sizes, 3.0 + 50.0 / sizes)
    assert intercept == pytest.approx(3.0, rel=1e-12) and slope == pytest.approx(50.0, rel=1e-10)


def test_values_are_fids_of_nested_random_subsets():
    rng = np.random.default_rng(0)
    fake, real = rng.normal(size=(300, 4)), rng.normal(size=(250, 4)) + 0.2
    result = fid_infinity.fid_infinity(fake, real=real, sizes=(50, 120, 250), seed=5)
    perm = np.random.default_rng(5)
    fake_order, real_order = perm.permutation(300), perm.permutation(250)
    for n, got in zip(result.sizes, result.fids):
        want = scores.frechet_distance(*scores.gaussian_statistics(fake[fake_order[:n]]),
                                       *scores.gaussian_statistics(real[real_order[:n]]))
        assert got == pytest.approx(want, rel=1e-10)


def test_bad_input_fails_clearly():
    fake = np.zeros((30, 2))
    with pytest.raises(ValueError, match="exactly one"):
        fid_infinity.fid_infinity(fake)
    with pytest.raises(ValueError, match="between 2 and 20"):
        fid_infinity.fid_infinity(fake, real=np.zeros((20, 2)), sizes=(10, 30))
    with pytest.raises(ValueError, match="two or more distinct"):
        fid_infinity.extrapolate([10, 10], [1.0, 2.0])
