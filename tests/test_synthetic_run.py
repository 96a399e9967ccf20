"""The synthetic manifold runner: one scanned run, its outputs and its config checks."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import synthetic_manifold  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.runners import synthetic_run, synthetic_train  # noqa: E402


def tiny_config(**overrides):
    config = synthetic_manifold.get_config()
    config.update(dict(dim=3, hidden=4, batch=4, steps=4, log_every=2, **overrides))
    config.optimizer.n_disc = 2
    return config


def test_run_writes_results_metrics_and_snapshots(tmp_path, capsys):
    config = tiny_config(parallel_offset=3.0)
    summary = synthetic_run.run(config, str(tmp_path))
    progress = [line for line in capsys.readouterr().out.splitlines() if "seed-steps/s" in line]
    assert [line.split(" (")[0] for line in progress] == ["step 2/4", "step 4/4"]
    assert all("mean param_error" in line and "ETA" in line for line in progress)
    for name in ("results.json", "metrics.npz", "snapshots.png"):
        assert os.path.getsize(tmp_path / name) > 0
    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    # Parallel lines at distance 3 with equal directions: only the means differ.
    assert saved["initial"]["param_error"] == pytest.approx(9.0, rel=1e-5)
    assert saved["initial"]["w2"] == pytest.approx(9.0, rel=1e-5)
    assert saved["n_disc"] == 2 and summary["finite"]
    metrics = np.load(tmp_path / "metrics.npz")
    np.testing.assert_array_equal(metrics["step"], [0, 2, 4])
    # AltGD: n_disc discriminator gradients + 1 generator gradient per step.
    np.testing.assert_array_equal(metrics["grad_evals"], [0, 6, 12])


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_learning_rate_is_traced_and_moves_the_generator():
    train = jax.jit(synthetic_train.make_train(tiny_config(init="random")))
    key = synthetic_train.seed_key(0, 0)
    frozen = train(key, jnp.float32(0.0)).metrics["param_error"]
    moving = train(key, jnp.float32(0.05)).metrics["param_error"]
    np.testing.assert_allclose(frozen, frozen[0], rtol=1e-6)
    assert not np.allclose(moving[1:], moving[0])
    assert train._cache_size() == 1  # one program for every learning rate


@pytest.mark.parametrize("name,expected", [("cgd", "lr_x"), ("altgd", "transform_x")])
def test_optimizer_gets_the_learning_rate_where_it_takes_it(name, expected, monkeypatch):
    seen = {}
    monkeypatch.setattr(synthetic_train, "create_optimizer",
                        lambda n, **hp: seen.update(hp) or ("stub", n))
    config = tiny_config()
    config.optimizer.name = name
    synthetic_train.make_optimizer(config.optimizer, 0.125)
    value = seen[expected]
    assert (value["lr"] if isinstance(value, dict) else value) == 0.125
    assert ("n_disc" in seen) == (name == "altgd")


@pytest.mark.parametrize("field,value,match", [
    ("init", "diagonal", "init"),
    ("steps", 5, "multiple"),
    ("model", "lsgan", "Unknown GAN model"),
    ("weight_clip", -1.0, "weight_clip"),
])
def test_bad_config_fails_before_compiling(field, value, match):
    config = tiny_config()
    config[field] = value
    with pytest.raises(ValueError, match=match):
        synthetic_train.make_train(config)


def test_quick_settings_apply_only_when_asked():
    config = synthetic_manifold.get_config()
    assert synthetic_run.resolve(config).steps == 200_000
    config.quick = True
    assert synthetic_run.resolve(config).steps == config.quick_settings.steps


def test_stepping_the_run_fns_by_hand_equals_the_scanned_run():
    """The benchmark's per-step Python loop computes exactly what `train` scans."""
    config = tiny_config(init="random")
    fns = synthetic_train.make_run_fns(config)
    key, lr = synthetic_train.seed_key(0, 5), jnp.float32(0.01)
    init, step = jax.jit(fns.init), jax.jit(fns.step)
    state, _ = init(key, lr)
    for t in range(config.steps):
        state, _ = step(state, jnp.int32(t), lr)
    expected = synthetic_train.errors(state.params_x, state.data, config.sigma)
    result = synthetic_train.make_train(config)(key, lr)
    for name, value in expected.items():
        np.testing.assert_allclose(result.metrics[name][-1], value, rtol=1e-5)


def test_chunks_divide_the_run():
    config = tiny_config()
    config.update(dict(steps=200_000, log_every=1_000))
    assert synthetic_train.chunk_blocks(config) == 10  # 20 chunks of 10 logging blocks
    assert synthetic_train.chunk_blocks(config, target_chunks=100) == 2
    config.chunk_steps = 4_000
    assert synthetic_train.chunk_blocks(config) == 4
    config.chunk_steps = 3_000  # does not divide 200k
    with pytest.raises(UserError, match="chunk_steps"):
        synthetic_train.chunk_blocks(config)


def test_a_stopped_run_writes_its_results_so_far_marked_partial(tmp_path, monkeypatch):
    """SIGTERM during step 2 of 8: the run stops after that chunk, writes results.json
    (marked partial), metrics.npz and snapshots.png for steps 0..2, and exits 143."""
    import signal

    from gan_dynamics import signals

    chunks = []

    def sigterm_during_the_first_chunk(self, done_steps, errors_now):
        chunks.append(done_steps)
        if len(chunks) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(synthetic_run.Progress, "update", sigterm_during_the_first_chunk)
    with pytest.raises(signals.Stopped) as stopped:
        config = tiny_config(chunk_steps=2)
        config.steps = 8
        synthetic_run.run(config, str(tmp_path))
    assert stopped.value.exit_code == 143 and "marked partial" in str(stopped.value)
    assert chunks == [2]
    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    assert saved["partial"] is True and saved["stopped_by"] == "SIGTERM" and saved["steps"] == 2
    np.testing.assert_array_equal(np.load(tmp_path / "metrics.npz")["step"], [0, 2])
    assert os.path.getsize(tmp_path / "snapshots.png") > 0
