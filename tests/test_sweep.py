"""Seeds x lr / d sweeps: equal to single runs, the same on 8 devices as on 1."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import plots, sweep_manifold_lr  # noqa: E402
from gan_dynamics.runners import seed_sharding, summaries, sweep, sweep_settings, synthetic_train  # noqa: E402

LRS = (1e-3, 2e-2)


def tiny_sweep_config(**overrides):
    config = sweep_manifold_lr.get_config()
    config.update({**dict(dim=3, hidden=4, batch=4, steps=4, log_every=2, models="ns",
                          run_optimizers="altgd", num_seeds=3, chunk_seeds=2), **overrides})
    config.optimizers.altgd.lrs = LRS
    config.optimizers.altgd.n_disc = 2
    return config


@pytest.fixture(scope="module")
def cell():
    config = tiny_sweep_config()
    return config, sweep_settings.cell_config(config, "ns", "altgd")


def test_sweep_cell_equals_the_single_run(cell):
    config, cell_config = cell
    values, reference, axes = sweep.sweep_cell(config, "ns", "altgd", seed_sharding.seed_mesh(1))
    assert values.shape == (3, len(LRS), 3, len(synthetic_train.METRICS))
    assert axes["values"] == ["seed", "lr", "time", "metric"]
    single = jax.jit(synthetic_train.make_train(cell_config))
    for seed in range(3):  # seed 2 ran in a padded chunk
        for j, lr in enumerate(LRS):
            result = single(synthetic_train.seed_key(config.seed, seed), jnp.float32(lr))
            expected = np.stack([result.metrics[m] for m in synthetic_train.METRICS], -1)
            np.testing.assert_allclose(values[seed, j], expected, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                reference[seed, j], [result.reference[m] for m in synthetic_train.ERROR_METRICS],
                rtol=1e-6)
    # Different seeds are different runs.
    assert not np.allclose(values[0, :, -1], values[1, :, -1])


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_sixteen_seeds_on_eight_devices_equal_one_device(cell):
    """The runner's path (chunks, groups per device) on 8 devices and on 1."""
    assert jax.device_count() == 8, "tests/conftest.py provides 8 fake CPU devices"
    config, _ = cell
    config = tiny_sweep_config(num_seeds=16, chunk_seeds=3)
    part = sweep_settings.cell_parts(config, "ns", "altgd")[0]
    results = {devices: sweep.run_part(config, part, seed_sharding.seed_mesh(devices))
               for devices in (1, 8)}
    assert results[8][2]["padded_runs"] == 32 and results[8][2]["group"] == 2
    assert results[1][2]["padded_runs"] == 33 and results[1][2]["group"] == 3
    for a, b in zip(results[1][:2], results[8][:2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_run_layout_groups_evenly_with_the_least_padding():
    assert seed_sharding.run_layout(5000, 1, 128) == seed_sharding.RunLayout(5000, 5000, 125, 40, 1)
    assert seed_sharding.run_layout(1000, 2, 128) == seed_sharding.RunLayout(1000, 1000, 125, 4, 2)
    assert seed_sharding.run_layout(3, 8, 128) == seed_sharding.RunLayout(3, 8, 1, 1, 8)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_runner_writes_named_arrays_and_summary(tmp_path):
    config = tiny_sweep_config(num_seeds=2, sweep="dim", dims=(2, 3))
    config.optimizers.altgd.lr = 1e-2
    summary = sweep.run(config, str(tmp_path))
    arrays = np.load(tmp_path / "ns__altgd.npz")
    with open(tmp_path / "ns__altgd.json") as f:
        axes = json.load(f)
    assert arrays["values"].shape == (2, 2, 3, len(synthetic_train.METRICS))
    assert arrays["reference"].shape == (2, 2, len(synthetic_train.ERROR_METRICS))
    assert axes["values"] == ["seed", "dim", "time", "metric"]
    assert axes["coords"]["dim"] == [2, 3] and axes["coords"]["time"] == [0, 2, 4]
    rows = summary["cells"]["ns__altgd"]["rows"]
    assert [row["dim"] for row in rows] == [2, 3]
    final = arrays["values"][:, 0, -1, axes["coords"]["metric"].index("param_error")]
    assert rows[0]["param_error"]["mean"] == pytest.approx(float(final.mean()), rel=1e-6)
    png = plots.plot_sweep(str(tmp_path), "w2")
    assert os.path.getsize(png) > 0


def test_bootstrap_interval_covers_the_mean_and_skips_nonfinite():
    values = np.concatenate([np.random.default_rng(0).normal(2.0, 1.0, 400), [np.nan, np.inf]])
    mean, low, high = summaries.bootstrap_mean_ci(values)
    assert low < mean < high and abs(mean - 2.0) < 0.15 and 0.1 < high - low < 0.3
    assert summaries.summarise(values)["nonfinite_fraction"] == pytest.approx(2 / 402)


def test_sweep_config_errors_are_caught_before_compiling():
    config = tiny_sweep_config(run_optimizers="altgd,sga")
    with pytest.raises(ValueError, match="only sets"):
        sweep_settings.validate(config)
    config = tiny_sweep_config(sweep="width")
    with pytest.raises(ValueError, match="sweep"):
        sweep_settings.validate(config)


@pytest.mark.slow
def test_cgd_sweep_on_eight_devices_equals_one_device():
    """The competitive solvers (GMRES for NS) under vmap and seed sharding."""
    config = tiny_sweep_config(run_optimizers="cgd")
    config.optimizers.cgd.lrs = (0.05, 0.1)
    config.optimizers.cgd.options.max_iter = 5
    train = synthetic_train.make_train(sweep_settings.cell_config(config, "ns", "cgd"))
    results = {}
    for devices in (1, 8):
        mesh = seed_sharding.seed_mesh(devices)
        fn = seed_sharding.compile_sweep(train, mesh, over_lr=True)
        results[devices] = seed_sharding.run_seeds(fn, 0, 16, jnp.asarray((0.05, 0.1)), mesh, 16)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 results[1], results[8])
    assert np.all(np.isfinite(results[8].metrics["param_error"]))
