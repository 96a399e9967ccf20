"""Optimizer states survive an Orbax checkpoint: train k steps, save, restore, continue,
and the run equals the uninterrupted one bit for bit.

Pins what each state must hold: ACGD's second moments, step count (bias correction),
warm starts of both systems and which system the next step solves; OGDA's previous
gradients and step count; extragradient's (empty) state. AltGD's resume is tested through
the image runner (tests/test_train.py).
"""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_dynamics import optimizers
from tests import small_gan

K, M = 3, 3  # steps before the checkpoint, steps after it

CASES = {
    # WGAN: zero-sum, CG; alternating y- and x-systems from the y-system.
    "acgd_cg": ("acgd", dict(lr_x=0.05, lr_y=0.05, max_iter=20), "wgan"),
    # Non-saturating: general-sum, GMRES.
    "acgd_gmres": ("acgd", dict(lr_x=0.05, lr_y=0.05, max_iter=10, restart=5),
                   "non_saturating"),
    "extragradient": ("extragradient", dict(lr_x=0.05, lr_y=0.05), "wgan"),
    "ogda": ("ogda", dict(lr_x=0.05, lr_y=0.05), "wgan"),
}


def _step_fn(opt, loss):
    key = jax.random.key(7)

    @jax.jit
    def step(px, py, state, t):
        game = small_gan.make_game(jax.random.fold_in(key, t), loss=loss)
        px, py, state, info = opt.update(game, px, py, state)
        return px, py, state, {k: v for k, v in info.items() if k != "aux"}

    return step


def _run(step, carry, start, num):
    infos = []
    for t in range(start, start + num):
        *carry, info = step(*carry, t)
        infos.append(info)
    return tuple(carry), infos


def _equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("case", list(CASES))
def test_checkpoint_round_trip_continues_bit_for_bit(x64, tmp_path, case):
    name, hp, loss = CASES[case]
    opt = optimizers.create(name, **hp)
    step = _step_fn(opt, loss)
    px, py = small_gan.init_params()
    start = (px, py, opt.init(px, py))

    full, full_infos = _run(step, start, 0, K + M)

    saved, _ = _run(step, start, 0, K)
    checkpointer = ocp.StandardCheckpointer()
    path = tmp_path / "checkpoint"
    checkpointer.save(path, {"step": K, "params_x": saved[0], "params_y": saved[1],
                             "opt_state": saved[2]})
    checkpointer.wait_until_finished()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                            {"step": K, "params_x": px, "params_y": py,
                             "opt_state": opt.init(px, py)})
    restored = checkpointer.restore(path, abstract)
    assert int(restored["step"]) == K
    carry = (restored["params_x"], restored["params_y"], restored["opt_state"])
    _equal(carry, saved)  # values, dtypes and the state's structure
    assert jax.tree.structure(carry[2]) == jax.tree.structure(saved[2])
    resumed, resumed_infos = _run(step, carry, K, M)

    _equal(resumed, full)
    _equal(resumed_infos, full_infos[K:])
    if name == "acgd":
        state = restored["opt_state"]
        assert int(state.count) == K
        # The y-system first, then alternating: after K = 3 steps the x-system is next.
        assert bool(state.solver.solve_y) is (K % 2 == 0)
        solved = [bool(i["solved_for_y"]) for i in full_infos]
        assert solved == [t % 2 == 0 for t in range(K + M)]
        # Non-trivial pieces to restore (WGAN's critic bias alone has zero gradient).
        for tree in (state.nu_x, state.nu_y, state.solver.warm_x, state.solver.warm_y):
            assert any(np.any(np.asarray(leaf) != 0) for leaf in jax.tree.leaves(tree))
    if name == "ogda":
        assert int(restored["opt_state"].count) == K
