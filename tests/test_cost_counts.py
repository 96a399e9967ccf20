"""Reported costs equal counted evaluations: solver `matvecs` and CGD/ACGD `grad_evals`.

Counters run on the host, called from inside the compiled programs (`jax.debug.callback`),
so every product made inside a while loop or a taken `lax.cond` branch is counted as it
executes, and nothing that is traced but not run is.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gan_dynamics import linalg, optimizers
from gan_dynamics.game import Game
from gan_dynamics.optimizers import cgd as cgd_module
from tests.game_fixtures import random_game, random_params


class Counter:
    """Counts calls of the functions it wraps, at run time."""

    def __init__(self):
        self.calls = 0

    def _increment(self, _):
        self.calls += 1

    def wrap(self, fn):
        def counted(arg, *rest):
            jax.debug.callback(self._increment, jax.tree.leaves(arg)[0])
            return fn(arg, *rest)

        return counted

    def read(self) -> int:
        jax.effects_barrier()
        return self.calls


def _system(n, symmetric, seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    a = m @ m.T + np.eye(n) if symmetric else np.eye(n) + 0.6 * m / np.sqrt(n)
    return jnp.asarray(a), jnp.asarray(rng.normal(size=n))


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("max_iter", [4, 100])
def test_cg_reports_the_products_it_made(x64, warm, max_iter):
    a, b = _system(20, True, 0)
    counter = Counter()
    matvec = counter.wrap(lambda v: a @ v)
    x0 = 0.1 * jnp.ones_like(b) if warm else None
    _, info = jax.jit(lambda b_, x0_: linalg.cg(matvec, b_, x0_, tol=1e-12,
                                                max_iter=max_iter))(b, x0)
    assert int(info.matvecs) == counter.read() == int(info.iterations) + int(warm)


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("restart", [3, 40])
def test_gmres_reports_the_products_it_made(x64, warm, restart):
    """Restarted: one true-residual product per cycle on top of the Arnoldi products."""
    a, b = _system(20, False, 1)
    counter = Counter()
    matvec = counter.wrap(lambda v: a @ v)
    x0 = 0.1 * jnp.ones_like(b) if warm else None
    x, info = jax.jit(lambda b_, x0_: linalg.gmres(matvec, b_, x0_, tol=1e-12, restart=restart,
                                                   max_iter=200))(b, x0)
    assert bool(info.converged)
    np.testing.assert_allclose(a @ x, b, atol=1e-9)
    cycles = -(-int(info.iterations) // restart)  # every cycle but the last runs `restart`
    assert int(info.matvecs) == counter.read() == int(info.iterations) + cycles + int(warm)
    if restart == 3:
        assert cycles > 2


def test_gmres_track_returns_the_second_map_of_its_solution(x64):
    a, b = _system(12, False, 2)
    side = jnp.asarray(np.random.default_rng(3).normal(size=(5, 12)))
    x, info, lx = jax.jit(lambda b_: linalg.gmres(lambda v: (a @ v, side @ v), b_, b_,
                                                  tol=1e-12, restart=4, max_iter=100,
                                                  track=True))(b)
    assert bool(info.converged)
    np.testing.assert_allclose(lx, side @ x, atol=1e-12)


def _counting_game(game: Game, passes: Counter) -> Game:
    """`game` whose losses count their forward evaluations (one per gradient pass)."""

    def losses(px, py):
        jax.debug.callback(passes._increment, jax.tree.leaves(px)[0])
        return game.losses(px, py)

    return game._replace(losses=losses)


@pytest.fixture
def counted_blocks(monkeypatch):
    """CGD's mixed blocks with every product counted."""
    products = Counter()
    original = cgd_module.mixed_blocks

    def counted(game, params_x, params_y):
        grads, dxy_f, dyx_g = original(game, params_x, params_y)
        return linalg.GeneralSumLinearization(grads, products.wrap(dxy_f), products.wrap(dyx_g))

    monkeypatch.setattr(cgd_module, "mixed_blocks", counted)
    return products


@pytest.mark.parametrize(
    "name,zero_sum,solver,restart",
    [("cgd", True, "cg", 20), ("cgd", False, "gmres", 2), ("acgd", True, "cg", 20),
     pytest.param("acgd", False, "gmres", 20, marks=pytest.mark.slow)])
def test_grad_evals_equal_counted_passes_and_products(x64, counted_blocks, name, zero_sum,
                                                      solver, restart):
    """Three steps (cold, then warm starts; ACGD alternates its system under lax.cond)."""
    passes = Counter()
    game = _counting_game(random_game(11, zero_sum), passes)
    px, py = random_params(11)
    opt = optimizers.create(name, lr_x=0.3, lr_y=0.2, tol=1e-13, atol=0.0, max_iter=40,
                            solver=solver, restart=restart)
    step = jax.jit(lambda a, b, s: opt.update(game, a, b, s))
    state = opt.init(px, py)
    for _ in range(3):
        before = passes.read() + counted_blocks.read()
        px, py, state, info = step(px, py, state)
        spent = passes.read() + counted_blocks.read() - before
        assert float(info["grad_evals"]) == spent == 2 + 2 * int(info["solver_matvecs"])
        iterations = int(info["solver_iterations"])
        assert bool(info["solver_converged"]) and iterations > 0
        if restart < iterations:  # several GMRES cycles, each with its true residual
            assert float(info["grad_evals"]) > 4 + 2 * iterations + 2
    assert passes.read() == 3  # one linearisation per step, zero- and general-sum
    assert np.isfinite(ravel_pytree((px, py))[0]).all()
