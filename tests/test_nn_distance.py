"""Neural-net distance (metrics.nn_distance): closed form for a linear clipped critic,
larger between different distributions than between two samples of one."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_dynamics.metrics import nn_distance as nnd
from gan_dynamics.runners import image_nn_distance


def gaussian(key, n, mean):
    return jnp.asarray(mean) + jax.random.normal(key, (n, len(mean)))


def test_linear_clipped_critic_matches_the_closed_form():
    """sup_{|a|∞ <= c} aᵀ(μ_p - μ_q) = c ‖μ_p - μ_q‖₁ (bias cancels)."""
    mu_p, mu_q, c = [1.0, -0.5, 0.25], [0.0, 0.5, 0.0], 0.1
    config = nnd.NNDistanceConfig(measure="wgan", critic="linear", clip=c, steps=300,
                                  lr=1e-2, batch=512)
    p = gaussian(jax.random.key(0), 8000, mu_p)
    q = gaussian(jax.random.key(1), 8000, mu_q)
    out = jax.jit(lambda k: nnd.nn_distance(k, p, q, config))(jax.random.key(2))
    exact = c * np.sum(np.abs(np.subtract(mu_p, mu_q)))  # 0.175
    # Held-out error: c·sqrt(3·2/4000) ≈ 0.004 standard deviation.
    np.testing.assert_allclose(out["nn_distance"], exact, atol=0.012)


# The GAN measure tells apart two laws with equal mean and covariance; a clipped critic
# (WGAN measure) is nearly linear at small c and is given laws with different means.
@pytest.mark.parametrize("measure,clip,shift", [("gan", 0.0, 0.0), ("wgan", 0.1, 0.5)])
def test_different_distributions_are_farther_than_two_samples_of_one(measure, clip, shift):
    config = nnd.NNDistanceConfig(measure=measure, critic="mlp", hidden=(32,), clip=clip,
                                  steps=300, lr=3e-3)
    keys = jax.random.split(jax.random.key(0), 4)
    p = gaussian(keys[0], 2000, [0.0, 0.0])
    same = gaussian(keys[1], 2000, [0.0, 0.0])
    # Same mean and covariance, different law: a bimodal mixture along the first axis.
    signs = jnp.sign(jax.random.normal(keys[2], (2000, 1)))
    other = gaussian(keys[3], 2000, [0.0, 0.0]) * jnp.array([0.2, 1.0]) + signs * jnp.array(
        [0.98, 0.0]) + jnp.array([shift, 0.0])
    distance = jax.jit(lambda k, a, b: nnd.nn_distance(k, a, b, config)["nn_distance"])
    d_same = float(distance(jax.random.key(5), p, same))
    d_other = float(distance(jax.random.key(5), p, other))
    assert d_other > 3 * abs(d_same) and d_other > 0.02, (d_same, d_other)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_gan_measure_is_bounded_by_2_log_2():
    config = nnd.NNDistanceConfig(measure="gan", critic="mlp", hidden=(16,), steps=200,
                                  lr=1e-2)
    p = gaussian(jax.random.key(0), 1000, [0.0, 0.0])
    q = gaussian(jax.random.key(1), 1000, [20.0, 0.0])  # disjoint supports
    d = float(nnd.nn_distance(jax.random.key(2), p, q, config)["nn_distance"])
    assert 1.2 < d <= 2 * np.log(2) + 1e-6


def test_bad_configs_fail_early():
    with pytest.raises(ValueError, match="bounded"):
        nnd.check(nnd.NNDistanceConfig(measure="wgan", clip=0.0))
    with pytest.raises(ValueError, match="measure"):
        nnd.check(nnd.NNDistanceConfig(measure="js"))
    config = ml_collections.ConfigDict({"nn_distance": {"bogus": 1}})
    with pytest.raises(ValueError, match="bogus"):
        image_nn_distance.make_eval_hooks(config, None)


def test_eval_hook_reports_the_distance_of_generated_to_real(monkeypatch):
    """The hook compares real images with `generate`'s samples; a perfect generator
    (it returns real images) is nearer than a constant one."""
    images = np.asarray(jax.random.uniform(jax.random.key(0), (400, 4, 4, 1), minval=-1,
                                           maxval=1))
    monkeypatch.setattr(image_nn_distance, "_real_images", lambda config, exp, split, n, seed: images[:n])

    class Exp:
        z_dim = 3
        image_shape = (4, 4, 1)

    config = ml_collections.ConfigDict({"data": {"name": "x"}, "nn_distance": {
        "num_samples": 200, "hidden": (16,), "steps": 150}})
    (hook,) = image_nn_distance.make_eval_hooks(config, Exp())
    good = hook(0, None, lambda z: images[200:200 + z.shape[0]])
    bad = hook(0, None, lambda z: jnp.zeros((z.shape[0], 4, 4, 1)))
    assert set(good) == {"nn_distance", "nn_distance_train"}
    assert bad["nn_distance"] > good["nn_distance"] + 0.3, (good, bad)
    assert image_nn_distance.make_eval_hooks(ml_collections.ConfigDict({"data": {}}), Exp()) == []
