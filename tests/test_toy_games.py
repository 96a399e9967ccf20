"""Toy games against closed forms and published numbers (docs/design.md Sec. 9), and the runner."""

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics import optimizers, toy_games
from gan_dynamics.errors import UserError
from gan_dynamics.runners import toy_run
from gan_dynamics.runners.toy_run import sgd_players

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _simulate(problem, optimizer, steps, key=0):
    px, py = problem.initial(jax.random.key(key))
    return jax.jit(lambda x, y: toy_run.simulate(problem, optimizer, x, y, steps))(px, py)


def _cgd(lr_x, lr_y):
    return optimizers.create("cgd", lr_x=lr_x, lr_y=lr_y, tol=1e-13, atol=0.0, max_iter=20)


def _simgd(lr_x, lr_y):
    return optimizers.create("simgd", **sgd_players(lr_x, lr_y))


# ------------------------------------------------------------------------------ bilinear


@pytest.mark.parametrize("alpha, cgd_norm, simgd_norm",
                         [(1.0, 0.26525, 1.885), (3.0, 3.2435e-4, 1542.0),
                          (6.0, 1.4613e-10, 3.42e9)])
def test_bilinear_reference_numbers(x64, alpha, cgd_norm, simgd_norm):
    eta, problem = 0.2, toy_games.bilinear(alpha)
    cgd = _simulate(problem, _cgd(eta, eta), 50)
    np.testing.assert_allclose(cgd.distance[-1], cgd_norm, rtol=1e-4)
    # CGD contracts by exactly (1 + η²α²)^-½ at every step
    ratios = cgd.distance[1:] / cgd.distance[:-1]
    np.testing.assert_allclose(ratios, (1 + eta**2 * alpha**2) ** -0.5, rtol=1e-10)
    simgd = _simulate(problem, _simgd(eta, eta), 50)
    np.testing.assert_allclose(simgd.distance[-1], simgd_norm, rtol=1e-3)
    np.testing.assert_allclose(simgd.distance[1:] / simgd.distance[:-1],
                               (1 + eta**2 * alpha**2) ** 0.5, rtol=1e-10)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_bilinear_cgd_update_matrix(x64):
    eta, alpha = 0.2, 3.0
    game, point = toy_games.bilinear(alpha).game, (jnp.array([0.3]), jnp.array([-0.2]))
    jac = toy_games.update_jacobian(_cgd(eta, eta), game, *point)
    expected = np.array([[1.0, -eta * alpha], [eta * alpha, 1.0]]) / (1 + (eta * alpha) ** 2)
    np.testing.assert_allclose(jac, expected, atol=1e-12)
    np.testing.assert_allclose(toy_games.spectral_radius(jac),
                               (1 + (eta * alpha) ** 2) ** -0.5, rtol=1e-12)


def test_bilinear_vector_game_is_coordinatewise(x64):
    problem = toy_games.bilinear(2.0, dim=3, init_noise=0.1)
    traj = _simulate(problem, _cgd(0.2, 0.2), 10, key=3)
    assert traj.params_x.shape == (11, 3)
    np.testing.assert_allclose(traj.distance[1:] / traj.distance[:-1], (1 + 0.16) ** -0.5,
                               rtol=1e-10)


# ------------------------------------------------------------------------- ICR quadratic


def test_icr_simgd_matrix_closed_form(x64):
    game, zero = toy_games.icr_quadratic().game, jnp.zeros(1)
    for lr_x, lr_y in [(0.09, 0.01), (0.03, 0.03), (0.01, 0.09)]:
        expected = np.array([[1 - 2 * lr_x, -10 * lr_x], [10 * lr_y, 1 + 2 * lr_y]])
        matrix = toy_games.simgd_matrix(game, zero, zero, lr_x, lr_y)
        np.testing.assert_allclose(matrix, expected, atol=1e-15)
        # the SimGD implementation's own linearisation is the same matrix
        jac = toy_games.update_jacobian(_simgd(lr_x, lr_y), game, zero + 0.3, zero - 0.2)
        np.testing.assert_allclose(jac, expected, atol=1e-15)


@pytest.mark.parametrize("lr_x, lr_y, radius", [(0.09, 0.01, 0.962497), (0.03, 0.03, 1.042305),
                                                (0.01, 0.09, 1.116423)])
def test_icr_simgd_spectral_radius_is_the_observed_rate(x64, lr_x, lr_y, radius):
    problem, zero = toy_games.icr_quadratic(), jnp.zeros(1)
    rho = toy_games.spectral_radius(toy_games.simgd_matrix(problem.game, zero, zero, lr_x, lr_y))
    np.testing.assert_allclose(rho, radius, rtol=1e-6)
    steps = 2000
    dist = np.asarray(_simulate(problem, _simgd(lr_x, lr_y), steps).distance)
    observed = (dist[-1] / dist[steps // 2]) ** (1 / (steps - steps // 2))
    np.testing.assert_allclose(observed, rho, rtol=2e-3)
    if lr_x > lr_y:
        assert dist[-1] < 1e-20  # converges
    elif lr_x < lr_y:
        assert dist[-1] > 1e40  # diverges
    else:
        assert 1.0 < rho < 1.05 and dist[200] > 10 * dist[0]  # spirals out slowly


# ----------------------------------------------------------------------------- Dirac-GAN


def test_dirac_gan_linearisation(x64):
    zero = jnp.zeros(1)
    for gamma in [None, 0.0, 1.5]:
        game = toy_games.dirac_gan(r1_gamma=gamma).game
        assert game.zero_sum == (gamma is None)
        jac = toy_games.field_jacobian(game, zero, zero)
        # rows (∇θ f, ∇ψ g): ∂ψ ∇θ f = φ'(0) = 1/2, ∂θ ∇ψ g = -1/2, ∂ψ ∇ψ g = γ
        np.testing.assert_allclose(jac, [[0.0, 0.5], [-0.5, gamma or 0.0]], atol=1e-15)


def test_dirac_gan_known_behaviour(x64):
    problem, lr, steps = toy_games.dirac_gan(), 0.1, 1000
    start = np.sqrt(2.0)
    simgd = np.asarray(_simulate(problem, _simgd(lr, lr), steps).distance)
    assert np.all(np.diff(simgd) > 0) and simgd[-1] > 1.5 * start  # spirals out
    altgd = optimizers.create("altgd", **sgd_players(lr, lr))
    alt = np.asarray(_simulate(problem, altgd, steps).distance)
    assert alt.max() < 1.2 * start and alt.min() > 0.8 * start  # bounded, not converging
    zero = jnp.zeros(1)
    for gamma in [1.5, 3.0]:  # R1 above the critical damping 2φ'(0) = 1: a stable node
        r1_game = toy_games.dirac_gan(r1_gamma=gamma)
        r1 = np.asarray(_simulate(r1_game, _simgd(lr, lr), steps).distance)
        rho = toy_games.spectral_radius(toy_games.simgd_matrix(r1_game.game, zero, zero, lr, lr))
        assert rho < 1 and r1[-1] < 1e-3 * start  # converges, at the linearised rate
        np.testing.assert_allclose(r1[-1] / r1[-2], rho, rtol=1e-4)


def test_dirac_gan_rejects_unknown_loss():
    with pytest.raises(ValueError, match="Unknown Dirac-GAN loss"):
        toy_games.dirac_gan(loss="hinge")


# ---------------------------------------------------------------------------- covariance


def test_covariance_game(x64):
    dim = 5
    problem = toy_games.covariance(dim=dim, target_seed=1)
    u, sigma = toy_games.covariance_target(jax.random.key(1), dim)
    np.testing.assert_allclose(problem.distance(u, jnp.zeros((dim, dim))), 0.0, atol=1e-12)
    # only W's symmetric part plays: an antisymmetric W is at distance 0 too
    skew = jnp.triu(jnp.ones((dim, dim)), 1)
    np.testing.assert_allclose(problem.distance(u, skew - skew.T), 0.0, atol=1e-12)
    v, w = problem.initial(jax.random.key(2))
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(problem.game.f(v, w), jnp.vdot(w, sigma - v @ v.T), rtol=1e-12)
    cgd = _simulate(problem, optimizers.create("cgd", lr_x=0.1, lr_y=0.1, tol=1e-8,
                                               max_iter=100), 300)
    assert cgd.distance[-1] < 0.2 * cgd.distance[0]  # CGD approaches the equilibrium
    simgd = _simulate(problem, _simgd(0.1, 0.1), 300)
    assert not np.isfinite(simgd.distance[-1]) or simgd.distance[-1] > cgd.distance[0]


def test_unknown_game_and_arguments_fail():
    with pytest.raises(ValueError, match="Unknown toy game"):
        toy_games.make("rock_paper_scissors")
    with pytest.raises(ValueError, match="Bad arguments"):
        toy_games.make("bilinear", beta=2.0)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        toy_games.bilinear(dim=0)


# -------------------------------------------------------------------------------- runner


def _load_config(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "experiments",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def test_toy_run_through_entry_point(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("run", os.path.join(REPO, "experiments",
                                                                      "run.py"))
    run_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_module)
    config = _load_config("dirac_gan")
    config.steps = 5
    run_module.resolve_runner(config.runner)(config, str(tmp_path))
    with open(tmp_path / "results.json") as fh:
        saved = json.load(fh)
    assert set(saved["results"]) == set(config.optimizers)
    assert saved["config"]["steps"] == 5
    assert saved["results"]["simgd_r1_1"]["game"]["r1_gamma"] == 1.0
    for row in saved["results"].values():
        assert row["steps"] == 5 and row["grad_evals"] >= 5 and row["diverged"] is False
    assert saved["results"]["cgd"]["solver_iterations"] >= 1
    assert (tmp_path / "trajectories.png").stat().st_size > 0
    assert (tmp_path / "distance.png").stat().st_size > 0
    arrays = np.load(tmp_path / "trajectories.npz")
    assert arrays["simgd/x"].shape == (6,)
    assert "simgd_r1_1" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["bilinear", "icr_quadratic", "dirac_gan", "covariance"])
def test_configs_build(name):
    config = _load_config(name)
    assert config.runner == "toy_game"
    entries = toy_run.build_entries(config)
    assert set(entries) == set(config.optimizers)


def test_bad_optimizer_entry_fails_before_compiling(tmp_path):
    config = _load_config("bilinear")
    config.optimizers.cgd.lr_z = 0.1
    with pytest.raises(ValueError, match="config.optimizers.cgd"):
        toy_run.run(config, str(tmp_path))


def test_divergence_is_flagged():
    traj = toy_run.Trajectory(None, None, jnp.array([1.0, 2.0, jnp.inf, jnp.nan]),
                              {"grad_evals": jnp.ones(3)})
    row = toy_run.summarize(traj)
    assert row["diverged"] and row["first_nonfinite_step"] == 2 and row["grad_evals"] == 3


# ------------------------------------------------------------------------------- plots


def test_distance_plot_axis_is_bounded_when_a_run_diverges():
    """The axis spans [smallest distance, 10 x start], finite, whatever a diverged run did;
    a triangle marks where that run crossed the top, on either x axis."""
    import matplotlib.pyplot as plt

    good = toy_run.Trajectory(None, None, np.array([1.0, 0.5, 0.2, 0.1, 0.05, 0.01, 0.005]),
                              {"grad_evals": np.full(6, 4.0)})
    bad = toy_run.Trajectory(None, None, np.array([1.0, 3.0, 20.0, 1e140, np.inf, np.nan,
                                                   np.nan]), {"grad_evals": np.full(6, 3.0)})
    styles = {"cgd": ("C2", "-"), "simgd": ("C0", "-")}
    for x_axis, crossed_at in (("step", 2), ("grad_evals", 6)):
        fig = toy_run.distance_figure({"cgd": good, "simgd": bad}, styles, x_axis)
        ax = fig.axes[0]
        bottom, top = ax.get_ylim()
        assert np.isfinite([bottom, top]).all()
        assert 0 < bottom <= 0.005 and top == 10.0
        markers = [line for line in ax.lines if line.get_marker() == "^"]
        assert len(markers) == 1
        assert markers[0].get_xdata()[0] == crossed_at and markers[0].get_ydata()[0] == top
        assert max(line.get_xdata()[-1] for line in ax.lines) == 6 * (1 if x_axis == "step" else 4)
        plt.close(fig)
    assert toy_run.exit_step(np.array([1.0, 2.0, 5.0]), 10.0) is None


@pytest.mark.parametrize("name", ["dirac_gan", "covariance"])
def test_plot_styles_are_distinct_per_entry(name):
    """A colour per optimizer, a line style per step size; no two entries look alike."""
    config = _load_config(name)
    styles = toy_run.line_styles(config)
    assert set(styles) == set(config.optimizers)
    assert len(set(styles.values())) == len(styles)
    if name == "covariance":
        assert styles["cgd_0p025"][0] == styles["cgd_0p4"][0] != styles["simgd_0p025"][0]
        assert styles["cgd_0p025"][1] == styles["simgd_0p025"][1] != styles["cgd_0p1"][1]


def test_x_axis_option_is_checked():
    config = _load_config("covariance")
    toy_run.check_config(config)  # plot_radius 0: twice the start's norm
    config.x_axis = "grad_eval"
    with pytest.raises(UserError, match="x_axis='grad_eval'.*Did you mean 'grad_evals'"):
        toy_run.check_config(config)
