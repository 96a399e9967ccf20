"""Diagnostics of game dynamics against dense linear algebra and closed forms (float64).

Krylov-Schur Arnoldi and Lanczos (matrix-free, on J u products) must give the same
eigenvalues as numpy's dense `eig` of `jax.jacfwd` of the field; the Dirac-GAN's
eigenvalues at its equilibrium have a closed form; the path-angle cosine is checked by
hand on the ICR quadratic game.
"""

import importlib.util
import json
import os
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_dynamics import objectives, toy_games
from gan_dynamics.diagnostics import (
    analysis,
    field,
    path_angle,
    report,
    spectrum,
)
from gan_dynamics.errors import UserError
from gan_dynamics.runners import image_diagnostics as hooks


def _match(found, expected, atol):
    """Every expected eigenvalue has a distinct found one within atol (order-free)."""
    found = list(np.asarray(found))
    for lam in np.asarray(expected):
        dist = [abs(lam - mu) for mu in found]
        i = int(np.argmin(dist))
        assert dist[i] <= atol, (lam, found)
        found.pop(i)


TOY_CASES = [
    ("bilinear", {"dim": 3, "alpha": 1.5, "x0": 0.3, "y0": -0.2}),
    ("icr_quadratic", {}),
    ("dirac_gan", {"r1_gamma": 0.3}),
    ("dirac_gan", {"loss": "non_saturating", "theta0": 0.7, "psi0": -0.4}),
    ("covariance", {"dim": 3}),
]


def _toy(name, kwargs):
    problem = toy_games.make(name, **kwargs)
    px, py = problem.initial(jax.random.key(0))
    return problem.game, px, py


@pytest.mark.parametrize("name,kwargs", TOY_CASES)
def test_arnoldi_equals_dense_eig_on_toy_games(x64, name, kwargs):
    game, px, py = _toy(name, kwargs)
    jacobian = np.asarray(toy_games.field_jacobian(game, px, py))
    n = jacobian.shape[0]
    dense = np.linalg.eigvals(jacobian)
    # the whole spectrum (ties in every criterion are then harmless)
    result = analysis.field_spectrum(game, px, py, k=n, which="LM", ncv=n, tol=1e-12)
    assert bool(result.converged)
    _match(result.eigenvalues, dense, 1e-8)
    # and the agreement with the dense Jacobian of analysis.dense_spectrum
    _, all_eigs = analysis.dense_spectrum(game, px, py)
    _match(all_eigs, dense, 1e-10)


@pytest.mark.parametrize("name,kwargs", TOY_CASES)
def test_decomposition_equals_dense_on_toy_games(x64, name, kwargs):
    game, px, py = _toy(name, kwargs)
    jacobian = toy_games.field_jacobian(game, px, py)
    expected = analysis.dense_decomposition_norms(jacobian)
    got = analysis.decomposition_norms(game, px, py, exact=True, tol=1e-12)
    for key in ("sym_fro", "antisym_fro", "sym_spectral", "antisym_spectral"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-8, atol=1e-12)
    assert int(got["jvps"]) >= 2 * jacobian.shape[0]


def test_hutchinson_estimates_the_frobenius_norms(x64):
    game, px, py = _toy("covariance", {"dim": 4})
    expected = analysis.dense_decomposition_norms(toy_games.field_jacobian(game, px, py))
    got = analysis.decomposition_norms(game, px, py, num_samples=4000, spectral=False)
    for key in ("sym_fro", "antisym_fro"):
        np.testing.assert_allclose(got[key], expected[key], rtol=0.05)
    assert int(got["jvps"]) == 8000


def test_bilinear_game_is_pure_rotation(x64):
    game, px, py = _toy("bilinear", {"dim": 2, "alpha": 2.0})
    n = 4
    result = analysis.field_spectrum(game, px, py, k=n, which="LM", ncv=n, tol=1e-12)
    _match(result.eigenvalues, [2j, 2j, -2j, -2j], 1e-10)
    norms = analysis.decomposition_norms(game, px, py, exact=True)
    assert float(norms["sym_fro"]) == pytest.approx(0.0, abs=1e-12)
    assert float(norms["antisym_spectral"]) == pytest.approx(2.0, rel=1e-10)
    rotating = spectrum.rotation_dominated(spectrum.dense_eigenvalues(
        toy_games.field_jacobian(game, px, py)), 2)
    np.testing.assert_allclose(np.abs(rotating.real), 0.0, atol=1e-12)


@pytest.mark.parametrize("gamma", [None, 0.3, 1.0, 2.5])
def test_dirac_gan_eigenvalues_at_equilibrium_match_closed_form(x64, gamma):
    # v = (∂θ L, −∂ψ L + γψ) with L = φ(ψθ) + φ(0): at (0, 0) J = [[0, c], [−c, γ]],
    # c = φ'(0) = 1/2, so λ = γ/2 ± sqrt(γ²/4 − c²) (Mescheder et al. 2018, Sec. 2.2 and
    # 4.1; their update field is −v, whose eigenvalues are −λ). Without R1: λ = ±i c.
    problem = toy_games.dirac_gan(r1_gamma=gamma, theta0=0.0, psi0=0.0)
    px, py = problem.initial(jax.random.key(0))
    g = 0.0 if gamma is None else gamma
    root = np.sqrt(complex(g**2 / 4 - 0.25))
    expected = [g / 2 + root, g / 2 - root]
    result = analysis.field_spectrum(problem.game, px, py, k=2, which="LM", ncv=2, tol=1e-14)
    # γ = 1 is critical damping: a double eigenvalue of a Jordan block, which any eig
    # (numpy's too) resolves to about sqrt(machine epsilon) only
    _match(result.eigenvalues, expected, 1e-7 if gamma == 1.0 else 1e-12)
    if gamma is None:
        np.testing.assert_allclose(np.asarray(result.eigenvalues).real, 0.0, atol=1e-14)
        np.testing.assert_allclose(np.sort(np.asarray(result.eigenvalues).imag), [-0.5, 0.5])


# ----------------------------------------------------------- a small MLP GAN


class _MLP(nn.Module):
    widths: tuple

    @nn.compact
    def __call__(self, x):
        for w in self.widths[:-1]:
            x = jnp.tanh(nn.Dense(w)(x))
        return nn.Dense(self.widths[-1])(x)


def _mlp_gan(loss: str, penalty=None):
    gen, disc = _MLP((4, 2)), _MLP((4, 1))
    kx, ky, kr, kz = jax.random.split(jax.random.key(3), 4)
    real = jax.random.normal(kr, (16, 2)) * 0.5 + 1.0
    z = jax.random.normal(kz, (16, 3))
    # flax creates float32 parameters whatever the x64 setting: compare in float64
    to64 = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float64), tree)
    px = to64(gen.init(kx, z)["params"])
    py = to64(disc.init(ky, real)["params"])
    game = objectives.make_gan_game(
        loss, objectives.stateless(lambda p, x: gen.apply({"params": p}, x)),
        objectives.stateless(lambda p, x: disc.apply({"params": p}, x)), real, z,
        jax.random.key(4), penalty=penalty)
    return game, px, py


MLP_CASES = [("minimax", None), ("non_saturating", "gan_gp")]


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("loss,penalty", MLP_CASES)
def test_arnoldi_equals_dense_on_mlp_gan(x64, loss, penalty):
    from gan_dynamics.penalties import make_penalty

    game, px, py = _mlp_gan(loss, None if penalty is None else make_penalty(penalty, weight=1.0))
    fg = field.flat_game(game, px, py)
    dense = np.linalg.eigvals(np.asarray(field.dense_jacobian(fg)))
    k = 6
    for which in ("LM", "LR"):
        result = jax.jit(lambda a, b, w=which: analysis.field_spectrum(
            game, a, b, k=k, which=w, ncv=20, tol=1e-12, max_restarts=300))(px, py)
        assert bool(result.converged), which
        # the k-th and (k+1)-th may be a conjugate pair: compare the first k-1
        _match(result.eigenvalues, spectrum.select(dense, k - 1, which), 1e-8)
        assert int(result.matvecs) > 20  # it restarted


def test_arpack_reference_equals_dense_on_mlp_gan(x64):
    game, px, py = _mlp_gan("minimax")
    fg = field.flat_game(game, px, py)
    dense = np.linalg.eigvals(np.asarray(field.dense_jacobian(fg)))
    _, jvp = field.jitted_linearization(fg)
    ref = spectrum.arpack_eigs(lambda u: field.apply_map(jvp, jnp.asarray(u)), fg.n, k=6,
                               which="LM", tol=1e-12)
    _match(ref.eigenvalues, spectrum.select(dense, 5, "LM"), 1e-8)
    assert ref.matvecs > 0


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("loss,penalty", MLP_CASES)
def test_lanczos_player_hessians_equal_dense(x64, loss, penalty):
    from gan_dynamics.penalties import make_penalty

    game, px, py = _mlp_gan(loss, None if penalty is None else make_penalty(penalty, weight=1.0))
    curvature = jax.jit(lambda a, b: analysis.player_curvature(
        game, a, b, k=4, ncv=10, tol=1e-12, max_restarts=300))(px, py)
    assert bool(curvature["converged"])
    hxx, hyy = field.dense_player_hessians(game, px, py)
    ex, ey = np.linalg.eigvalsh(np.asarray(hxx)), np.linalg.eigvalsh(np.asarray(hyy))
    np.testing.assert_allclose(curvature["hess_x_min"], ex[0], atol=1e-8)
    np.testing.assert_allclose(curvature["hess_x_max"], ex[-1], atol=1e-8)
    np.testing.assert_allclose(curvature["hess_y_min"], ey[0], atol=1e-8)
    np.testing.assert_allclose(curvature["hess_y_max"], ey[-1], atol=1e-8)
    _match(curvature["hess_x_eigenvalues"], [ex[0], ex[1], ex[-2], ex[-1]], 1e-8)


def test_classify_point():
    assert analysis.classify_point(0.1, 2.0, 0.0, 1.0) == "local_nash"
    assert analysis.classify_point(-0.5, 2.0, 0.3, 1.0) == "saddle"
    assert analysis.classify_point(-2.0, -0.1, 0.3, 1.0) == "neither"
    # the ICR quadratic x² + 10xy + y², x min, y max (g = −f): ∇²yy g = −2 < 0
    game, px, py = _toy("icr_quadratic", {})
    c = analysis.player_curvature(game, px, py, k=1)
    assert analysis.classify_point(*(float(c[k]) for k in
                                     ("hess_x_min", "hess_x_max", "hess_y_min",
                                      "hess_y_max"))) == "neither"


@pytest.mark.parametrize("loss,penalty", MLP_CASES)
def test_cgd_system_spectrum_equals_dense(x64, loss, penalty):
    from gan_dynamics.penalties import make_penalty

    game, px, py = _mlp_gan(loss, None if penalty is None else make_penalty(penalty, weight=1.0))
    fg = field.flat_game(game, px, py)
    jac = np.asarray(field.dense_jacobian(fg))
    n_x = fg.n_x
    rng = np.random.default_rng(0)
    # ACGD-like per-coordinate step sizes
    eta_x_flat = rng.uniform(0.5, 2.0, n_x)
    eta_y_flat = rng.uniform(0.5, 2.0, fg.n - n_x)
    unravel_x = jax.flatten_util.ravel_pytree(px)[1]
    unravel_y = jax.flatten_util.ravel_pytree(py)[1]
    eta_x, eta_y = unravel_x(jnp.asarray(eta_x_flat)), unravel_y(jnp.asarray(eta_y_flat))
    # M's eigenvalues cluster near 1 (tiny gaps): a tolerance of 1e-9 suffices for 1e-7
    p = np.diag(np.sqrt(eta_x_flat))
    m = np.eye(n_x) - p @ jac[:n_x, n_x:] @ np.diag(eta_y_flat) @ jac[n_x:, :n_x] @ p
    got = jax.jit(lambda a, b: analysis.cgd_system_spectrum(
        game, a, b, eta_x, eta_y, tol=1e-9, ncv=10, max_restarts=500))(px, py)
    assert bool(got["converged"])
    if game.zero_sum:
        np.testing.assert_allclose(m, m.T, atol=1e-12)
        ev = np.linalg.eigvalsh(m)
        assert ev[0] >= 1 - 1e-12  # SPD: I + P Dxy η Dxyᵀ P
    else:
        ev = np.linalg.svd(m, compute_uv=False)[::-1]
    np.testing.assert_allclose([got["cgd_min"], got["cgd_max"]], [ev[0], ev[-1]], rtol=1e-7)
    np.testing.assert_allclose(got["cgd_cond"], ev[-1] / ev[0], rtol=1e-7)


def test_path_angle_equals_hand_computation_on_quadratic_game(x64):
    # f = x² + 10xy + y², x min, y max: v = (2x + 10y, −(10x + 2y))
    game, _, _ = _toy("icr_quadratic", {})
    start = (jnp.array([1.0]), jnp.array([2.0]))
    end = (jnp.array([-1.0]), jnp.array([0.5]))
    alphas = jnp.array([-0.5, 0.0, 0.25, 1.0, 1.5])
    curves = path_angle.path_angle(game, start, end, alphas)
    d = np.array([-2.0, -1.5])
    for i, a in enumerate(np.asarray(alphas)):
        x, y = 1.0 + a * d[0], 2.0 + a * d[1]
        v = np.array([2 * x + 10 * y, -(10 * x + 2 * y)])
        f = x**2 + 10 * x * y + y**2
        np.testing.assert_allclose(curves.f[i], f, rtol=1e-12)
        np.testing.assert_allclose(curves.g[i], -f, rtol=1e-12)
        np.testing.assert_allclose(curves.field_norm[i], np.linalg.norm(v), rtol=1e-12)
        np.testing.assert_allclose(curves.cosine[i], v @ d / np.linalg.norm(v) / np.linalg.norm(d),
                                   rtol=1e-12)
        np.testing.assert_allclose(curves.cosine_x[i], np.sign(v[0] * d[0]), rtol=1e-12)
        np.testing.assert_allclose(curves.cosine_y[i], np.sign(v[1] * d[1]), rtol=1e-12)


def test_krylov_schur_restarts_on_a_large_random_matrix(x64):
    rng = np.random.default_rng(0)
    n = 200
    a = rng.standard_normal((n, n)) / np.sqrt(n) + np.diag(np.linspace(0, 3, n))
    aj = jnp.asarray(a)
    dense = np.linalg.eigvals(a)
    for which in ("LR",):
        result = jax.jit(lambda v, w=which: spectrum.krylov_schur(
            lambda u: aj @ u, v, k=6, which=w, ncv=20, tol=1e-10, max_restarts=200))(
            jnp.asarray(rng.standard_normal(n)))
        assert bool(result.converged) and int(result.restarts) > 0
        _match(result.eigenvalues, spectrum.select(dense, 5, which), 1e-8)
        ref = spectrum.arpack_eigs(lambda u: a @ u, n, k=6, which=which, ncv=20, tol=1e-10)
        _match(ref.eigenvalues, spectrum.select(dense, 5, which), 1e-8)


def test_krylov_schur_leaves_an_invariant_subspace_the_start_vector_spans(x64):
    # v0 lies in a 2-dimensional invariant subspace: the third Arnoldi vector is zero
    # and must be replaced by a random direction orthogonal to the basis, or the
    # eigenvalues outside that subspace are never found.
    eigenvalues = np.array([5.0, -4.0, 3.0, 2.5, -2.0, 1.0, 0.5, 0.25])
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    a = jnp.asarray(q @ np.diag(eigenvalues) @ q.T)
    v0 = jnp.asarray(q[:, 0] + q[:, 1])
    result = jax.jit(lambda v: spectrum.krylov_schur(lambda u: a @ u, v, k=4, which="LM",
                                                     ncv=6, tol=1e-10))(v0)
    assert bool(result.converged)
    _match(result.eigenvalues, [5.0, -4.0, 3.0, 2.5], 1e-8)


def test_bad_arguments_fail_with_a_message():
    with pytest.raises(ValueError, match="which"):
        spectrum.krylov_schur(lambda u: u, jnp.ones(5), k=2, which="XX")
    with pytest.raises(ValueError, match="ncv"):
        spectrum.krylov_schur(lambda u: u, jnp.ones(5), k=4, ncv=3)


# ------------------------------------------------------------ report, hooks, script


class _State(NamedTuple):
    params_x: Any
    params_y: Any


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_point_diagnostics_report(x64):
    game, px, py = _mlp_gan("minimax")
    options = report.Options(k=3, which=("LM",), ncv=12, tol=1e-10, decomposition=False,
                             path_points=5, dense_max=100)
    diag = report.PointDiagnostics(lambda state: game, options,
                                   step_sizes=lambda state: (0.5, 0.5, "x"))
    start = _State(jax.tree.map(lambda a: 0.5 * a, px), jax.tree.map(lambda a: 0.5 * a, py))
    result = diag.compute(_State(px, py), start=start)
    json.dumps(result)  # JSON-ready
    dense = np.asarray(result["dense"]["eigenvalues"]["re"]) + 1j * np.asarray(
        result["dense"]["eigenvalues"]["im"])
    lm = result["eigenvalues"]["largest_magnitude"]
    _match(np.asarray(lm["re"][:2]) + 1j * np.asarray(lm["im"][:2]),
           spectrum.select(dense, 2, "LM"), 1e-8)
    assert result["jvps"] == lm["jvps"] + result["hessian"]["jvps"]
    assert result["cgd_system"]["kind"] == "eigenvalues"
    assert result["cgd_system"]["min"] >= 1 - 1e-9
    assert len(result["path_angle"]["cosine"]) == 5
    scalars = report.scalars(result)
    assert scalars["diag/max_abs_eig"] == pytest.approx(np.max(np.abs(dense)), rel=1e-8)
    assert {"diag/hess_x_min", "diag/hess_y_max", "diag/cgd_cond"} <= set(scalars)


def test_hooks_are_off_by_default_and_check_their_section():
    from gan_dynamics.runners.train_config import default_config

    config = default_config()
    assert hooks.make_eval_hooks(config, exp=None) == []
    config.diagnostics.every = 10
    config.diagnostics.which = "LM,XX"
    with pytest.raises(UserError, match="which"):
        hooks.make_eval_hooks(config, exp=None)
    with pytest.raises(UserError, match="Unknown key"):
        hooks.options_from_section(ml_collections.ConfigDict({"every": 1, "kk": 3}))


def test_diagnose_script_user_errors(tmp_path, capsys):
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments",
                        "diagnose.py")
    spec = importlib.util.spec_from_file_location("diagnose", path)
    diagnose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnose)
    assert diagnose.main([f"--workdir={tmp_path / 'missing'}"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert diagnose.main([f"--workdir={tmp_path}"]) == 2
    assert "config.json" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{not json")
    assert diagnose.main([f"--workdir={tmp_path}"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_acgd_step_sizes_are_those_of_its_next_update():
    """The CGD-system diagnostic's η for ACGD: the optimizer's own next update's, from the
    second moments updated with the current gradient (at step 0 about lr / |g|)."""
    from gan_dynamics import optimizers
    from gan_dynamics.game import gradients
    from tests import small_gan

    lr_x, lr_y, beta, eps = 1e-3, 2e-3, 0.99, 1e-5
    config = ml_collections.ConfigDict({"optimizer": {"name": "acgd", "lr_x": lr_x,
                                                      "lr_y": lr_y, "beta": beta, "eps": eps}})
    opt = optimizers.create("acgd", lr_x=lr_x, lr_y=lr_y, beta=beta, eps=eps)
    game = small_gan.make_game(jax.random.key(0), dtype=jnp.float32)
    px, py = small_gan.init_params(dtype=jnp.float32)
    opt_state = opt.init(px, py)
    State = NamedTuple("State", [("params_x", Any), ("params_y", Any), ("opt_state", Any)])
    step_sizes = hooks.step_sizes_fn(config, lambda state: game)
    for step in range(3):
        eta_x, eta_y, _ = step_sizes(State(px, py, opt_state))
        if step == 0:
            grads = gradients(game, px, py)
            np.testing.assert_allclose(eta_x["w"], lr_x / np.abs(grads.grad_x["w"]), rtol=0.1)
        px, py, opt_state, _ = opt.update(game, px, py, opt_state)
        # what the update solved with: its stored second moments and step count
        used = lambda lr, nu: lr * np.sqrt(1 - beta ** int(opt_state.count)) / (  # noqa: E731
            np.sqrt(np.asarray(nu)) + eps)
        for eta, lr, nu in ((eta_x, lr_x, opt_state.nu_x), (eta_y, lr_y, opt_state.nu_y)):
            jax.tree.map(lambda a, n: np.testing.assert_allclose(a, used(lr, n), rtol=1e-5),
                         eta, nu)
