"""MIX+GAN mixtures (models.mix): exact payoff, T = 1 equals the plain model, sampling,
entropy regulariser, vmapped (not looped) components, the registry entry."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from gan_dynamics import objectives, penalties
from gan_dynamics.models import mix, registry
from gan_dynamics.models.mlp import MLPDiscriminator, MLPGenerator
from gan_dynamics.optimizers import create

Z_DIM, DIM, BATCH = 3, 2, 16
GEN = MLPGenerator(z_dim=Z_DIM, hidden=(8,), out_dim=DIM)
DISC = MLPDiscriminator(hidden=(8,))
GENERATE = objectives.linen_apply(GEN)
DISCRIMINATE = objectives.linen_apply(DISC)


def init_players(key, t):
    kx, ky, lx, ly = jax.random.split(key, 4)
    px = mix.init_mixture(lambda k: GEN.init(k, jnp.zeros((1, Z_DIM)))["params"], kx, t)
    py = mix.init_mixture(lambda k: DISC.init(k, jnp.zeros((1, DIM)))["params"], ky, t)
    # Non-uniform weights so the weighting matters.
    if t > 1:
        px[mix.MIXTURE_LOGITS][mix.LOGITS] = jax.random.normal(lx, (t,))
        py[mix.MIXTURE_LOGITS][mix.LOGITS] = jax.random.normal(ly, (t,))
    return px, py


def batch(key):
    kr, kz, kp = jax.random.split(key, 3)
    return (jax.random.normal(kr, (BATCH, DIM)) + 1.0, jax.random.normal(kz, (BATCH, Z_DIM)),
            kp)


def component(params, i):
    return jax.tree.map(lambda a: a[i], params[mix.COMPONENTS])


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("loss,penalty", [("non_saturating", None), ("wgan", "wgan_gp"),
                                          ("minimax", None)])
def test_payoff_is_the_weighted_double_sum(x64, loss, penalty):
    t, lam = 3, 0.3
    px, py = init_players(jax.random.key(0), t)
    real, z, key = batch(jax.random.key(1))
    pen = None if penalty is None else penalties.make_penalty(penalty, weight=10.0)
    game = mix.make_mix_gan_game(loss, GENERATE, DISCRIMINATE, real, z, key, penalty=pen,
                                 entropy_weight=lam)
    (f, g), _ = game.losses(px, py)
    wx = np.asarray(jax.nn.softmax(px[mix.MIXTURE_LOGITS][mix.LOGITS]))
    wy = np.asarray(jax.nn.softmax(py[mix.MIXTURE_LOGITS][mix.LOGITS]))
    f_hand = g_hand = 0.0
    for i in range(t):
        for j in range(t):
            plain = objectives.make_gan_game(loss, GENERATE, DISCRIMINATE, real, z, key,
                                             penalty=pen)
            (f_ij, g_ij), _ = plain.losses(component(px, i), component(py, j))
            f_hand += wx[i] * wy[j] * float(f_ij)
            g_hand += wx[i] * wy[j] * float(g_ij)
    f_hand += lam * -np.mean(np.log(wx))
    g_hand += lam * -np.mean(np.log(wy))
    np.testing.assert_allclose([f, g], [f_hand, g_hand], rtol=1e-10)
    assert game.zero_sum is False  # the regulariser makes any mixture game general-sum


def test_zero_sum_only_without_regulariser():
    real, z, key = batch(jax.random.key(1))
    make = lambda lam, loss="wgan": mix.make_mix_gan_game(
        loss, GENERATE, DISCRIMINATE, real, z, key, entropy_weight=lam)
    assert make(0.0).zero_sum and not make(0.1).zero_sum
    assert not make(0.0, "non_saturating").zero_sum


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_gradients_reach_the_mixture_logits():
    px, py = init_players(jax.random.key(0), 4)
    game = mix.make_mix_gan_game("non_saturating", GENERATE, DISCRIMINATE,
                                 *batch(jax.random.key(1)), entropy_weight=0.0)
    gx = jax.grad(game.f, argnums=0)(px, py)
    gy = jax.grad(game.g, argnums=1)(px, py)
    for grad in (gx, gy):
        logits_grad = grad[mix.MIXTURE_LOGITS][mix.LOGITS]
        assert np.all(np.isfinite(logits_grad)) and np.linalg.norm(logits_grad) > 1e-6


def _plain_game(loss, real, z, key):
    return objectives.make_gan_game(loss, GENERATE, DISCRIMINATE, real, z, key)


OPTIMIZERS = {
    "simgd": dict(transform_x={"name": "sgd", "lr": 0.05}, transform_y={"name": "sgd", "lr": 0.05}),
    "altgd": dict(transform_x={"name": "adam", "lr": 1e-2, "b1": 0.5, "b2": 0.9},
                  transform_y={"name": "adam", "lr": 1e-2, "b1": 0.5, "b2": 0.9}, n_disc=2),
    "cgd": dict(lr_x=0.05, lr_y=0.05, max_iter=20),
    "acgd": dict(lr_x=1e-2, lr_y=1e-2, max_iter=20),
}


# Every optimizer on the general-sum path, CGD also on the zero-sum (CG) path.
@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("name,loss", [(name, "non_saturating") for name in sorted(OPTIMIZERS)]
                         + [("cgd", "wgan")])
def test_one_component_equals_the_plain_model_bit_for_bit(name, loss):
    px, py = init_players(jax.random.key(2), 1)
    real, z, key = batch(jax.random.key(3))
    batches = lambda i: batch(jax.random.fold_in(jax.random.key(4), i))
    # T = 1: the regulariser is identically 0, so the weight only decides zero-sumness.
    mixed = mix.make_mix_gan_game(loss, GENERATE, DISCRIMINATE, real, z, key,
                                  entropy_weight=0.0, substep_batch=batches)
    plain = objectives.make_gan_game(loss, GENERATE, DISCRIMINATE, real, z, key,
                                     substep_batch=batches)
    assert mixed.zero_sum == plain.zero_sum
    opt = create(name, **OPTIMIZERS[name])
    cx, cy = component(px, 0), component(py, 0)

    (f_m, g_m), _ = jax.jit(mixed.losses)(px, py)
    (f_p, g_p), _ = jax.jit(plain.losses)(cx, cy)
    assert (f_m, g_m) == (f_p, g_p)

    px, py, _, info_m = jax.jit(lambda x, y: opt.update(mixed, x, y, opt.init(x, y)))(px, py)
    cx, cy, _, info_p = jax.jit(lambda x, y: opt.update(plain, x, y, opt.init(x, y)))(cx, cy)
    for mixed_leaf, plain_leaf in zip(jax.tree.leaves((component(px, 0), component(py, 0))),
                                      jax.tree.leaves((cx, cy))):
        if name == "cgd" and not plain.zero_sum:
            # GMRES works on the flattened parameter vector, one entry (the logit, 0)
            # longer for the mixture: its inner products reduce in another order.
            np.testing.assert_allclose(mixed_leaf, plain_leaf, rtol=1e-6, atol=1e-9)
        else:
            np.testing.assert_array_equal(mixed_leaf, plain_leaf)
    # The logit of a single component gets no gradient: it stays 0.
    np.testing.assert_array_equal(px[mix.MIXTURE_LOGITS][mix.LOGITS], [0.0])


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_one_component_linen_equals_plain_dcgan():
    """The registry's mixture of the ICR DCGAN with T = 1 gives the plain pair's payoff."""
    g_mix, d_mix = registry.get_model("mix", base="icr_dcgan", components=1, z_dim=4,
                                      width=2, channels=1)
    g, d = registry.get_model("icr_dcgan", z_dim=4, width=2, channels=1)
    vg = jax.jit(lambda k: g_mix.init(k, jnp.zeros((1, 5)), train=False))(jax.random.key(0))
    vd = jax.jit(lambda k: d_mix.init(k, jnp.zeros((1, 32, 32, 1)), train=False))(
        jax.random.key(1))
    real = jax.random.normal(jax.random.key(2), (4, 32, 32, 1))
    z = jax.random.normal(jax.random.key(3), (4, 5))
    game = mix.make_module_game("wgan", g_mix, d_mix, real, z,
                                state_x={"batch_stats": vg["batch_stats"]}, state_y={})
    (f, gg), aux = jax.jit(game.losses)(vg["params"], vd["params"])
    one = lambda tree: jax.tree.map(lambda a: a[0], tree[mix.COMPONENTS])
    plain = objectives.make_gan_game(
        "wgan", objectives.linen_apply(g, train=True), objectives.linen_apply(d, train=True),
        real, z[:, 1:], state_x={"batch_stats": one(vg["batch_stats"])}, state_y={})
    (f_p, g_p), aux_p = jax.jit(plain.losses)(one(vg["params"]), one(vd["params"]))
    np.testing.assert_allclose([f, gg], [f_p, g_p], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(one(aux.state_x["batch_stats"])),
                    jax.tree.leaves(aux_p.state_x["batch_stats"])):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Sampling a one-component mixture is the component.
    samples = jax.jit(lambda v, z: g_mix.apply(v, z, train=False))(vg, z)
    plain_samples = jax.jit(lambda v, z: g.apply(v, z, train=False))(
        {"params": one(vg["params"]), "batch_stats": one(vg["batch_stats"])}, z[:, 1:])
    np.testing.assert_allclose(samples, plain_samples, rtol=1e-6, atol=1e-7)


def test_sampling_frequencies_match_the_weights():
    logits = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    n = 20_000
    index = mix.choose_components(logits, jax.random.normal(jax.random.key(0), (n,)))
    counts = np.bincount(np.asarray(index), minlength=4)
    result = scipy.stats.chisquare(counts, n * np.array([0.1, 0.2, 0.3, 0.4]))
    assert result.pvalue > 0.01, (counts, result)
    # A wrong sampler (uniform) is rejected by the same test.
    uniform = scipy.stats.chisquare(np.full(4, n // 4), n * np.array([0.1, 0.2, 0.3, 0.4]))
    assert uniform.pvalue < 1e-6


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_mixture_samples_come_from_the_chosen_component():
    px, _ = init_players(jax.random.key(5), 3)
    z = jax.random.normal(jax.random.key(6), (64, 1 + Z_DIM))
    samples = mix.mixture_generate(GENERATE, px, None, z)
    index = mix.choose_components(px[mix.MIXTURE_LOGITS][mix.LOGITS], z[:, 0])
    for n in range(64):
        expected = GEN.apply({"params": component(px, int(index[n]))}, z[n:n + 1, 1:])
        np.testing.assert_allclose(samples[n], expected[0], rtol=1e-5, atol=1e-6)


def test_entropy_regulariser_is_smallest_at_uniform_weights():
    t = 5
    uniform = mix.entropy_regularizer(jnp.zeros(t))
    np.testing.assert_allclose(uniform, np.log(t), rtol=1e-6)
    for seed in range(20):
        logits = jax.random.normal(jax.random.key(seed), (t,))
        assert mix.entropy_regularizer(logits) > uniform
    grad = jax.grad(mix.entropy_regularizer)(jnp.zeros(t))
    np.testing.assert_allclose(grad, 0.0, atol=1e-7)


def _dot_shapes(jaxpr):
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            shapes.append(tuple(tuple(v.aval.shape) for v in eqn.invars))
        for param in eqn.params.values():  # pjit, custom_jvp, ...: their inner jaxprs
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                shapes.extend(_dot_shapes(inner))
    return shapes


def test_components_are_one_vmapped_call_not_a_loop():
    """The payoff with T components has as many matmuls as with T = 1, batched over T."""
    real, z, key = batch(jax.random.key(1))
    game = mix.make_mix_gan_game("non_saturating", GENERATE, DISCRIMINATE, real, z, key)
    counts = {}
    for t in (1, 5):
        px, py = init_players(jax.random.key(0), t)
        shapes = _dot_shapes(jax.make_jaxpr(game.losses)(px, py).jaxpr)
        counts[t] = len(shapes)
        if t == 5:
            # Every dense op carries the component axis (T, or T x T for D on G's samples).
            assert all(any(5 in s for s in operands) for operands in shapes), shapes
    assert counts[5] == counts[1] > 0, counts


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_registry_builds_a_mixture_and_its_variables():
    g, d = registry.get_model("mix", base="icr_dcgan", components=3, z_dim=4, width=2,
                              channels=1)
    assert g.z_dim == 5
    vg = jax.jit(lambda k: g.init(k, jnp.zeros((1, g.z_dim)), train=False))(jax.random.key(0))
    vd = jax.jit(lambda k: d.init(k, jnp.zeros((1, 32, 32, 1)), train=False))(jax.random.key(1))
    assert vg["params"][mix.MIXTURE_LOGITS][mix.LOGITS].shape == (3,)
    assert vg["params"][mix.COMPONENTS]["linear"]["kernel"].shape == (3, 4, 4 * 4 * 8)
    assert vg["batch_stats"][mix.COMPONENTS]["bn0"]["mean"].shape == (3, 4 * 4 * 8)
    # Components start different (vmapped init over distinct keys).
    kernels = vd["params"][mix.COMPONENTS]["linear"]["kernel"]
    assert not np.allclose(kernels[0], kernels[1])
    out, _ = jax.jit(lambda v, z: g.apply(v, z, train=True, mutable=["batch_stats"]))(
        vg, jnp.ones((2, 5)))
    assert out.shape == (2, 32, 32, 1)
    assert jax.jit(lambda v, x: d.apply(v, x, train=True))(vd, out).shape == (2,)
    with pytest.raises(ValueError, match="components"):
        registry.get_model("mix", base="icr_dcgan", components=0)
    with pytest.raises(ValueError, match="Unknown model"):
        registry.get_model("mix", base="nope")


def test_clipping_leaves_the_logits_alone():
    _, py = init_players(jax.random.key(0), 3)
    py[mix.MIXTURE_LOGITS][mix.LOGITS] = jnp.array([1.0, -2.0, 0.5])
    clipped = penalties.clip_weights(py, 0.01)  # the optimizer's WGAN projection
    np.testing.assert_array_equal(clipped[mix.MIXTURE_LOGITS][mix.LOGITS], [1.0, -2.0, 0.5])
    assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(clipped[mix.COMPONENTS])) <= 0.01


class _BatchNormCritic(nn.Module):
    """A critic with batch normalisation: its running statistics are the carried state."""

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(8)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dense(1)(nn.tanh(x))[:, 0]


def test_altgd_carries_a_mixtures_batch_statistics_from_critic_step_to_critic_step():
    """T = 1 under AltGD (two critic steps): the running statistics of the last critic
    step equal the plain pair's, which carries them from each critic step to the next."""
    g_mix, d_mix = mix.make(GEN, _BatchNormCritic(), components=1, entropy_weight=0.0)
    vg = g_mix.init(jax.random.key(0), jnp.zeros((1, 1 + Z_DIM)), train=False)
    vd = d_mix.init(jax.random.key(1), jnp.zeros((1, DIM)), train=False)
    real, z, key = batch(jax.random.key(3))
    mixture_z = lambda z: jnp.concatenate([jnp.zeros((z.shape[0], 1)), z], axis=1)  # noqa: E731

    def batches(i):
        real, z, key = batch(jax.random.fold_in(jax.random.key(4), i))
        return real, mixture_z(z), key

    mixed = mix.make_module_game("non_saturating", g_mix, d_mix, real, mixture_z(z), key,
                                 state_x={}, state_y={"batch_stats": vd["batch_stats"]},
                                 substep_batch=batches)
    one = lambda tree: jax.tree.map(lambda a: a[0], tree[mix.COMPONENTS])  # noqa: E731
    plain = objectives.make_gan_game(
        "non_saturating", objectives.linen_apply(GEN),
        objectives.linen_apply(_BatchNormCritic(), train=True), real, z, key,
        state_y={"batch_stats": one(vd["batch_stats"])},
        substep_batch=lambda i: batches(i)[:1] + (batches(i)[1][:, 1:],) + batches(i)[2:])
    opt = create("altgd", **OPTIMIZERS["altgd"])
    *_, info_m = jax.jit(lambda x, y: opt.update(mixed, x, y, opt.init(x, y)))(
        vg["params"], vd["params"])
    *_, info_p = jax.jit(lambda x, y: opt.update(plain, x, y, opt.init(x, y)))(
        one(vg["params"]), one(vd["params"]))
    # The last critic step's statistics: it started from the first step's.
    for a, b in zip(jax.tree.leaves(one(info_m["aux_y"].state_y["batch_stats"])),
                    jax.tree.leaves(info_p["aux_y"].state_y["batch_stats"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
