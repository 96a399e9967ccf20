"""Projections (WGAN weight clipping) applied after every update of a player, by every
game optimizer; the runners build the critic's projection from their config."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_dynamics import optimizers, penalties
from gan_dynamics.game import gradients
from gan_dynamics.optimizers.transforms import make_transform
from tests import small_gan
from tests.game_fixtures import random_game, random_params

C = 0.05


def _close(a, b, rtol=1e-12, atol=1e-15):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=rtol, atol=atol), a, b)


def _recording(game, records):
    """`game` whose player losses report max |critic weight| at each evaluation."""

    def record(player, loss):
        def wrapped(px, py):
            jax.debug.callback(lambda m: records.append((player, float(m))),
                               small_gan.max_abs(py), ordered=True)
            return loss(px, py)
        return wrapped

    return game._replace(
        loss_x=record("x", game.player_loss("x")), loss_y=record("y", game.player_loss("y")),
        substep=None if game.substep is None else
        (lambda i: _recording(game.substep(i), records)))


def test_wgan_clip_altgd_equals_hand_loop_clipping_after_each_critic_step(x64):
    """WGAN, Alg. 1 of Arjovsky et al.: clip after every one of the n_critic = 5 steps."""
    n_disc, steps, key = 5, 3, jax.random.key(0)
    spec_x = {"name": "rmsprop", "lr": 0.05}
    spec_y = {"name": "rmsprop", "lr": 0.02}
    px0, py0 = small_gan.init_params()
    opt = optimizers.create("altgd", transform_x=spec_x, transform_y=spec_y, n_disc=n_disc,
                            project_y=penalties.weight_clip(C))
    records = []
    update = jax.jit(lambda px, py, s, t: opt.update(
        _recording(small_gan.make_game(jax.random.fold_in(key, t)), records), px, py, s))
    px, py, state = px0, py0, opt.init(px0, py0)
    for t in range(steps):
        px, py, state, _ = update(px, py, state, t)

    tx, ty = make_transform(spec_x), make_transform(spec_y)
    hx, hy = px0, py0
    sx, sy = tx.init(hx), ty.init(hy)
    clipped_something = False
    for t in range(steps):
        game = small_gan.make_game(jax.random.fold_in(key, t))
        for i in range(n_disc):
            gy = jax.grad(lambda y: game.at_substep(i).losses(hx, y)[0][1])(hy)
            delta, sy = ty.update(gy, sy, hy)
            unclipped = optax.apply_updates(hy, delta)
            hy = penalties.clip_weights(unclipped, C)
            clipped_something |= float(small_gan.max_abs(unclipped)) > C
        gx = jax.grad(lambda x: game.at_substep(n_disc).losses(x, hy)[0][0])(hx)
        delta, sx = tx.update(gx, sx, hx)
        hx = optax.apply_updates(hx, delta)
    assert clipped_something  # the projection is active, so the test can tell
    _close((px, py), (hx, hy))
    # Critic weights seen by each evaluation: all inside [-c, c] except the very first
    # (the unclipped initialisation), in particular before every generator step.
    assert [p for p, _ in records] == (["y"] * n_disc + ["x"]) * steps
    assert records[0][1] > C
    assert all(m <= C for _, m in records[1:])


SGD = {"name": "sgd", "lr": 0.3}
HYPERPARAMETERS = {
    "simgd": dict(transform_x=SGD, transform_y=SGD),
    "altgd": dict(transform_x=SGD, transform_y=SGD, n_disc=2),
    "extragradient": dict(lr_x=0.3, lr_y=0.3),
    "ogda": dict(lr_x=0.3, lr_y=0.3),
    "consensus": dict(lr_x=0.3, lr_y=0.3, gamma=0.5),
    "sga": dict(lr_x=0.3, lr_y=0.3, lam=1.0),
    "cgd": dict(lr_x=0.3, lr_y=0.3, tol=1e-12, atol=1e-14),
    "acgd": dict(lr_x=0.3, lr_y=0.3, tol=1e-12, atol=1e-14),
}
CX, CY = 0.6, 0.5


def _px(tree):
    return penalties.clip_weights(tree, CX)


def _py(tree):
    return penalties.clip_weights(tree, CY)


def _hand_altgd(game, x, y, lr, n_disc):
    for _ in range(n_disc):
        y = _py(jax.tree.map(lambda p, g: p - lr * g, y, gradients(game, x, y).grad_y))
    return _px(jax.tree.map(lambda p, g: p - lr * g, x, gradients(game, x, y).grad_x)), y


def _hand_extragradient(game, x, y, lr):
    here = gradients(game, x, y)
    mid_x = _px(jax.tree.map(lambda p, g: p - lr * g, x, here.grad_x))
    mid_y = _py(jax.tree.map(lambda p, g: p - lr * g, y, here.grad_y))
    mid = gradients(game, mid_x, mid_y)
    return (_px(jax.tree.map(lambda p, g: p - lr * g, x, mid.grad_x)),
            _py(jax.tree.map(lambda p, g: p - lr * g, y, mid.grad_y)))


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_every_optimizer_projects_after_each_update(x64, name):
    """Three steps with projections equal the hand-projected method: simultaneous methods
    project their update; AltGD each critic step and the generator step; extragradient
    both half-steps."""
    assert set(HYPERPARAMETERS) == set(optimizers.NAMES)
    game = random_game(3, zero_sum=False)
    x0, y0 = random_params(3)
    hp = HYPERPARAMETERS[name]
    projected = optimizers.create(name, **hp, project_x=_px, project_y=_py)
    plain = optimizers.create(name, **hp)
    step_p = jax.jit(lambda x, y, s: projected.update(game, x, y, s))
    step = jax.jit(lambda x, y, s: plain.update(game, x, y, s))
    x, y, s = x0, y0, projected.init(x0, y0)
    hx, hy, hs = x0, y0, plain.init(x0, y0)
    active = False
    for _ in range(3):
        x, y, s, info = step_p(x, y, s)
        if name == "altgd":
            hx, hy = _hand_altgd(game, hx, hy, 0.3, 2)
        elif name == "extragradient":
            hx, hy = _hand_extragradient(game, hx, hy, 0.3)
        else:  # projection after the one update: the plain update, then P
            nx, ny, hs, _ = step(hx, hy, hs)
            active |= not np.allclose(np.concatenate(
                [np.ravel(a) for a in jax.tree.leaves((nx, ny))]), np.concatenate(
                [np.ravel(a) for a in jax.tree.leaves((_px(nx), _py(ny)))]))
            hx, hy = _px(nx), _py(ny)
        _close((x, y), (hx, hy), rtol=1e-10, atol=1e-13)
        assert float(small_gan.max_abs(x)) <= CX and float(small_gan.max_abs(y)) <= CY
    if name not in ("altgd", "extragradient"):
        assert active
    # The logged update is the step taken, projection included.
    np.testing.assert_allclose(info["param_norm_y"], optax.tree.norm(y), rtol=1e-12)


def test_clip_leaves_mixture_logits_alone():
    params = {"components": {"w": jnp.array([[-1.0, 0.5], [0.02, -0.003]])},
              "mixture_logits": {"logits": jnp.array([3.0, -2.0])}}
    clipped = penalties.weight_clip(0.01)(params)
    np.testing.assert_array_equal(clipped["components"]["w"],
                                  np.float32([[-0.01, 0.01], [0.01, -0.003]]))
    np.testing.assert_array_equal(clipped["mixture_logits"]["logits"], [3.0, -2.0])


@pytest.mark.parametrize("c", [0.0, -0.01, "0.01", True, None])
def test_weight_clip_needs_a_positive_bound(c):
    with pytest.raises(ValueError, match="c > 0"):
        penalties.weight_clip(c)


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_projection_must_be_callable(name):
    with pytest.raises(ValueError, match="project_y must be None or a function"):
        optimizers.create(name, **HYPERPARAMETERS[name], project_y=0.01)


def test_image_config_weight_clip_becomes_the_critic_projection(x64):
    from gan_dynamics.runners import train_config

    config = train_config.default_config()
    config.optimizer = train_config.adam_altgd(lr=0.5, b1=0.5, b2=0.9, n_disc=2)
    game = small_gan.make_game(jax.random.key(1))
    px, py = small_gan.init_params()
    for clip, inside in ((0.01, True), (0.0, False)):
        train_config.set_loss(config, "wgan", weight_clip=clip)
        opt, n_sub = train_config.build_optimizer(config)
        assert n_sub == 3
        _, new_y, _, _ = opt.update(game, px, py, opt.init(px, py))
        assert (float(small_gan.max_abs(new_y)) <= 0.01) == inside


def test_synthetic_wgan_clip_clips_and_wgan_does_not():
    from experiments import synthetic_manifold
    from gan_dynamics.runners import synthetic_train

    def final_critic(model, **overrides):
        config = synthetic_manifold.get_config()
        config.update(dict(dim=3, hidden=4, batch=4, steps=3, log_every=1, model=model,
                           **overrides))
        config.optimizer.lr = 0.1
        config.optimizer.n_disc = 3
        fns = synthetic_train.make_run_fns(config)
        lr = jnp.float32(0.1)
        state, _ = fns.init(synthetic_train.seed_key(0, 0), lr)
        for t in range(3):
            state, _ = jax.jit(fns.step)(state, jnp.int32(t), lr)
        return float(small_gan.max_abs(state.params_y))

    assert final_critic("wgan_clip") <= 0.01
    assert final_critic("wgan_clip", weight_clip=0.2) > 0.01
    assert final_critic("wgan") > 0.2
    config = synthetic_manifold.get_config()
    config.update(dict(model="wgan_clip", weight_clip=0.0))
    with pytest.raises(ValueError, match="clips the critic"):
        synthetic_train.validate(config)
