"""Every score from one pair of feature arrays equals the score computed on its own."""

import warnings

import numpy as np
import pytest

from gan_dynamics.metrics import feature_scores, fid_infinity, kid, manifold, scores

OPTIONS = feature_scores.ScoreOptions(kid_subsets=10, kid_subset_size=50, chunk_size=40)


def _features(seed, n=120, d=6, shift=0.0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_every_score_equals_its_own_function():
    real, fake = _features(0), _features(1, shift=0.3)
    got = feature_scores.feature_scores(real, fake, feature_scores.SCORES, OPTIONS)
    k = kid.kernel_inception_distance(real, fake, num_subsets=10, subset_size=50)
    m = manifold.manifold_scores(real, fake)
    inf = fid_infinity.fid_infinity(fake, real=real)
    want = {"num_features": 120,
            "fid": scores.frechet_distance(*scores.gaussian_statistics(fake),
                                           *scores.gaussian_statistics(real)),
            "fid_inf": inf.value, "fid_inf_slope": inf.slope,
            "kid": k.mean, "kid_std": k.std, "kid_subsets": 10, "kid_subset_size": 50,
            "precision": m.precision, "recall": m.recall, "density": m.density,
            "coverage": m.coverage}
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-10), name


def test_only_the_named_scores():
    got = feature_scores.feature_scores(_features(0), _features(1), ["recall", "fid"], OPTIONS)
    assert set(got) == {"num_features", "recall", "fid"}


def test_different_sizes_are_cut_to_the_smaller_with_a_warning():
    real, fake = _features(0, n=150), _features(1, n=120)
    with pytest.warns(UserWarning, match="150 real and 120 generated"):
        got = feature_scores.feature_scores(real, fake, ["fid", "precision"], OPTIONS)
    assert got["num_features"] == 120
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = feature_scores.feature_scores(real[:120], fake, ["fid", "precision"], OPTIONS)
    assert got == same


def test_reference_statistics_replace_the_real_features_for_fid():
    real, fake = _features(0), _features(1)
    reference = (np.zeros(6), np.eye(6))
    got = feature_scores.feature_scores(real, fake, ["fid", "fid_inf"], OPTIONS,
                                        reference_statistics=reference)
    assert got["fid"] == pytest.approx(scores.frechet_distance(
        *scores.gaussian_statistics(fake), *reference), rel=1e-12)
    assert got["fid_inf"] == pytest.approx(
        fid_infinity.fid_infinity(fake, reference_statistics=reference).value, rel=1e-12)


def test_unknown_score_fails_with_the_known_ones():
    with pytest.raises(ValueError, match="coverage"):
        feature_scores.feature_scores(_features(0), _features(1), ["is"])
