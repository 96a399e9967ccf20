"""vmap over seeds x learning rates of a scanned toy run: same numbers, one compilation.

The sweep pattern of docs/design.md Sec. 10 (purejaxrl's `jit(vmap(train))`): learning rates are
traced hyperparameters, so 8 seeds x 3 learning rates run as one program, and 24 separate
runs of the jitted single run reuse one compilation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics import optimizers, toy_games
from gan_dynamics.runners import toy_run
from gan_dynamics.runners.toy_run import sgd_players

SEEDS, STEPS = 8, 25
# step sizes at which both optimizers stay finite on each game
LRS = {"bilinear": (0.05, 0.1, 0.2), "covariance": (0.005, 0.01, 0.02)}


def _make_optimizer(name, lr):
    if name == "simgd":
        return optimizers.create("simgd", **sgd_players(lr, lr))
    return optimizers.create("cgd", lr_x=lr, lr_y=lr, tol=1e-10, atol=0.0, max_iter=50)


@pytest.mark.parametrize("game, optimizer", [("bilinear", "cgd"), ("bilinear", "simgd"),
                                             ("covariance", "cgd"), ("covariance", "simgd")])
def test_vmapped_sweep_equals_separate_runs(x64, game, optimizer):
    problem = {
        "bilinear": lambda: toy_games.bilinear(1.5, dim=3, init_noise=0.5),
        "covariance": lambda: toy_games.covariance(dim=4, target_seed=0, init_scale=0.5),
    }[game]()
    traces = []

    def one_run(key, lr):
        traces.append(None)  # runs at trace time only: counts compilations
        px, py = problem.initial(key)
        traj = toy_run.simulate(problem, _make_optimizer(optimizer, lr), px, py, STEPS)
        return traj.distance, traj.info["grad_evals"]

    keys = jax.random.split(jax.random.key(0), SEEDS)
    lrs = jnp.asarray(LRS[game])
    sweep = jax.jit(jax.vmap(jax.vmap(one_run, in_axes=(None, 0)), in_axes=(0, None)))
    dist, cost = sweep(keys, lrs)
    assert dist.shape == (SEEDS, len(lrs), STEPS + 1) and len(traces) == 1
    assert np.all(np.isfinite(dist))
    # different seeds start at different points; different rates give different paths
    assert np.ptp(np.asarray(dist[:, 0, 0])) > 0 and np.ptp(np.asarray(dist[0, :, -1])) > 0

    single = jax.jit(one_run)
    for i in range(SEEDS):
        for j in range(len(lrs)):
            d, c = single(keys[i], lrs[j])
            np.testing.assert_allclose(d, dist[i, j], rtol=1e-10, atol=1e-13)
            np.testing.assert_array_equal(c, cost[i, j])
    assert len(traces) == 2  # one trace for the sweep, one for all 24 single runs
