"""CGD and ACGD against dense solves of the block system (docs/design.md Sec. 4 and 9)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gan_dynamics import optimizers
from gan_dynamics.game import zero_sum_game
from tests.game_fixtures import dense_blocks, dense_competitive_step, random_game, random_params


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


def _step(opt, game, px, py, state=None):
    state = opt.init(px, py) if state is None else state
    return jax.jit(lambda a, b, s: opt.update(game, a, b, s))(px, py, state)


@pytest.mark.parametrize("zero_sum", [True, False])
@pytest.mark.parametrize("solve", ["x", "y"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cgd_equals_dense_block_solve(x64, zero_sum, solve, seed):
    game = random_game(seed, zero_sum)
    px, py = random_params(seed)
    lr_x, lr_y = 0.3, 0.2
    opt = optimizers.create("cgd", lr_x=lr_x, lr_y=lr_y, tol=1e-14, atol=0.0, max_iter=50,
                            solve=solve)
    nx, ny, _, info = _step(opt, game, px, py)
    dx_ref, dy_ref = dense_competitive_step(*dense_blocks(game, px, py), lr_x, lr_y)
    np.testing.assert_allclose(_flat(nx) - _flat(px), dx_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(_flat(ny) - _flat(py), dy_ref, rtol=0, atol=1e-10)
    assert bool(info["solver_converged"])
    assert 0 < int(info["solver_iterations"]) <= 7
    # one linearisation, the right-hand side's product, two per system product: the warm
    # start's residual and each iteration (CG), plus GMRES's true residual after its one
    # cycle (general sum); the reaction product comes free with the solution
    cycles = 0 if zero_sum else 1
    assert float(info["grad_evals"]) == 4 + 2 * int(info["solver_iterations"]) + 2 * cycles


def test_zero_sum_cg_equals_gmres(x64):
    game = random_game(3, zero_sum=True)
    px, py = random_params(3)
    kw = dict(lr_x=0.5, lr_y=0.5, tol=1e-14, atol=0.0, max_iter=50)
    cg_x, cg_y, _, _ = _step(optimizers.create("cgd", solver="cg", **kw), game, px, py)
    gm_x, gm_y, _, _ = _step(optimizers.create("cgd", solver="gmres", **kw), game, px, py)
    np.testing.assert_allclose(_flat(cg_x), _flat(gm_x), atol=1e-11)
    np.testing.assert_allclose(_flat(cg_y), _flat(gm_y), atol=1e-11)


def test_cgd_without_coupling_is_simgd(x64):
    """Dxy = 0: CGD's update is SimGD with SGD, to machine precision."""
    game = zero_sum_game(lambda px, py: jnp.sum(jnp.sin(px["a"]) * px["a"])
                         - jnp.sum(py["c"] ** 2 * jnp.cos(py["d"].sum())))
    px, py = random_params(4)
    lr = 0.07
    cx, cy, _, info = _step(optimizers.create("cgd", lr_x=lr, lr_y=lr), game, px, py)
    sgd = {"name": "sgd", "lr": lr}
    sx, sy, _, _ = _step(optimizers.create("simgd", transform_x=sgd, transform_y=sgd),
                         game, px, py)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(_flat(cx), _flat(sx), rtol=4 * eps, atol=4 * eps)
    np.testing.assert_allclose(_flat(cy), _flat(sy), rtol=4 * eps, atol=4 * eps)
    assert int(info["solver_iterations"]) <= 1


def _dense_acgd_step(game, px, py, nu_x, nu_y, t, lr, beta, eps):
    gx, gy, dxy_f, dyx_g = dense_blocks(game, px, py)
    nu_x = beta * nu_x + (1 - beta) * gx**2
    nu_y = beta * nu_y + (1 - beta) * gy**2
    corr = np.sqrt(1 - beta**t)
    eta_x = lr * corr / (np.sqrt(nu_x) + eps)
    eta_y = lr * corr / (np.sqrt(nu_y) + eps)
    # the symmetric x-system of docs/design.md Sec. 4, solved densely, then the reaction:
    sx = np.sqrt(eta_x)
    a = np.eye(gx.size) - sx[:, None] * dxy_f @ (eta_y[:, None] * dyx_g) * sx[None, :]
    u = np.linalg.solve(a, -sx * (gx - dxy_f @ (eta_y * gy)))
    dx = sx * u
    dy = -eta_y * (gy + dyx_g @ dx)
    return dx, dy, nu_x, nu_y


@pytest.mark.parametrize("zero_sum", [True, False])
def test_acgd_two_steps_equal_dense_closed_form(x64, zero_sum):
    """Step 1 solves the y-system (cold), step 2 the x-system (warm): both equal the closed form."""
    game = random_game(5, zero_sum)
    px, py = random_params(5)
    lr, beta, eps = 0.05, 0.99, 1e-5
    opt = optimizers.create("acgd", lr_x=lr, lr_y=lr, beta=beta, eps=eps, tol=1e-14,
                            atol=0.0, max_iter=60)
    nu_x, nu_y = np.zeros(7), np.zeros(6)
    state = None
    for t, expect_y in ((1, True), (2, False)):
        dx_ref, dy_ref, nu_x, nu_y = _dense_acgd_step(game, px, py, nu_x, nu_y, t, lr, beta, eps)
        state = opt.init(px, py) if state is None else state
        nx, ny, state, info = _step(opt, game, px, py, state)
        assert bool(info["solved_for_y"]) == expect_y
        assert bool(info["solver_converged"])
        np.testing.assert_allclose(_flat(nx) - _flat(px), dx_ref, atol=1e-10, rtol=0)
        np.testing.assert_allclose(_flat(ny) - _flat(py), dy_ref, atol=1e-10, rtol=0)
        np.testing.assert_allclose(_flat(state.nu_x), nu_x, rtol=1e-12)
        px, py = nx, ny
    assert int(state.count) == 2


def test_warm_start_saves_iterations(x64):
    """Re-solving the same system from its own solution takes no iterations."""
    game = random_game(6, zero_sum=True)
    px, py = random_params(6)
    opt = optimizers.create("cgd", lr_x=0.4, lr_y=0.4, tol=1e-10, solve="x")
    state = opt.init(px, py)
    _, _, state, cold = _step(opt, game, px, py, state)
    _, _, _, warm = _step(opt, game, px, py, state)
    assert int(cold["solver_iterations"]) > 0
    assert int(warm["solver_iterations"]) == 0
    assert bool(warm["solver_converged"])


def test_max_iter_reports_unconverged(x64):
    game = random_game(7, zero_sum=False, coupling=5.0)
    px, py = random_params(7)
    opt = optimizers.create("cgd", lr_x=1.0, lr_y=1.0, tol=1e-14, atol=0.0, max_iter=2)
    nx, _, _, info = _step(opt, game, px, py)
    assert int(info["solver_iterations"]) == 2
    assert not bool(info["solver_converged"])
    assert np.isfinite(_flat(nx)).all()


@pytest.mark.parametrize("name", ["cgd", "acgd"])
def test_bad_choices_fail_early(name):
    with pytest.raises(ValueError, match="solve="):
        optimizers.create(name, solve="z")
    with pytest.raises(ValueError, match="solver="):
        optimizers.create(name, solver="lsqr")
    with pytest.raises(ValueError, match="does not take"):
        optimizers.create(name, learning_rate=1.0)


@pytest.mark.parametrize("name", ["cgd", "acgd"])
def test_traced_learning_rates_vmap(name):
    """Learning rates may be traced: vmap over them equals separate runs, one compile."""
    game = random_game(8, zero_sum=True)
    px, py = random_params(8)
    px = jax.tree.map(lambda a: a.astype(jnp.float32), px)
    py = jax.tree.map(lambda a: a.astype(jnp.float32), py)
    traces = []

    def one(lr):
        traces.append(1)
        opt = optimizers.create(name, lr_x=lr, lr_y=lr)
        nx, ny, _, _ = opt.update(game, px, py, opt.init(px, py))
        return nx, ny

    lrs = jnp.array([0.01, 0.05, 0.1], jnp.float32)
    batched = jax.jit(jax.vmap(one))(lrs)
    for i, lr in enumerate(lrs):
        single = jax.jit(one)(lr)
        np.testing.assert_allclose(_flat(jax.tree.map(lambda a: a[i], batched)), _flat(single),
                                   rtol=2e-5, atol=1e-6)
    assert len(traces) == 2  # once for the vmapped program, once for the single one
