"""Precision, recall, density and coverage: hand-checked cases, chunking, and the references
(torch-fidelity's precision/recall, the prdc package's four scores) on the same features."""

import numpy as np
import pytest

from gan_dynamics.metrics import manifold
from tests import torch_references


def test_scores_on_a_line_checked_by_hand():
    # Real points 0, 1, 2, 3 on a line: with k = 1 every radius is 1. Generated 0.5, 1.5,
    # 10, 11, whose radii are 1 too: 0.5 and 1.5 lie in two real balls each, 10 and 11 in
    # none.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [1.5], [10.0], [11.0]])
    got = manifold.manifold_scores(real, fake, precision_recall_k=1, density_coverage_k=1,
                                   chunk_size=3)
    assert got.precision == 0.5  # 0.5 and 1.5 are inside the real manifold
    assert got.recall == 0.75  # real 0, 1, 2 are within 1 of 0.5 or 1.5; 3 is 1.5 away
    assert got.density == 1.0  # 0.5 ∈ balls of 0, 1; 1.5 ∈ balls of 1, 2: 4 / (k · 4)
    assert got.coverage == 0.75  # the balls of 0, 1, 2 hold a generated point; 3's does not


def test_ties_follow_the_papers():
    # Every distance is 0 or 1 (two points each, one unit apart): with k = 1 the radius is
    # 1, and a generated point at distance exactly 1 is inside for precision/recall (≤),
    # outside for density/coverage (<).
    real = np.array([[0.0], [1.0]])
    fake = np.array([[2.0], [3.0]])
    got = manifold.manifold_scores(real, fake, precision_recall_k=1, density_coverage_k=1)
    assert got.precision == 0.5 and got.recall == 0.5  # 2 is 1 from real 1, and vice versa
    assert got.density == 0.0 and got.coverage == 0.0


def test_radii_equal_sorted_distances_for_every_chunk_size():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 5))
    dist2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    want = np.sort(dist2, axis=1)[:, [1, 3, 5]]
    for chunk in (1, 6, 10, 37, 100):
        np.testing.assert_allclose(manifold.squared_knn_radii(x, (1, 3, 5), chunk), want,
                                   rtol=1e-12, atol=1e-12)


def test_chunk_size_and_float32_products_do_not_change_the_scores():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(120, 6)), 1.2 * rng.normal(size=(90, 6)) + 0.3
    results = {manifold.manifold_scores(real, fake, chunk_size=c, product_dtype=p)
               for c in (7, 32, 500) for p in manifold.PRODUCT_DTYPES}
    assert len(results) == 1  # no pair is within float32 rounding of a radius


def test_bad_input_fails_clearly():
    with pytest.raises(ValueError, match="more than k = 5"):
        manifold.manifold_scores(np.zeros((5, 2)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="one d"):
        manifold.manifold_scores(np.zeros((9, 2)), np.zeros((9, 3)))
    with pytest.raises(ValueError, match="product_dtype"):
        manifold.manifold_scores(np.zeros((9, 2)), np.zeros((9, 2)), product_dtype="float16")


def _features(n, d, seed, scale=1.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, d))) * scale + shift


@pytest.mark.parametrize("product_dtype", manifold.PRODUCT_DTYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_precision_recall_equal_torch_fidelity(dtype, product_dtype):
    metric_prc = torch_references.torch_fidelity("metric_prc")
    import torch

    real = _features(800, 64, 0).astype(dtype)
    fake = _features(700, 64, 1, scale=1.05, shift=0.02).astype(dtype)
    # features_1 is generated; the full (not save_cpu_ram) computation, k = 3.
    want = metric_prc.prc_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=3,
        prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    got = manifold.manifold_scores(real, fake, chunk_size=256, product_dtype=product_dtype)
    assert 0.05 < got.precision < 0.95 and 0.05 < got.recall < 0.95  # not a trivial case
    # torch-fidelity returns float32 means of the same counts: equal to float32 rounding.
    assert got.precision == pytest.approx(want["precision"], abs=1e-7)
    assert got.recall == pytest.approx(want["recall"], abs=1e-7)


@pytest.mark.parametrize("k", [3, 5])
def test_four_scores_equal_prdc(k, capsys):
    prdc = torch_references.prdc()
    real = _features(600, 32, 2)
    fake = _features(650, 32, 3, scale=1.1, shift=0.05)
    want = prdc.compute_prdc(real, fake, nearest_k=k)
    got = manifold.manifold_scores(real, fake, precision_recall_k=k, density_coverage_k=k,
                                   chunk_size=200)
    # prdc compares with < throughout, torch-fidelity and we with ≤ for precision and
    # recall: the same on features without ties, as these are.
    assert 0.05 < got.density < 0.95 and 0.05 < got.coverage < 0.95
    assert (got.precision, got.recall, got.density, got.coverage) == pytest.approx(
        (want["precision"], want["recall"], want["density"], want["coverage"]), abs=1e-12)
