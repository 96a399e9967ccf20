"""Independent Wasserstein critic: sign, ordering of distances, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics.data import images
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import critic

OPTS = critic.CriticOptions(num_steps=150, batch_size=32, learning_rate=1e-3, width=8)


@pytest.fixture(scope="module")
def digits():
    source = images.open_dataset("sklearn_digits", split="all", image_size=8)
    x = source.read(np.random.default_rng(0).permutation(source.num_examples)[:800])
    return x[:400], x[400:]  # two disjoint real pools


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_real_data_scores_better_than_noise_and_a_shift(digits):
    real_a, real_b = digits
    key = jax.random.key(0)
    rng = np.random.default_rng(1)
    noise = rng.uniform(-1, 1, (400, 8, 8, 1)).astype(np.float32)
    scores = {}
    for name, fake in [("real", real_b),
                       ("shifted", np.clip(real_b + 0.5, -1, 1)),
                       ("noise", noise)]:
        # Train on half of each pool, evaluate on the other halves.
        scores[name] = critic.independent_critic_score(
            key, real_a[:200], fake[:200], real_a[200:], fake[200:], OPTS)
    # Held-out real data is near 0; a critic separates the others: -W is more negative the
    # farther the samples are from the data.
    assert abs(scores["real"]) < 0.3 * abs(scores["shifted"])
    assert scores["noise"] < scores["shifted"] < scores["real"]


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_training_is_deterministic_and_reduces_the_loss(digits):
    real_a, real_b = digits
    fake = jnp.asarray(real_b) * 0.2
    p1, losses = critic.train_critic(jax.random.key(3), jnp.asarray(real_a), fake, OPTS)
    p2, _ = critic.train_critic(jax.random.key(3), jnp.asarray(real_a), fake, OPTS)
    chex_equal = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), p1, p2)
    assert all(jax.tree.leaves(chex_equal))
    assert losses.shape == (OPTS.num_steps,)
    assert float(losses[-20:].mean()) < float(losses[:5].mean()) - 0.1
    # The score is E_fake D - E_real D of the trained critic.
    value = critic.negative_wasserstein(p1, jnp.asarray(real_a), fake, OPTS, batch_size=64)
    apply = lambda x: critic.Critic(OPTS.width).apply({"params": p1}, x)
    np.testing.assert_allclose(value, float(apply(fake).mean() - apply(jnp.asarray(real_a)).mean()),
                               rtol=1e-4, atol=1e-5)


def test_bad_options_and_pools_fail_early(digits):
    with pytest.raises(UserError, match="learning_rate > 0"):
        critic.CriticOptions(learning_rate=0.0)
    real = digits[0]
    with pytest.raises(UserError, match="at least 2 images"):
        critic.independent_critic_score(jax.random.key(0), real, real, real[:1], real, OPTS)
