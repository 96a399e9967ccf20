"""GAN losses against hand computations, and the GAN `Game` with the core machinery."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics import objectives, penalties
from gan_dynamics.game import gradients
from gan_dynamics.linalg import linearize_general_sum, linearize_zero_sum

D_REAL = np.array([2.0, -1.0, 0.5, 30.0])
D_FAKE = np.array([-0.3, 1.5, -40.0])


def log_sigmoid(t):
    return np.log(1.0 / (1.0 + np.exp(-t)))


def hand_losses(name, r, f):
    if name == "minimax":
        g = -np.mean(log_sigmoid(r)) - np.mean(np.log(1.0 - 1.0 / (1.0 + np.exp(-f))))
        return -g, g
    if name == "non_saturating":
        g = -np.mean(log_sigmoid(r)) - np.mean(np.log(1.0 - 1.0 / (1.0 + np.exp(-f))))
        return -np.mean(log_sigmoid(f)), g
    if name == "wgan":
        return np.mean(r) - np.mean(f), np.mean(f) - np.mean(r)
    if name == "hinge":
        g = np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))
        return -np.mean(f), g
    raise AssertionError(name)


@pytest.mark.parametrize("name", objectives.LOSSES)
def test_losses_match_hand_computation(x64, name):
    f, g = objectives.get_loss(name).losses(jnp.asarray(D_REAL), jnp.asarray(D_FAKE))
    f_hand, g_hand = hand_losses(name, D_REAL, D_FAKE)
    np.testing.assert_allclose([f, g], [f_hand, g_hand], rtol=1e-12)


@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_log_sigmoid_losses_finite_for_huge_logits(name):
    f, g = objectives.get_loss(name).losses(jnp.array([1e4, -1e4]), jnp.array([1e4, -1e4]))
    assert np.isfinite(f) and np.isfinite(g)
    np.testing.assert_allclose(g, (1e4 + 1e4) / 2, rtol=1e-6)  # one wrong side each


def test_zero_sum_flags():
    assert {n: objectives.get_loss(n).zero_sum for n in objectives.LOSSES} == {
        "minimax": True, "non_saturating": False, "wgan": True, "hinge": False,
    }


# --------------------------------------------------------------------- a small GAN

N, LATENT, DIM, HIDDEN = 6, 2, 3, 4


def affine_generator(params, z):
    return params["mu"] + z @ params["w"]


def mlp_discriminator(params, x):
    return (jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"])[:, None] + params["b2"]


def setup(dtype=jnp.float64):
    k = jax.random.split(jax.random.key(0), 8)
    px = {"mu": jax.random.normal(k[0], (DIM,), dtype),
          "w": jax.random.normal(k[1], (LATENT, DIM), dtype)}
    py = {"w1": jax.random.normal(k[2], (DIM, HIDDEN), dtype),
          "b1": jax.random.normal(k[3], (HIDDEN,), dtype),
          "w2": jax.random.normal(k[4], (HIDDEN,), dtype),
          "b2": jnp.zeros((1,), dtype)}
    real = jax.random.normal(k[5], (N, DIM), dtype) + 1.0
    z = jax.random.normal(k[6], (N, LATENT), dtype)
    return px, py, real, z, k[7]


def game_for(model, real, z, key, **kwargs):
    return objectives.make_gan_game_by_name(
        model, objectives.stateless(affine_generator), objectives.stateless(mlp_discriminator),
        real, z, key, **kwargs)


ZERO_SUM = {"ns": False, "minimax": True, "wgan": True, "wgan_clip": True, "wgan_gp": False,
            "gan_gp": False, "dragan_ns": False}


def test_wgan_names_one_meaning_each():
    """"wgan" is the loss alone; only "wgan_clip" clips, with Arjovsky et al.'s c = 0.01."""
    assert [n for n, m in objectives.FEDUS_MODELS.items() if m.clip] == ["wgan_clip"]
    assert objectives.fedus_model("wgan_clip")._replace(clip=False) == objectives.fedus_model("wgan")
    assert objectives.WGAN_CLIP == 0.01
    with pytest.raises(ValueError, match="is a model name"):
        objectives.get_loss("wgan_clip")


@pytest.mark.parametrize("model", list(objectives.FEDUS_MODELS))
def test_game_losses_flags_and_metrics(x64, model):
    px, py, real, z, key = setup()
    game = game_for(model, real, z, key)
    assert game.zero_sum is ZERO_SUM[model]
    (f, g), aux = jax.jit(game.losses)(px, py)
    spec = objectives.fedus_model(model)
    fake = affine_generator(px, z)
    d_real, d_fake = jax.jit(lambda x: mlp_discriminator(py, x)[:, 0])(jnp.stack([real, fake]))
    f_hand, g_hand = hand_losses(spec.loss, np.asarray(d_real), np.asarray(d_fake))
    np.testing.assert_allclose(aux.metrics["d_real"], np.mean(d_real), rtol=1e-12)
    np.testing.assert_allclose(aux.metrics["d_fake"], np.mean(d_fake), rtol=1e-12)
    np.testing.assert_allclose(aux.metrics["g_adversarial"], g_hand, rtol=1e-12)
    np.testing.assert_allclose(f, f_hand, rtol=1e-12)
    pen = penalties.make_penalty(spec.penalty)
    if pen is None:
        np.testing.assert_allclose(g, g_hand, rtol=1e-12)
        assert "penalty" not in aux.metrics
    else:
        value, _ = jax.jit(lambda r, f: pen.apply(lambda x: mlp_discriminator(py, x), r, f, key))(
            real, fake)
        np.testing.assert_allclose(aux.metrics["penalty"], value, rtol=1e-12)
        np.testing.assert_allclose(g, g_hand + value, rtol=1e-12)
    if game.zero_sum:
        assert float(g) == -float(f)  # exactly, not approximately


def test_wgan_g_is_exactly_minus_f():
    px, py, real, z, key = setup(jnp.float32)
    (f, g), _ = jax.jit(game_for("wgan", real, z, key).losses)(px, py)
    assert np.asarray(g) == -np.asarray(f)


def test_any_penalty_makes_the_game_general_sum():
    _, _, real, z, key = setup(jnp.float32)
    for loss in objectives.LOSSES:
        for name in penalties.PENALTIES[1:]:
            game = objectives.make_gan_game(
                loss, objectives.stateless(affine_generator),
                objectives.stateless(mlp_discriminator), real, z, key,
                penalty=penalties.make_penalty(name))
            assert not game.zero_sum


def hand_f_g(model, key, real, z):
    """f and g written out directly for the small GAN (independent of make_gan_game)."""
    spec = objectives.fedus_model(model)
    loss = objectives.get_loss(spec.loss).losses
    pen = penalties.make_penalty(spec.penalty)

    def f_g(px, py):
        fake = affine_generator(px, z)
        d = lambda x: mlp_discriminator(py, x)[:, 0]  # noqa: E731
        f, g = loss(d(real), d(fake))
        if pen is not None:
            g = g + pen.apply(d, real, fake, key)[0]
        return f, g

    return f_g


@pytest.mark.parametrize("model", ["ns", "wgan_gp", "dragan_ns"])
def test_gradients_and_mixed_blocks_match_dense_derivatives(x64, model):
    """Second derivatives through the penalty: Dxy f and Dyx g against jax.jacfwd of grads."""
    px, py, real, z, key = setup()
    game = game_for(model, real, z, key)
    f_g = hand_f_g(model, key, real, z)
    u = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape), px)
    v = jax.tree.map(lambda a: jnp.sin(jnp.arange(1, a.size + 1, dtype=a.dtype)).reshape(a.shape),
                     py)

    @jax.jit
    def got_and_reference(px, py):
        grads = gradients(game, px, py)
        lin = linearize_general_sum(game, px, py)
        got = (grads.grad_x, grads.grad_y, lin.dyx_g(u), lin.dxy_f(v))
        # Dyx g · u = d/dt ∇y g(x + t u, y);  Dxy f · v = d/dt ∇x f(x, y + t v)
        ref = (
            jax.grad(lambda a: f_g(a, py)[0])(px),
            jax.grad(lambda b: f_g(px, b)[1])(py),
            jax.jvp(lambda a: jax.grad(lambda b: f_g(a, b)[1])(py), (px,), (u,))[1],
            jax.jvp(lambda b: jax.grad(lambda a: f_g(a, b)[0])(px), (py,), (v,))[1],
        )
        return got, ref

    got, ref = got_and_reference(px, py)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        assert np.isfinite(np.asarray(a)).all()
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_zero_sum_game_linearizes(x64):
    px, py, real, z, key = setup()
    game = game_for("wgan", real, z, key)
    u = jax.tree.map(jnp.ones_like, px)
    v = jax.tree.map(jnp.ones_like, py)

    @jax.jit
    def products(px, py):
        lin = linearize_zero_sum(game, px, py)
        general = linearize_general_sum(game, px, py)
        return lin.dxy_f(v), general.dxy_f(v), lin.dyx_f(u), general.dyx_g(u)

    dxy_zs, dxy_gs, dyx_f, dyx_g = products(px, py)
    for a, b in zip(jax.tree.leaves(dxy_zs), jax.tree.leaves(dxy_gs)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # g = -f, so Dyx g = -(Dxy f)ᵀ
    for a, b in zip(jax.tree.leaves(dyx_f), jax.tree.leaves(dyx_g)):
        np.testing.assert_allclose(a, -b, rtol=1e-10)


def dirac_game(loss, gamma, theta_batch=8):
    """Dirac-GAN (Mescheder et al. 2018, Sec. 2.2): data at 0, G = θ, D(x) = ψ x."""
    real = jnp.zeros((theta_batch, 1))
    z = jnp.zeros((theta_batch, 1))
    penalty = penalties.make_penalty("r1", weight=gamma) if gamma is not None else None
    return objectives.make_gan_game(
        loss, objectives.stateless(lambda theta, z: z + theta),
        objectives.stateless(lambda psi, x: psi * x), real, z, penalty=penalty)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating"])
@pytest.mark.parametrize("gamma", [None, 0.3, 2.0])
def test_dirac_gan_jacobian_at_equilibrium(x64, loss, gamma):
    """∂(∇θ f, ∇ψ g)/∂(θ, ψ) at 0 is [[0, -σ(0)], [σ(0), γ]]: R1 damps the rotation."""
    game = dirac_game(loss, gamma)

    def field(z):
        grads = gradients(game, z[0], z[1])
        return jnp.stack([grads.grad_x, grads.grad_y])

    jac = jax.jit(jax.jacfwd(field))(jnp.zeros(2))
    np.testing.assert_allclose(jac, [[0.0, -0.5], [0.5, gamma or 0.0]], atol=1e-14)
    lin = linearize_general_sum(game, jnp.array(0.0), jnp.array(0.0))
    np.testing.assert_allclose([lin.dxy_f(1.0), lin.dyx_g(1.0)], [-0.5, 0.5], atol=1e-14)


def test_dirac_gan_simgd_r1_converges_and_unregularised_does_not(x64):
    """Simultaneous gradient descent on the saturating Dirac-GAN (Mescheder et al., Fig. 1;
    its flow conserves θ² + ψ², so discrete steps spiral out unless R1 damps them)."""

    def run(gamma):
        game = dirac_game("minimax", gamma)

        def step(z, _):
            grads = gradients(game, z[0], z[1])
            return z - 0.1 * jnp.stack([grads.grad_x, grads.grad_y]), None

        return jnp.linalg.norm(jax.lax.scan(step, jnp.array([1.0, 0.0]), None, 2000)[0])

    assert float(jax.jit(run)(1.0)) < 1e-6
    assert float(jax.jit(run)(0.0)) > 1.0


# ------------------------------------------------------------------------ model state


def counting(apply):
    """An ApplyFn whose state counts its calls."""
    return lambda params, state, inputs: (apply(params, inputs), state + 1)


def test_states_thread_through_real_then_fake_and_penalty_does_not_update():
    px, py, real, z, key = setup(jnp.float32)
    seen = []

    def discriminate(params, state, inputs):
        seen.append(int(state))
        return mlp_discriminator(params, inputs), state + 1

    game = objectives.make_gan_game(
        "non_saturating", counting(affine_generator), discriminate, real, z, key,
        penalty=penalties.make_penalty("gan_gp"), state_x=jnp.int32(10), state_y=jnp.int32(20))
    _, aux = game.losses(px, py)
    assert int(aux.state_x) == 11
    assert int(aux.state_y) == 22
    assert seen == [20, 21, 20]  # real, fake, then the penalty's critic at the given state


def test_linen_batchnorm_discriminator_state_updates():
    class Disc(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dense(4)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
            return nn.Dense(1)(nn.relu(x))

    px, _, real, z, key = setup(jnp.float32)
    variables = Disc().init(jax.random.key(1), real, train=False)
    state_y = {"batch_stats": variables["batch_stats"]}
    game = objectives.make_gan_game(
        "wgan", objectives.stateless(affine_generator), objectives.linen_apply(Disc(), train=True),
        real, z, key, penalty=penalties.make_penalty("wgan_gp"), state_y=state_y)
    u = jax.tree.map(jnp.ones_like, px)

    @jax.jit
    def run(px, py):
        lin = linearize_general_sum(game, px, py)
        return lin.grads, lin.dyx_g(u)

    grads, dyx_g_u = run(px, variables["params"])
    assert np.isfinite(float(grads.g))
    new_mean = grads.aux.state_y["batch_stats"]["BatchNorm_0"]["mean"]
    assert not np.allclose(new_mean, state_y["batch_stats"]["BatchNorm_0"]["mean"])
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(dyx_g_u))


def test_images_and_substeps():
    """Images (N, H, W, C); substep(i) is the same game on batch i."""
    shape = (4, 3, 3, 2)

    def gen(params, z):
        return jnp.tanh(z @ params).reshape((z.shape[0],) + shape[1:])

    def disc(params, x):
        return x.reshape(x.shape[0], -1) @ params

    px = jax.random.normal(jax.random.key(0), (5, 18))
    py = jax.random.normal(jax.random.key(1), (18,))

    def batch(i):
        k = jax.random.fold_in(jax.random.key(2), i)
        k1, k2, k3 = jax.random.split(k, 3)
        return jax.random.normal(k1, shape), jax.random.normal(k2, (4, 5)), k3

    game = objectives.make_gan_game(
        "hinge", objectives.stateless(gen), objectives.stateless(disc), *batch(0),
        penalty=penalties.make_penalty("r1"), substep_batch=batch)
    (f, g), aux = jax.jit(lambda a, b: game.at_substep(3).losses(a, b))(px, py)
    real3, z3, _ = batch(3)
    fake3 = gen(px, z3)
    f_hand, g_hand = hand_losses("hinge", np.asarray(disc(py, real3)), np.asarray(disc(py, fake3)))
    np.testing.assert_allclose([f, aux.metrics["g_adversarial"]], [f_hand, g_hand], rtol=1e-5)
    np.testing.assert_allclose(aux.metrics["penalty"], 5.0 * float(jnp.sum(py**2)), rtol=1e-5)


# ----------------------------------------------------------------------------- errors


def test_errors():
    px, py, real, z, key = setup(jnp.float32)
    with pytest.raises(ValueError, match="choose one of"):
        objectives.get_loss("nonsaturating")
    with pytest.raises(ValueError, match="is a model name"):
        objectives.get_loss("wgan_gp")
    with pytest.raises(ValueError, match="choose one of"):
        objectives.fedus_model("dragan")
    with pytest.raises(ValueError, match="pass `key`"):
        game_for("wgan_gp", real, z, None)
    with pytest.raises(ValueError, match="does not take"):
        game_for("gan_gp", real, z, key, penalty_options={"scale": 0.3})
    assert game_for("ns", real, z, key, penalty_options={"weight": 5.0}).zero_sum is False
    wide = objectives.make_gan_game(
        "wgan", objectives.stateless(affine_generator),
        objectives.stateless(lambda p, x: jnp.ones((x.shape[0], 3))), real, z)
    with pytest.raises(ValueError, match="one logit per example"):
        wide.losses(px, py)
    wrong = objectives.make_gan_game(
        "wgan", objectives.stateless(lambda p, z: z), objectives.stateless(mlp_discriminator),
        real, z)
    with pytest.raises(ValueError, match="Generated examples have shape"):
        wrong.losses(px, py)
