"""Mixed products and Krylov solvers against dense linear algebra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gan_dynamics import linalg
from tests.game_fixtures import dense_blocks, random_game, random_params


def _tree_system(matrix, b, shapes=((10,), (4, 5))):
    """A dict-pytree view of the dense system `matrix @ v = b`."""
    sizes = [int(np.prod(s)) for s in shapes]

    def to_tree(v):
        parts = jnp.split(v, np.cumsum(sizes)[:-1])
        return {f"p{i}": p.reshape(s) for i, (p, s) in enumerate(zip(parts, shapes))}

    def matvec(tree):
        return to_tree(jnp.asarray(matrix) @ ravel_pytree(tree)[0])

    return matvec, to_tree(jnp.asarray(b))


@pytest.mark.parametrize("zero_sum", [True, False])
def test_mixed_products_equal_hessian_blocks(x64, zero_sum):
    game = random_game(0, zero_sum)
    px, py = random_params(0)
    gx, gy, dxy_f, dyx_g = dense_blocks(game, px, py)
    v = random_params(1)[1]
    u = random_params(2)[0]
    flat = lambda t: np.asarray(ravel_pytree(t)[0])
    if zero_sum:
        lin = linalg.linearize_zero_sum(game, px, py)
        dyx = lambda w: jax.tree.map(jnp.negative, lin.dyx_f(w))  # Dyx g = -Dyx f
    else:
        lin = linalg.linearize_general_sum(game, px, py)
        dyx = lin.dyx_g
    np.testing.assert_allclose(flat(lin.grads.grad_x), gx, atol=1e-12)
    np.testing.assert_allclose(flat(lin.grads.grad_y), gy, atol=1e-12)
    np.testing.assert_allclose(flat(lin.dxy_f(v)), dxy_f @ flat(v), atol=1e-12)
    np.testing.assert_allclose(flat(dyx(u)), dyx_g @ flat(u), atol=1e-12)
    np.testing.assert_allclose(float(lin.grads.aux["f_copy"]), float(lin.grads.f))


def test_cg_solves_spd_pytree_system(x64):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(30, 30))
    a, b = m @ m.T + np.eye(30), rng.normal(size=30)
    matvec, tb = _tree_system(a, b)
    x, info = jax.jit(lambda t: linalg.cg(matvec, t, tol=1e-12, max_iter=200))(tb)
    np.testing.assert_allclose(ravel_pytree(x)[0], np.linalg.solve(a, b), atol=1e-9)
    assert bool(info.converged) and 0 < int(info.iterations) <= 60
    true_residual = np.linalg.norm(a @ np.asarray(ravel_pytree(x)[0]) - b)
    assert float(info.residual_norm) <= 1e-12 * np.linalg.norm(b) * 10
    assert true_residual <= 1e-9


def test_cg_track_accumulates_second_linear_map(x64):
    """track=True returns L x for the L the product computes, equal to applying L to x."""
    rng = np.random.default_rng(2)
    m = rng.normal(size=(30, 30))
    a, b = m @ m.T + np.eye(30), rng.normal(size=30)
    side = rng.normal(size=(7, 30))
    matvec, tb = _tree_system(a, b)
    warm = jax.tree.map(lambda t: 0.1 * jnp.ones_like(t), tb)

    def product(v):
        return matvec(v), jnp.asarray(side) @ ravel_pytree(v)[0]

    x, info, lx = jax.jit(lambda t, w: linalg.cg(product, t, w, tol=1e-12, max_iter=5,
                                                 track=True))(tb, warm)
    assert int(info.iterations) == 5 and not bool(info.converged)  # stopped mid-way
    np.testing.assert_allclose(lx, side @ np.asarray(ravel_pytree(x)[0]), atol=1e-12)
    plain, _ = linalg.cg(matvec, tb, warm, tol=1e-12, max_iter=5)
    np.testing.assert_allclose(ravel_pytree(x)[0], ravel_pytree(plain)[0], atol=0)


def test_cg_warm_start_and_absolute_tolerance(x64):
    rng = np.random.default_rng(1)
    m = rng.normal(size=(30, 30))
    a, b = m @ m.T + np.eye(30), rng.normal(size=30)
    matvec, tb = _tree_system(a, b)
    exact, _ = linalg.cg(matvec, tb, tol=1e-13, max_iter=200)
    _, info = linalg.cg(matvec, tb, exact, tol=1e-10, max_iter=200)
    assert int(info.iterations) == 0 and bool(info.converged)
    _, loose = linalg.cg(matvec, tb, tol=0.0, atol=1e3, max_iter=200)
    assert int(loose.iterations) == 0 and bool(loose.converged)


@pytest.mark.parametrize("diagonal", [np.r_[np.ones(15), -np.ones(15)], np.zeros(30)])
def test_cg_on_indefinite_or_singular_stops_without_nan(x64, diagonal):
    b = np.random.default_rng(2).normal(size=30)
    matvec, tb = _tree_system(np.diag(diagonal), b)
    x, info = linalg.cg(matvec, tb, tol=1e-12, max_iter=50)
    assert not bool(info.converged)
    assert int(info.iterations) < 50
    assert np.isfinite(np.asarray(ravel_pytree(x)[0])).all()
    assert np.isfinite(float(info.residual_norm))


def test_cg_stops_at_max_iter(x64):
    rng = np.random.default_rng(3)
    m = rng.normal(size=(30, 30))
    matvec, tb = _tree_system(m @ m.T + 1e-3 * np.eye(30), rng.normal(size=30))
    _, info = linalg.cg(matvec, tb, tol=1e-14, max_iter=3)
    assert int(info.iterations) == 3 and not bool(info.converged)


@pytest.mark.parametrize("restart", [2, 5, 30])
def test_gmres_solves_nonsymmetric_pytree_system(x64, restart):
    rng = np.random.default_rng(4)
    a = np.eye(30) + 0.2 * rng.normal(size=(30, 30)) / np.sqrt(30)
    b = rng.normal(size=30)
    matvec, tb = _tree_system(a, b)
    solve = jax.jit(lambda t: linalg.gmres(matvec, t, tol=1e-12, restart=restart, max_iter=300))
    x, info = solve(tb)
    np.testing.assert_allclose(ravel_pytree(x)[0], np.linalg.solve(a, b), atol=1e-10)
    assert bool(info.converged) and 0 < int(info.iterations) <= 40
    residual = np.linalg.norm(a @ np.asarray(ravel_pytree(x)[0]) - b)
    np.testing.assert_allclose(float(info.residual_norm), residual, rtol=1e-3, atol=1e-14)


def test_gmres_stagnation_is_reported(x64):
    """Small restarts can stagnate (jax#15837); GMRES must say so, not claim success."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 30)) + 5 * np.eye(30)
    matvec, tb = _tree_system(a, rng.normal(size=30))
    x, info = linalg.gmres(matvec, tb, tol=1e-12, restart=5, max_iter=100)
    assert not bool(info.converged) and int(info.iterations) == 100
    assert np.isfinite(np.asarray(ravel_pytree(x)[0])).all()


def test_gmres_warm_start(x64):
    rng = np.random.default_rng(5)
    a = np.eye(20) + 0.3 * rng.normal(size=(20, 20)) / np.sqrt(20)
    b = rng.normal(size=20)
    matvec, tb = _tree_system(a, b, shapes=((20,),))
    exact, _ = linalg.gmres(matvec, tb, tol=1e-13, max_iter=100)
    _, info = linalg.gmres(matvec, tb, exact, tol=1e-10, max_iter=100)
    assert int(info.iterations) == 0 and bool(info.converged)


def test_solvers_vmap(x64):
    """Solvers batch over right-hand sides (seeds) under vmap."""
    rng = np.random.default_rng(6)
    m = rng.normal(size=(12, 12))
    a = jnp.asarray(m @ m.T + np.eye(12))
    bs = jnp.asarray(rng.normal(size=(4, 12)))
    xs, infos = jax.vmap(lambda b: linalg.cg(lambda v: a @ v, b, tol=1e-12, max_iter=50))(bs)
    np.testing.assert_allclose(xs, np.linalg.solve(np.asarray(a), np.asarray(bs).T).T, atol=1e-9)
    assert infos.iterations.shape == (4,) and bool(infos.converged.all())
    xs, infos = jax.vmap(lambda b: linalg.gmres(lambda v: a @ v, b, tol=1e-12, max_iter=50))(bs)
    np.testing.assert_allclose(xs, np.linalg.solve(np.asarray(a), np.asarray(bs).T).T, atol=1e-9)
