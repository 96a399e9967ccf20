"""First-order game optimizers against closed forms on linear-field games.

On a quadratic game the simultaneous gradient field is affine, ξ(z) = M z + c with
z = (x, y) flattened, and its Jacobian is the constant M; every optimizer's step is then
a short numpy formula. Parameters are dict pytrees so that flattening is exercised.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from gan_dynamics import optimizers
from gan_dynamics.game import Game, general_sum_game, gradients, zero_sum_game

NX, NY = 3, 2
X0 = {"a": np.array([0.3, -0.7]), "b": np.array(0.5)}
Y0 = {"c": np.array([0.2, -0.4])}
LR_X, LR_Y = 0.1, 0.05


def _vec(tree):
    return ravel_pytree(tree)[0]


def _sym(rng, n):
    a = rng.normal(size=(n, n))
    return 0.5 * (a + a.T)


def _linear_game(kind: str, seed: int = 0, scale=None):
    """A quadratic game, its field matrix M and offset c: ξ(z) = M z + c.

    `scale(px, py)`, when given, multiplies the linear terms (for substep tests).
    """
    rng = np.random.default_rng(seed)
    p, q, r = _sym(rng, NX), _sym(rng, NY), _sym(rng, NX)
    a, b = rng.normal(size=(NX, NY)), rng.normal(size=(NY, NX))
    bx, cy = rng.normal(size=NX), rng.normal(size=NY)
    s = (lambda: 1.0) if scale is None else scale

    def f(px, py):
        x, y = _vec(px), _vec(py)
        extra = -0.5 * y @ q @ y if kind == "zero_sum" else 0.3 * jnp.sum(y**3)
        return 0.5 * x @ p @ x + x @ a @ y + s() * bx @ x + extra

    def g(px, py):
        x, y = _vec(px), _vec(py)
        return 0.5 * y @ q @ y + y @ b @ x + s() * cy @ y + 0.5 * x @ r @ x

    if kind == "zero_sum":
        game = zero_sum_game(f)
        m = np.block([[p, a], [-a.T, q]])
        c = np.concatenate([bx, np.zeros(NY)])
    else:
        game = general_sum_game(f, g)
        m = np.block([[p, a], [b, q]])
        c = np.concatenate([bx, cy])
    return game, m, c


def _eta(lr_x, lr_y):
    return np.concatenate([np.full(NX, lr_x), np.full(NY, lr_y)])


def _z0():
    return np.concatenate([_vec(X0), _vec(Y0)])


# Closed forms: z -> z after `steps` steps, for the game ξ(z) = M z + c.
def _simgd(m, c, steps, **_):
    z = _z0()
    for _ in range(steps):
        z = z - _eta(LR_X, LR_Y) * (m @ z + c)
    return z


def _extragradient(m, c, steps, **_):
    z, eta = _z0(), _eta(LR_X, LR_Y)
    for _ in range(steps):
        z = z - eta * (m @ (z - eta * (m @ z + c)) + c)
    return z


def _ogda(m, c, steps, **_):
    z, eta, prev = _z0(), _eta(LR_X, LR_Y), None
    for _ in range(steps):
        xi = m @ z + c
        z = z - eta * (2 * xi - (xi if prev is None else prev))
        prev = xi
    return z


def _consensus(m, c, steps, gamma):
    z = _z0()
    for _ in range(steps):
        xi = m @ z + c
        z = z - _eta(LR_X, LR_Y) * (xi + gamma * m.T @ xi)
    return z


def _sga(m, c, steps, lam, align=False, align_eps=0.1):
    z = _z0()
    for _ in range(steps):
        xi = m @ z + c
        at_xi = 0.5 * (m.T - m) @ xi
        sign = np.sign((xi @ m.T @ xi) * (at_xi @ m.T @ xi) / (NX + NY) + align_eps)
        z = z - _eta(LR_X, LR_Y) * (xi + lam * (sign if align else 1.0) * at_xi)
    return z


def _altgd(m, c, steps, n_disc):
    z = _z0()
    for _ in range(steps):
        for _ in range(n_disc):
            z[NX:] -= LR_Y * (m @ z + c)[NX:]
        z[:NX] -= LR_X * (m @ z + c)[:NX]
    return z


SGD_X, SGD_Y = {"name": "sgd", "lr": LR_X}, {"name": "sgd", "lr": LR_Y}
CLOSED_FORM_CASES = [
    pytest.param("simgd", dict(transform_x=SGD_X, transform_y=SGD_Y), _simgd, {}, id="simgd"),
    pytest.param("altgd", dict(transform_x=SGD_X, transform_y=SGD_Y, n_disc=3), _altgd,
                 dict(n_disc=3), id="altgd"),
    pytest.param("extragradient", dict(lr_x=LR_X, lr_y=LR_Y), _extragradient, {},
                 id="extragradient"),
    pytest.param("ogda", dict(lr_x=LR_X, lr_y=LR_Y), _ogda, {}, id="ogda"),
    pytest.param("consensus", dict(lr_x=LR_X, lr_y=LR_Y, gamma=0.7), _consensus,
                 dict(gamma=0.7), id="consensus"),
    pytest.param("sga", dict(lr_x=LR_X, lr_y=LR_Y, lam=0.8), _sga, dict(lam=0.8), id="sga"),
    pytest.param("sga", dict(lr_x=LR_X, lr_y=LR_Y, lam=0.8, align=True), _sga,
                 dict(lam=0.8, align=True), id="sga_align"),
]


def _run(opt, game, steps, px=X0, py=Y0):
    """`steps` updates from (px, py): final parameters and the last info."""
    state = opt.init(px, py)
    for _ in range(steps):
        px, py, state, info = opt.update(game, px, py, state)
    return px, py, info


def _scan(opt, game, steps, px=X0, py=Y0):
    """`_run` as one scanned loop (one traced update whatever `steps` is)."""

    def body(carry, _):
        px, py, state, info = opt.update(game, *carry)
        return (px, py, state), info

    (px, py, _), infos = jax.lax.scan(body, (px, py, opt.init(px, py)), length=steps)
    return px, py, jax.tree.map(lambda leaf: leaf[-1], infos)


def _run_jit(opt, game, steps):
    return jax.jit(lambda px, py: _scan(opt, game, steps, px, py))(X0, Y0)


@pytest.mark.parametrize("kind", ["zero_sum", "general_sum"])
@pytest.mark.parametrize("name,hp,closed_form,cf_args", CLOSED_FORM_CASES)
def test_steps_match_closed_form(x64, kind, name, hp, closed_form, cf_args):
    game, m, c = _linear_game(kind)
    opt = optimizers.create(name, **hp)
    # Three steps: OGDA's memory and AltGD's inner loop both matter after the first.
    px, py, info = _run_jit(opt, game, 3)
    np.testing.assert_allclose(
        np.concatenate([_vec(px), _vec(py)]), closed_form(m, c, 3, **cf_args), rtol=1e-12
    )
    assert jax.tree.structure(px) == jax.tree.structure(X0)
    expected_keys = {"f", "g", "grad_norm_x", "grad_norm_y", "update_norm_x",
                     "update_norm_y", "param_norm_x", "param_norm_y", "grad_evals", "aux"}
    if name == "altgd":
        expected_keys.add("aux_y")  # the last critic step's aux
    assert set(info) == expected_keys
    np.testing.assert_allclose(info["param_norm_x"], np.linalg.norm(_vec(px)), rtol=1e-12)


def test_simgd_sgd_is_exactly_gradient_step(x64):
    game, m, c = _linear_game("general_sum")
    opt = optimizers.create("simgd", transform_x=SGD_X, transform_y=SGD_Y)
    # Eagerly: under jit XLA may fuse x - lr*g into one multiply-add (one rounding less).
    px, py, info = _run(opt, game, 1)
    grads = gradients(game, X0, Y0)
    jax.tree.map(lambda p, p0, gr: np.testing.assert_array_equal(p, p0 - LR_X * gr),
                 px, X0, grads.grad_x)
    jax.tree.map(lambda p, p0, gr: np.testing.assert_array_equal(p, p0 - LR_Y * gr),
                 py, Y0, grads.grad_y)
    xi = m @ _z0() + c
    np.testing.assert_allclose(info["grad_norm_x"], np.linalg.norm(xi[:NX]), rtol=1e-14)
    np.testing.assert_allclose(info["update_norm_y"], LR_Y * np.linalg.norm(xi[NX:]), rtol=1e-14)
    assert info["grad_evals"] == 1


@pytest.mark.parametrize("kind", ["zero_sum", "general_sum"])
@pytest.mark.parametrize("order", ["disc_first", "gen_first"])
def test_altgd_substeps_and_updated_discriminator(x64, kind, order):
    """Substep i scales the linear terms by d_i; the base game uses a different scale."""
    n_disc = 2
    scales = jnp.array([1.0, -2.0, 3.5])
    base, m, c = _linear_game(kind, scale=lambda: 10.0)

    def at(i):
        return _linear_game(kind, scale=lambda: scales[i])[0]

    game = Game(base.losses, base.zero_sum, substep=at)
    opt = optimizers.create("altgd", transform_x=SGD_X, transform_y=SGD_Y,
                            n_disc=n_disc, order=order)
    px, py, _, info = jax.jit(lambda px, py: opt.update(game, px, py, opt.init(px, py)))(X0, Y0)

    z = _z0()
    field = lambda z, i: m @ z + float(scales[i]) * c
    disc_substeps = range(n_disc) if order == "disc_first" else range(1, n_disc + 1)
    gen_substep = n_disc if order == "disc_first" else 0
    if order == "gen_first":
        z[:NX] -= LR_X * field(z, gen_substep)[:NX]
    for i in disc_substeps:
        z[NX:] -= LR_Y * field(z, i)[NX:]
    if order == "disc_first":
        gx = field(z, gen_substep)[:NX]  # against the updated discriminator
        z[:NX] -= LR_X * gx
        np.testing.assert_allclose(info["grad_norm_x"], np.linalg.norm(gx), rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([_vec(px), _vec(py)]), z, rtol=1e-12)
    assert info["grad_evals"] == n_disc + 1


def test_altgd_trace_does_not_grow_with_n_disc():
    """Critic steps 2 .. n_disc are one loop body (the first is traced apart from it, as
    it starts from the game's own model state rather than a carried one)."""
    game, _, _ = _linear_game("general_sum")

    def n_equations(n_disc):
        opt = optimizers.create("altgd", transform_x=SGD_X, transform_y=SGD_Y, n_disc=n_disc)
        update = lambda px, py, s: opt.update(game, px, py, s)
        jaxpr = jax.make_jaxpr(update)(X0, Y0, opt.init(X0, Y0))
        return sum(1 for _ in jaxpr.eqns)

    assert n_equations(2) == n_equations(10)


def test_extragradient_uses_substeps_0_and_1(x64):
    scales = jnp.array([1.0, -2.0])
    base, m, c = _linear_game("general_sum", scale=lambda: 10.0)
    game = Game(base.losses, False,
                substep=lambda i: _linear_game("general_sum", scale=lambda: scales[i])[0])
    opt = optimizers.create("extragradient", lr_x=LR_X, lr_y=LR_Y)
    px, py, info = _run_jit(opt, game, 1)
    z, eta = _z0(), _eta(LR_X, LR_Y)
    mid = z - eta * (m @ z + float(scales[0]) * c)
    expected = z - eta * (m @ mid + float(scales[1]) * c)
    np.testing.assert_allclose(np.concatenate([_vec(px), _vec(py)]), expected, rtol=1e-12)
    assert info["grad_evals"] == 2


@pytest.mark.parametrize("name", ["simgd", "altgd"])
def test_adam_specs_match_optax_adam(x64, name):
    game, m, c = _linear_game("general_sum")
    spec_x = {"name": "adam", "lr": 1e-2, "b1": 0.5, "b2": 0.9}
    spec_y = {"name": "adam", "lr": 3e-2, "b1": 0.0, "b2": 0.99, "eps": 1e-6}
    opt = optimizers.create(name, transform_x=spec_x, transform_y=spec_y)
    px, py, _ = _run_jit(opt, game, 4)

    adam_x, adam_y = optax.adam(1e-2, b1=0.5, b2=0.9), optax.adam(3e-2, b1=0.0, b2=0.99, eps=1e-6)
    x, y = jnp.asarray(_vec(X0)), jnp.asarray(_vec(Y0))
    sx, sy = adam_x.init(x), adam_y.init(y)
    for _ in range(4):
        if name == "simgd":
            xi = m @ jnp.concatenate([x, y]) + c
            ux, sx = adam_x.update(xi[:NX], sx)
            uy, sy = adam_y.update(xi[NX:], sy)
            x, y = x + ux, y + uy
        else:
            uy, sy = adam_y.update((m @ jnp.concatenate([x, y]) + c)[NX:], sy)
            y = y + uy
            ux, sx = adam_x.update((m @ jnp.concatenate([x, y]) + c)[:NX], sx)
            x = x + ux
    np.testing.assert_allclose(_vec(px), x, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(_vec(py), y, rtol=1e-13, atol=1e-15)


# name -> learning rate -> optimizer, every hyperparameter traced through lr.
SWEEPABLE = {
    "simgd": lambda lr: optimizers.create(
        "simgd", transform_x={"name": "adam", "lr": lr}, transform_y={"name": "sgd", "lr": 2 * lr}),
    "altgd": lambda lr: optimizers.create(
        "altgd", transform_x={"name": "sgd", "lr": lr}, transform_y={"name": "rmsprop", "lr": lr},
        n_disc=2),
    "extragradient": lambda lr: optimizers.create("extragradient", lr_x=lr, lr_y=2 * lr),
    "ogda": lambda lr: optimizers.create("ogda", lr_x=lr, lr_y=2 * lr),
    "consensus": lambda lr: optimizers.create("consensus", lr_x=lr, lr_y=lr, gamma=10 * lr),
    "sga": lambda lr: optimizers.create("sga", lr_x=lr, lr_y=lr, lam=10 * lr, align=True),
}


@pytest.mark.parametrize("name", sorted(SWEEPABLE))
def test_jit_vmap_over_learning_rates_matches_separate_runs(x64, name):
    game, _, _ = _linear_game("general_sum")
    lrs = jnp.array([0.01, 0.03, 0.1, 0.2])

    def run(lr):
        px, py, info = _scan(SWEEPABLE[name](lr), game, 3)
        return px, py, info["update_norm_x"]

    batched = jax.jit(jax.vmap(run))(lrs)
    run_one = jax.jit(run)
    for k, lr in enumerate(lrs):
        single = run_one(lr)
        jax.tree.map(lambda b, s: np.testing.assert_allclose(b[k], s, rtol=1e-12, atol=1e-14),
                     batched, single)


BILINEAR = {
    "simgd": dict(transform_x={"name": "sgd", "lr": 0.1}, transform_y={"name": "sgd", "lr": 0.1}),
    "extragradient": dict(lr_x=0.1, lr_y=0.1),
    "ogda": dict(lr_x=0.1, lr_y=0.1),
    "consensus": dict(lr_x=0.1, lr_y=0.1, gamma=1.0),
    "sga": dict(lr_x=0.1, lr_y=0.1, lam=1.0),
}
# Per-step modulus of the linear map on f = x y, η = 0.1 (eigenvalues of the iteration).
BILINEAR_RATE = {
    "simgd": np.sqrt(1 + 0.1**2),
    "extragradient": np.sqrt((1 - 0.1**2) ** 2 + 0.1**2),
    "consensus": np.sqrt((1 - 0.1) ** 2 + 0.1**2),
    "sga": np.sqrt((1 - 0.1) ** 2 + 0.1**2),
}


@pytest.mark.parametrize("name", sorted(BILINEAR))
def test_bilinear_simgd_grows_others_contract(x64, name):
    game = zero_sum_game(lambda x, y: x * y)
    opt = optimizers.create(name, **BILINEAR[name])
    step = jax.jit(lambda px, py, s: opt.update(game, px, py, s)[:3])
    px, py = jnp.array(0.5), jnp.array(0.5)
    state = opt.init(px, py)
    for _ in range(100):
        px, py, state = step(px, py, state)
    r0, r = np.sqrt(0.5), float(jnp.hypot(px, py))
    if name == "simgd":
        assert r > 1.6 * r0
    else:
        assert r < 0.65 * r0
    if name in BILINEAR_RATE:
        np.testing.assert_allclose(r, r0 * BILINEAR_RATE[name] ** 100, rtol=1e-10)
    if name == "ogda":  # z_{t+1} = z_t - η(2 J z_t - J z_{t-1}), z_{-1} = z_0
        jac, z, prev = np.array([[0.0, 1.0], [-1.0, 0.0]]), np.array([0.5, 0.5]), None
        for _ in range(100):
            z, prev = z - 0.1 * (2 * jac @ z - jac @ (z if prev is None else prev)), z
        np.testing.assert_allclose(r, np.linalg.norm(z), rtol=1e-10)


def test_sga_alignment_chooses_sign(x64):
    """align_eps dominating the product forces sign +1 or -1: SGA with ±λ."""
    game, _, _ = _linear_game("general_sum")
    base = dict(lr_x=LR_X, lr_y=LR_Y)
    step = jax.jit(lambda lam, eps, align: _run(
        optimizers.create("sga", lam=lam, align=align, align_eps=eps, **base), game, 1, X0, Y0)[:2],
        static_argnums=2)
    plus, minus = step(0.8, 0.0, False), step(-0.8, 0.0, False)
    aligned_plus, aligned_minus = step(0.8, 1e6, True), step(0.8, -1e6, True)
    jax.tree.map(np.testing.assert_array_equal, aligned_plus, plus)
    jax.tree.map(np.testing.assert_array_equal, aligned_minus, minus)
    assert not np.allclose(_vec(plus[0]), _vec(minus[0]))


@pytest.mark.parametrize(
    "name,hp,match",
    [
        ("simgd", dict(transform_y=SGD_Y), "needs transform_x"),
        ("simgd", dict(transform_x="adam", transform_y=SGD_Y), "must be a dict spec"),
        ("simgd", dict(transform_x={"name": "adamw", "lr": 1.0}, transform_y=SGD_Y),
         "Unknown player transform"),
        ("simgd", dict(transform_x=SGD_X, transform_y=SGD_Y, lr=0.1), "does not take"),
        ("altgd", dict(transform_x=SGD_X, transform_y=SGD_Y, n_disc=0), "n_disc=0 must be an integer >= 1"),
        ("altgd", dict(transform_x=SGD_X, transform_y=SGD_Y, n_disc=2.0), "n_disc must be a Python int"),
        ("altgd", dict(transform_x=SGD_X, transform_y=SGD_Y, n_disc=True), "n_disc=True must be an integer >= 1"),
        ("altgd", dict(transform_x=SGD_X, transform_y=SGD_Y, order="simultaneous"),
         "order must be one of"),
        ("extragradient", dict(lr_y=0.1), "lr_x must be a real scalar"),
        ("ogda", dict(lr_x=0.1, lr_y=jnp.ones(3)), "vmap"),
        ("consensus", dict(lr_x=0.1, lr_y=0.1), "gamma must be a real scalar"),
        ("consensus", dict(lr_x=0.1, lr_y=0.1, gamma="1"), "gamma='1' must be a finite number >= 0"),
        ("sga", dict(lr_x=0.1, lr_y=0.1, align="yes"), "align must be True or False"),
        ("sga", dict(lr_x=0.1, lr_y=0.1, lam=1j), "lam=1j must be a finite number >= 0"),
        ("sgda", dict(), "Unknown game optimizer"),
    ],
)
def test_bad_arguments_raise_helpful_errors(name, hp, match):
    with pytest.raises(ValueError, match=match):
        optimizers.create(name, **hp)


def test_optimizers_declare_the_fresh_batches_they_consume():
    """`substeps` tells a training loop how many batches one update reads."""
    sgd = {"name": "sgd", "lr": 0.1}
    assert optimizers.create("altgd", transform_x=sgd, transform_y=sgd, n_disc=3).substeps == 4
    assert optimizers.create("extragradient", lr_x=0.1, lr_y=0.1).substeps == 2
    assert optimizers.create("simgd", transform_x=sgd, transform_y=sgd).substeps == 1
    assert optimizers.create("acgd").substeps == 1
