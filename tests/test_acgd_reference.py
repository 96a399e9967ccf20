"""ACGD against the ICR authors' PyTorch ACGD (PyPI `CGDs`), step by step, in float64.

Skipped unless torch and CGDs import (`pip install torch==2.13.0` and
`pip install --no-deps CGDs==0.4.5`). Same game, same start, same hyperparameters and the
reference's stopping rule (squared residual below 1e-12 |b|² or 1e-20): the parameters
must agree to rounding (1e-10) after every step, through the alternation of the y- and x-systems
and the warm starts carried between them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics import optimizers
from gan_dynamics.game import zero_sum_game

torch = pytest.importorskip("torch")
CGDs = pytest.importorskip("CGDs")


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(size=(5, 7)), "w2": rng.normal(size=(5, 6)),
            "qx": rng.normal(size=(7, 7)), "qy": rng.normal(size=(6, 6))}


def _f(w, x, y, lib):
    """f(x, y) = Σ tanh(W1 x) ⊙ (W2 y) + 0.1 xᵀQxQxᵀx - 0.1 yᵀQyQyᵀy; x minimises it."""
    return (lib.sum(lib.tanh(w["w1"] @ x) * (w["w2"] @ y))
            + 0.1 * x @ w["qx"] @ w["qx"].T @ x - 0.1 * y @ w["qy"] @ w["qy"].T @ y)


@pytest.mark.parametrize("lr", [0.05, 0.5])
def test_acgd_equals_cgds_reference(x64, lr):
    w = _weights()
    rng = np.random.default_rng(1)
    x0, y0 = rng.normal(size=7), rng.normal(size=6)
    steps, beta, eps = 6, 0.99, 1e-5

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # CGDs makes its first warm start in the default
    try:
        wt = {k: torch.tensor(v) for k, v in w.items()}
        xt = torch.tensor(x0, requires_grad=True)
        yt = torch.tensor(y0, requires_grad=True)
        reference = CGDs.ACGD(max_params=[yt], min_params=[xt], lr_max=lr, lr_min=lr,
                              beta=beta, eps=eps, tol=1e-12, atol=1e-20)
        want = []
        for _ in range(steps):
            reference.zero_grad()
            reference.step(_f(wt, xt, yt, torch))
            want.append((xt.detach().numpy().copy(), yt.detach().numpy().copy()))
    finally:
        torch.set_default_dtype(default_dtype)

    wj = {k: jnp.asarray(v) for k, v in w.items()}
    game = zero_sum_game(lambda x, y: _f(wj, x, y, jnp))
    opt = optimizers.create("acgd", lr_x=lr, lr_y=lr, beta=beta, eps=eps, tol=1e-6,
                            atol=1e-10, max_iter=50)
    step = jax.jit(lambda x, y, s: opt.update(game, x, y, s))
    x, y = jnp.asarray(x0), jnp.asarray(y0)
    state = opt.init(x, y)
    for t, (want_x, want_y) in enumerate(want):
        x, y, state, info = step(x, y, state)
        assert bool(info["solved_for_y"]) == (t % 2 == 0)  # the reference solves y first
        np.testing.assert_allclose(x, want_x, rtol=1e-9, atol=1e-10, err_msg=f"step {t}")
        np.testing.assert_allclose(y, want_y, rtol=1e-9, atol=1e-10, err_msg=f"step {t}")
