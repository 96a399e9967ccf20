"""Gradient penalties against hand computations on critics with closed-form input gradients.

Linear critic D(x) = <w, x> + b: ∇D = w everywhere. One-hidden-layer ReLU critic
D(x) = v · relu(W x + c) + b: ∇D(x) = Wᵀ (v ⊙ 1[W x + c > 0]), computed in numpy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics import penalties


def linear_critic(w, b=0.3):
    return lambda x: jnp.sum(x * w, axis=tuple(range(1, x.ndim))) + b


def relu_net(params, x):
    w, c, v, b = params
    return jax.nn.relu(x @ w.T + c) @ v + b


def relu_net_input_grads(params, x):
    w, c, v = (np.asarray(a) for a in params[:3])
    active = (np.asarray(x) @ w.T + c) > 0
    return (active * v) @ w  # (N, d)


def relu_params(key, d=3, h=5, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        jax.random.normal(k1, (h, d), dtype),
        jax.random.normal(k2, (h,), dtype),
        jax.random.normal(k3, (h,), dtype),
        jnp.asarray(0.1, dtype),
    )


def evaluate(pen, critic, real, fake, key):
    """pen.apply under one jit (one compilation instead of many eager op dispatches)."""
    return jax.jit(lambda r, f: pen.apply(critic, r, f, key))(real, fake)


SHAPES = [(6, 4), (3, 2, 2, 3)]  # vectors (N, d) and images (N, H, W, C)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["wgan_gp", "gan_gp", "dragan"])
def test_gradient_norm_penalty_of_linear_critic(x64, shape, name):
    """‖∇D‖ = ‖w‖ > 1 at every point; ‖w‖ < 1 is the next test's case."""
    key = jax.random.key(0)
    w = 1.7 * jax.random.normal(key, shape[1:], jnp.float64)
    w_norm = float(jnp.linalg.norm(w))
    real = jax.random.normal(jax.random.key(1), shape, jnp.float64)
    fake = jax.random.normal(jax.random.key(2), shape, jnp.float64)
    for one_sided in (False, True):
        pen = penalties.make_penalty(name, weight=7.0, one_sided=one_sided, norm_eps=0.0)
        value, diag = evaluate(pen, linear_critic(w), real, fake, jax.random.key(3))
        excess = max(w_norm - 1.0, 0.0) if one_sided else w_norm - 1.0
        np.testing.assert_allclose(value, 7.0 * excess**2, rtol=1e-12)
        np.testing.assert_allclose(diag["penalty_grad_norm"], w_norm, rtol=1e-12)


def test_one_sided_is_zero_inside_unit_ball_and_two_sided_is_not(x64):
    w = jnp.array([0.3, -0.4])  # ‖w‖ = 0.5
    real, fake = jnp.ones((4, 2)), jnp.zeros((4, 2))
    key = jax.random.key(0)
    two_sided = penalties.make_penalty("wgan_gp", norm_eps=0.0)
    one_sided = penalties.make_penalty("wgan_gp", norm_eps=0.0, one_sided=True)
    two = evaluate(two_sided, linear_critic(w), real, fake, key)
    one = evaluate(one_sided, linear_critic(w), real, fake, key)
    np.testing.assert_allclose(two[0], 10.0 * 0.25, rtol=1e-12)
    assert float(one[0]) == 0.0


def test_interpolates_one_epsilon_per_example_in_unit_interval(x64):
    real = jax.random.normal(jax.random.key(0), (64, 2, 3, 2), jnp.float64)
    fake = jax.random.normal(jax.random.key(1), (64, 2, 3, 2), jnp.float64)
    x_hat = penalties.interpolates(jax.random.key(2), real, fake)
    ratio = np.asarray((x_hat - fake) / (real - fake)).reshape(64, -1)
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(ratio.shape[1], 1), atol=1e-9)
    eps = ratio[:, 0]
    assert (eps >= 0).all() and (eps <= 1).all()
    assert eps.std() > 0.15  # spread over [0, 1], not one shared value


def test_interpolation_penalty_on_relu_net_matches_numpy(x64):
    params = relu_params(jax.random.key(0))
    real = jax.random.normal(jax.random.key(1), (16, 3), jnp.float64)
    fake = 2.0 + jax.random.normal(jax.random.key(2), (16, 3), jnp.float64)
    key = jax.random.key(3)
    critic = lambda x: relu_net(params, x)  # noqa: E731
    for one_sided in (False, True):
        pen = penalties.make_penalty("wgan_gp", one_sided=one_sided, norm_eps=1e-10)
        value, _ = evaluate(pen, critic, real, fake, key)
        x_hat = penalties.interpolates(key, real, fake)
        norms = np.sqrt((relu_net_input_grads(params, x_hat) ** 2).sum(1) + 1e-10)
        excess = np.maximum(norms - 1, 0) if one_sided else norms - 1
        np.testing.assert_allclose(value, 10.0 * np.mean(excess**2), rtol=1e-12)


@pytest.mark.parametrize("name,on", [("r1", "real"), ("r2", "fake")])
def test_r1_r2_on_relu_net_match_numpy(x64, name, on):
    params = relu_params(jax.random.key(0))
    real = jax.random.normal(jax.random.key(1), (16, 3), jnp.float64)
    fake = 2.0 + jax.random.normal(jax.random.key(2), (16, 3), jnp.float64)
    # the other batch is poisoned: the penalty must not look at it
    real_in, fake_in = (real, jnp.full_like(fake, jnp.nan)) if on == "real" else (
        jnp.full_like(real, jnp.nan), fake)
    pen = penalties.make_penalty(name, weight=3.0)
    assert not pen.needs_key
    value, diag = evaluate(pen, lambda x: relu_net(params, x), real_in, fake_in, None)
    points = real if on == "real" else fake
    sq = (relu_net_input_grads(params, points) ** 2).sum(1)
    np.testing.assert_allclose(value, 3.0 / 2 * sq.mean(), rtol=1e-12)
    np.testing.assert_allclose(diag["penalty_grad_norm"], np.sqrt(sq).mean(), rtol=1e-12)


def test_r1_on_images_with_linear_critic(x64):
    w = jax.random.normal(jax.random.key(0), (4, 4, 3), jnp.float64)
    real = jax.random.normal(jax.random.key(1), (5, 4, 4, 3), jnp.float64)
    value, _ = evaluate(penalties.r1_penalty(weight=2.0), linear_critic(w), real, real, None)
    np.testing.assert_allclose(value, float(jnp.sum(w**2)), rtol=1e-12)


def test_dragan_uniform_global_perturbation_law(x64):
    real = 3.0 * jax.random.normal(jax.random.key(0), (2000, 25), jnp.float64) + 1.0
    delta = np.asarray(penalties.dragan_points(jax.random.key(1), real, scale=0.5) - real)
    bound = 0.5 * float(jnp.std(real))  # one std over every entry of the batch
    assert np.abs(delta).max() <= bound * (1 + 1e-12)
    assert np.abs(delta).max() > 0.99 * bound
    np.testing.assert_allclose(delta.mean(), 0.0, atol=0.01 * bound)
    np.testing.assert_allclose(delta.var(), bound**2 / 3, rtol=0.02)  # Var U[-a, a] = a²/3


def test_dragan_normal_per_feature_perturbation_law(x64):
    scales = jnp.array([0.1, 1.0, 10.0])
    real = jax.random.normal(jax.random.key(0), (20000, 3), jnp.float64) * scales
    delta = np.asarray(
        penalties.dragan_points(
            jax.random.key(1), real, scale=0.25, noise="normal", std="per_feature"
        ) - real
    )
    expected_sd = 0.25 * np.asarray(jnp.std(real, axis=0))
    np.testing.assert_allclose(delta.std(0), expected_sd, rtol=0.03)
    np.testing.assert_allclose(delta.mean(0) / expected_sd, 0.0, atol=0.03)


def test_dragan_scale_zero_is_penalty_at_real_data(x64):
    params = relu_params(jax.random.key(0))
    real = jax.random.normal(jax.random.key(1), (8, 3), jnp.float64)
    pen = penalties.dragan_penalty(scale=0.0, norm_eps=0.0)
    value, _ = evaluate(pen, lambda x: relu_net(params, x), real, real, jax.random.key(2))
    norms = np.sqrt((relu_net_input_grads(params, real) ** 2).sum(1))
    np.testing.assert_allclose(value, 10.0 * np.mean((norms - 1) ** 2), rtol=1e-12)


@pytest.mark.parametrize("name", ["wgan_gp", "dragan"])
def test_penalty_twice_differentiable_where_input_gradient_vanishes(x64, name):
    """A critic with ∇D = 0 (w = 0): the eps in the sqrt keeps derivatives finite."""
    real, fake = jnp.ones((4, 3)), -jnp.ones((4, 3))
    pen = penalties.make_penalty(name)

    def value(w):
        return pen.apply(linear_critic(w), real, fake, jax.random.key(0))[0]

    w0 = jnp.zeros(3)
    val, grad, hess = jax.jit(lambda w: (value(w), jax.grad(value)(w), jax.hessian(value)(w)))(w0)
    np.testing.assert_allclose(val, 10.0 * (np.sqrt(1e-10) - 1) ** 2, rtol=1e-12)
    assert np.isfinite(np.asarray(grad)).all() and np.isfinite(np.asarray(hess)).all()


def test_penalty_hessian_matches_closed_form(x64):
    """Second derivative in the critic's parameters: for D = <w, x>, P(w) = λ (‖w‖-1)²."""
    pen = penalties.make_penalty("wgan_gp", norm_eps=0.0)
    real, fake = jnp.ones((4, 3)), -jnp.ones((4, 3))
    w = jnp.array([0.5, -1.0, 2.0])

    def value(w):
        return pen.apply(linear_critic(w), real, fake, jax.random.key(0))[0]

    n = jnp.linalg.norm(w)
    u = w / n
    expected = 20.0 * (jnp.outer(u, u) + (n - 1) / n * (jnp.eye(3) - jnp.outer(u, u)))
    np.testing.assert_allclose(jax.jit(jax.hessian(value))(w), expected, rtol=1e-10)


def test_clip_weights():
    params = {"w": jnp.array([-1.0, -0.005, 0.02]), "b": jnp.array(3.0)}
    clipped = penalties.clip_weights(params, 0.01)
    np.testing.assert_array_equal(clipped["w"], np.float32([-0.01, -0.005, 0.01]))
    np.testing.assert_array_equal(clipped["b"], np.float32(0.01))


def test_make_penalty_names_and_errors():
    assert penalties.make_penalty("none") is None
    for name in penalties.PENALTIES[1:]:
        assert penalties.make_penalty(name).name == name
    with pytest.raises(ValueError, match="choose one of"):
        penalties.make_penalty("wgan-gp")
    with pytest.raises(ValueError, match="does not take"):
        penalties.make_penalty("r1", lam=1.0)
    with pytest.raises(ValueError, match="takes no options"):
        penalties.make_penalty("none", weight=1.0)
    with pytest.raises(ValueError, match="noise"):
        penalties.make_penalty("dragan", noise="laplace")
    with pytest.raises(ValueError, match="std"):
        penalties.make_penalty("dragan", std="batch")
    with pytest.raises(ValueError, match=">= 0"):
        penalties.make_penalty("wgan_gp", weight=-1.0)


def test_runtime_errors():
    real, fake = jnp.ones((4, 3)), jnp.ones((5, 3))
    critic = linear_critic(jnp.ones(3))
    with pytest.raises(ValueError, match="key"):
        evaluate(penalties.make_penalty("dragan"), critic, real, real, None)
    with pytest.raises(ValueError, match="one shape"):
        evaluate(penalties.make_penalty("wgan_gp"), critic, real, fake, jax.random.key(0))
    with pytest.raises(ValueError, match="one logit per example"):
        evaluate(penalties.r1_penalty(), lambda x: x, real, real, None)


def test_traced_weight_under_vmap_and_jit():
    """Weights may be traced (sweeps vmap over λ)."""
    real = jnp.ones((4, 2))
    w = jnp.array([3.0, 4.0])  # ‖w‖ = 5

    def value(weight):
        pen = penalties.make_penalty("wgan_gp", weight=weight, norm_eps=0.0)
        return pen.apply(linear_critic(w), real, -real, jax.random.key(0))[0]

    out = jax.jit(jax.vmap(value))(jnp.array([1.0, 10.0]))
    np.testing.assert_allclose(out, [16.0, 160.0], rtol=1e-6)
