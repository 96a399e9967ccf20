"""KID against explicit loops over pairs, and against torch-fidelity's and clean-fid's KID."""

import numpy as np
import pytest

from gan_dynamics.metrics import kid
from tests import torch_references


def _features(n, d, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, d))) * scale * rng.uniform(0.2, 1.0, size=d)


def _mmd2_by_loops(x, y):
    """The unbiased MMD² with k(a, b) = (a·b/d + 1)³, one pair at a time."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (sum(ai * bi for ai, bi in zip(a, b)) / d + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / m**2


@pytest.mark.parametrize("method", ["subsets", "blocks"])
def test_kid_equals_pair_loops(method):
    real, fake = _features(9, 3, 0), _features(8, 3, 1, scale=1.5)
    got = kid.kernel_inception_distance(real, fake, num_subsets=4, subset_size=5, seed=3,
                                        method=method, chunk_size=3)
    fake_idx, real_idx = kid.subset_indices(8, 9, 4, 5, seed=3)
    want = [_mmd2_by_loops(fake[a], real[b]) for a, b in zip(fake_idx, real_idx)]
    assert (got.num_subsets, got.subset_size) == (4, 5)
    np.testing.assert_allclose(got.mean, np.mean(want), rtol=1e-12)
    np.testing.assert_allclose(got.std, np.std(want), rtol=1e-10)


def test_blocks_equal_subsets_and_auto_picks_the_cheaper():
    real, fake = _features(300, 16, 2), _features(260, 16, 3, scale=1.2)
    by = {m: kid.kernel_inception_distance(real, fake, num_subsets=30, subset_size=100,
                                           method=m, chunk_size=64)
          for m in ("subsets", "blocks", "auto")}
    np.testing.assert_allclose(by["blocks"].mean, by["subsets"].mean, rtol=1e-11)
    np.testing.assert_allclose(by["blocks"].std, by["subsets"].std, rtol=1e-9)
    assert by["auto"] == by["blocks"]  # (560)²(1 + 30/16) < 4·30·100²


def test_subset_size_is_capped_by_the_smaller_set_and_reported():
    result = kid.kernel_inception_distance(_features(40, 4, 0), _features(30, 4, 1))
    assert (result.num_subsets, result.subset_size) == (kid.DEFAULT_SUBSETS, 30)


def test_same_distribution_scores_near_zero_and_a_shift_scores_more():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = kid.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    shifted = kid.kernel_inception_distance(a, b + 0.5, num_subsets=20, subset_size=200)
    assert abs(same.mean) < 3 * same.std and shifted.mean > 10 * same.std


def test_bad_input_fails_clearly():
    with pytest.raises(ValueError, match="one d"):
        kid.kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        kid.kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="method"):
        kid.kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 3)), method="fast")


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_kid_equals_torch_fidelity(dtype, rtol):
    metric_kid = torch_references.torch_fidelity("metric_kid")
    import torch

    real, fake = _features(700, 64, 5).astype(dtype), _features(600, 64, 6, 1.1).astype(dtype)
    # torch-fidelity's defaults but for the subsets: 20 of 300; features_1 is generated.
    want = metric_kid.kid_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=20, kid_subset_size=300,
        rng_seed=7, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1, verbose=False)
    got = kid.kernel_inception_distance(real, fake, num_subsets=20, subset_size=300, seed=7)
    np.testing.assert_allclose(got.mean, want[metric_kid.KEY_METRIC_KID_MEAN], rtol=rtol)
    np.testing.assert_allclose(got.std, want[metric_kid.KEY_METRIC_KID_STD], rtol=10 * rtol)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_kid_equals_clean_fid(dtype, rtol):
    fid = torch_references.clean_fid("fid")
    real, fake = _features(500, 64, 7).astype(dtype), _features(400, 64, 8, 1.1).astype(dtype)
    np.random.seed(11)  # clean-fid draws from numpy's global generator: generated, then real
    want = fid.kernel_distance(real, fake, num_subsets=20, max_subset_size=1000)
    got = kid.kernel_inception_distance(real, fake, num_subsets=20, seed=11)
    assert got.subset_size == 400  # clean-fid also caps the subsets at the smaller set
    np.testing.assert_allclose(got.mean, want, rtol=rtol)
