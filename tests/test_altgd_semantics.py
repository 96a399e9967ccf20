"""AltGD evaluates only what the stepping player needs and carries model state.

The generator step runs G and D(G(z)) alone (`Game.loss_x`), so it costs fewer FLOPs than
an evaluation of the whole game (D on real data, the penalty) yet takes the same step;
batch statistics pass from each critic step to the next and on to the generator step.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics import objectives, optimizers, penalties
from gan_dynamics.game import Game
from gan_dynamics.optimizers.altgd import player_step
from gan_dynamics.optimizers.transforms import make_transform
from tests import small_gan

SGD = {"name": "sgd", "lr": 0.1}


def whole_game_steps(game: Game) -> Game:
    """`game` as AltGD saw it before per-player losses: every step evaluates the whole
    game (`losses`) and every substep starts from the step's initial model state."""
    substep = None if game.substep is None else (lambda i: whole_game_steps(game.substep(i)))
    return Game(game.losses, game.zero_sum, substep)


def _close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15), a, b)


def _flops(fn, *args) -> float:
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])


@pytest.mark.parametrize("loss,penalty", [("wgan", "wgan_gp"), ("non_saturating", "none")])
def test_generator_step_is_the_same_step_for_fewer_flops(x64, loss, penalty):
    px, py = small_gan.init_params()
    tx = make_transform({"name": "adam", "lr": 1e-2})
    state = tx.init(px)
    made = None if penalty == "none" else penalties.make_penalty(penalty)
    game = small_gan.make_game(jax.random.key(0), loss=loss, penalty=made)
    unpenalised = small_gan.make_game(jax.random.key(0), loss=loss)

    def gen_step(g):
        return lambda px, py, s: player_step(tx, "x", g, px, py, s)

    new = jax.jit(gen_step(game))(px, py, state)
    old = jax.jit(gen_step(whole_game_steps(game)))(px, py, state)
    _close(new[:2], old[:2])  # same parameters and Adam state
    _close(new[2][1], old[2][1])  # same gradient
    flops_new = _flops(gen_step(game), px, py, state)
    flops_whole = _flops(gen_step(whole_game_steps(game)), px, py, state)
    flops_unpenalised = _flops(gen_step(whole_game_steps(unpenalised)), px, py, state)
    # No D on real data: cheaper than even the unpenalised whole game, and the penalty
    # no longer counts at all.
    assert flops_new < flops_unpenalised <= flops_whole
    if made is not None:
        assert flops_unpenalised < flops_whole


def test_generator_loss_differs_from_f_by_a_constant_in_the_generator(x64):
    """f' = f up to the real-data term: for WGAN f' = -E D(G(z)), f = E D(x) - E D(G(z))."""
    px, py = small_gan.init_params()
    game = small_gan.make_game(jax.random.key(2), loss="wgan")
    real, z, _ = small_gan.batch_fn(jax.random.key(2))(0)
    f_prime, aux = game.loss_x(px, py)
    (f, _), full = game.losses(px, py)
    np.testing.assert_allclose(f_prime, -jnp.mean(small_gan.critic(py, small_gan.generator(px, z))),
                               rtol=1e-14)
    np.testing.assert_allclose(f - f_prime, jnp.mean(small_gan.critic(py, real)), rtol=1e-13)
    assert set(aux.metrics) == {"d_fake"}
    np.testing.assert_allclose(aux.metrics["d_fake"], full.metrics["d_fake"], rtol=1e-14)
    for name in objectives.LOSSES:  # every loss: same gradient in x as its f
        g = small_gan.make_game(jax.random.key(2), loss=name)
        grad_own = jax.grad(lambda x: g.loss_x(x, py)[0])(px)
        grad_f = jax.grad(lambda x: g.losses(x, py)[0][0])(px)
        _close(grad_own, grad_f)


class BatchNormCritic(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        h = nn.BatchNorm(use_running_average=not train, momentum=0.5,
                         param_dtype=jnp.float64)(nn.Dense(4, param_dtype=jnp.float64)(x))
        return nn.Dense(1, param_dtype=jnp.float64)(jnp.tanh(h))[:, 0]


@pytest.mark.parametrize("order", ["disc_first", "gen_first"])
def test_batch_norm_altgd_same_parameters_statistics_carried(x64, order):
    """Train-mode batch norm normalises by the batch: parameters equal the whole-game
    AltGD's exactly; only the running statistics differ, now carried step to step."""
    critic = BatchNormCritic()
    px, _ = small_gan.init_params()
    variables = critic.init(jax.random.key(1), jnp.zeros((1, small_gan.DIM)), train=False)
    py, stats = variables["params"], {"batch_stats": variables["batch_stats"]}
    opt = optimizers.create("altgd", transform_x=SGD, transform_y=SGD, n_disc=3, order=order,
                            project_y=penalties.weight_clip(0.3))
    game = small_gan.make_game(jax.random.key(3), penalty=penalties.make_penalty("wgan_gp"),
                               discriminate=objectives.linen_apply(critic, train=True),
                               state_y=stats)
    new = jax.jit(lambda px, py: opt.update(game, px, py, opt.init(px, py)))(px, py)
    old = jax.jit(lambda px, py: opt.update(whole_game_steps(game), px, py,
                                            opt.init(px, py)))(px, py)
    _close(new[:3], old[:3])
    mean = lambda info: info["aux"].state_y["batch_stats"]["BatchNorm_0"]["mean"]  # noqa: E731
    assert not np.allclose(mean(new[3]), mean(old[3]))


@pytest.mark.parametrize("order", ["disc_first", "gen_first"])
def test_model_state_passes_through_every_substep(order):
    """Counting states (+1 per network call): critic steps call G once and D twice (real,
    fake; the penalty's critic keeps its state), the generator step G and D once each."""
    n_disc = 3
    counting = lambda apply: lambda p, s, inputs: (apply(p, inputs), s + 1)  # noqa: E731
    px, py = small_gan.init_params(dtype=jnp.float32)
    game = small_gan.make_game(
        jax.random.key(4), penalty=penalties.make_penalty("wgan_gp"),
        generate=counting(small_gan.generator), discriminate=counting(small_gan.critic),
        state_x=jnp.int32(100), state_y=jnp.int32(200), dtype=jnp.float32)
    opt = optimizers.create("altgd", transform_x=SGD, transform_y=SGD, n_disc=n_disc,
                            order=order)
    info = jax.jit(lambda px, py: opt.update(game, px, py, opt.init(px, py))[3])(px, py)
    assert int(info["aux"].state_x) == 100 + n_disc + 1
    assert int(info["aux"].state_y) == 200 + 2 * n_disc + 1
    # The last critic step's aux: after gen_first's generator step and all critic steps.
    last_y = 200 + 2 * n_disc + (1 if order == "gen_first" else 0)
    assert int(info["aux_y"].state_y) == last_y


def test_logged_losses_come_from_the_steps_that_computed_them(x64):
    """g, d_real, penalty: the last critic step; f: the generator step (f' of its loss)."""
    px, py = small_gan.init_params()
    key = jax.random.key(5)
    penalty = penalties.make_penalty("wgan_gp")
    game = small_gan.make_game(key, penalty=penalty)
    opt = optimizers.create("altgd", transform_x=SGD, transform_y=SGD, n_disc=2)
    new_x, new_y, _, info = jax.jit(lambda px, py: opt.update(game, px, py,
                                                               opt.init(px, py)))(px, py)

    y = py
    for i in range(2):
        (_, g_i), aux_i = game.at_substep(i).losses(px, y)
        grad = jax.grad(lambda w: game.at_substep(i).losses(px, w)[0][1])(y)
        y_before, y = y, jax.tree.map(lambda p, d: p - 0.1 * d, y, grad)
    _close(new_y, y)
    np.testing.assert_allclose(info["g"], g_i, rtol=1e-12)
    real_1, _, _ = small_gan.batch_fn(key)(1)
    np.testing.assert_allclose(info["aux_y"].metrics["d_real"],
                               jnp.mean(small_gan.critic(y_before, real_1)), rtol=1e-12)
    np.testing.assert_allclose(info["aux_y"].metrics["penalty"], aux_i.metrics["penalty"],
                               rtol=1e-12)
    _, z_2, _ = small_gan.batch_fn(key)(2)
    np.testing.assert_allclose(info["f"], -jnp.mean(small_gan.critic(y, small_gan.generator(px, z_2))),
                               rtol=1e-12)
