"""The image runner end to end: outputs, exact resumption, devices, failures.

Small models and in-memory data keep these fast; `test_cifar_wgan_cgd_two_steps` runs the
flagship config with its real model on `tfds.testing.mock_data`.
"""

import json
import os
import signal

import jax
import numpy as np
import pytest

from gan_dynamics import outputs, parallel, signals
from gan_dynamics.data import images, loader
from gan_dynamics.runners import train, train_config, train_step


def random_images(image_shape=(8, 8, 1), num_examples=1000, poison_step=None, n_sub=3,
                  batch_size=8, seed=0):
    """Fixed uniform-noise images; `poison_step`: the examples that step reads are NaN."""
    data = np.random.default_rng(1).uniform(-1, 1, (num_examples, *image_shape))
    data = data.astype(np.float32)
    if poison_step is not None:
        rows = images.example_indices(num_examples, poison_step, n_sub,
                                      batch_size=batch_size, seed=seed)
        data[rows.ravel()] = np.nan
    return images.ImageSource("random", num_examples, image_shape, lambda idx: data[idx])


def tiny_config(optimizer="altgd", penalty="wgan_gp", **train_overrides):
    """A DCGAN on 8x8 greyscale images, batch 8: compiles in seconds."""
    config = train_config.default_config()
    config.data.batch_size = 8
    config.model = {"name": "dcgan", "image_size": 8, "z_dim": 4, "width": 4, "channels": 1}
    if optimizer == "altgd":
        # Two critic steps per generator step on fresh batches, with a penalty: the
        # substep and double-backward paths.
        config.optimizer = train_config.adam_altgd(lr=1e-3, b1=0.5, b2=0.9, n_disc=2)
        train_config.set_loss(config, "wgan", penalty=penalty, weight=10.0)
    else:
        config.optimizer.max_iter = 10
        config.optimizer.lr_x = config.optimizer.lr_y = 1e-3
    config.train.update({"num_steps": 4, "log_every": 1, "checkpoint_every": 2,
                         "sample_every": 2, "num_samples": 4, "eval_every": 1,
                         **train_overrides})
    return config


def _params(state):
    return jax.tree.map(np.asarray, (state.params_x, state.params_y, state.stats_x,
                                     state.stats_y, state.opt_state))


def test_unknown_config_key_fails_before_compile(tmp_path):
    config = tiny_config()
    config.train.num_step = 5  # typo for num_steps
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['num_step'\] in config.train"):
        train.run(config, str(tmp_path), source=random_images())
    config = tiny_config(optimizer="acgd")
    config.optimizer.lr = 1e-4  # ACGD takes lr_x / lr_y
    with pytest.raises(ValueError, match="does not take \\['lr'\\]"):
        train.run(config, str(tmp_path), source=random_images())
    config = tiny_config()
    config.loss.penalty_options.wieght = 5.0
    with pytest.raises(ValueError, match="does not take \\['wieght'\\]"):
        train.run(config, str(tmp_path), source=random_images())
    assert os.listdir(tmp_path) == []  # nothing was compiled or written


def sigterm_after(stop_step: int):
    """An evaluation hook that sends this process SIGTERM after step `stop_step`: a stop
    at a known step, through the run's own signal handling."""
    def hook(step, state, generate):
        if step == stop_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return {}

    return hook


def test_kill_and_resume_reproduces_uninterrupted_run(tmp_path):
    # AltGD with two critic steps: three batches and three latent draws per step.
    config = tiny_config(penalty="none")
    full = train.run(config, str(tmp_path / "full"), source=random_images())

    with pytest.raises(signals.Stopped, match="saved checkpoint step 2") as stopped:
        train.run(config, str(tmp_path / "resumed"), source=random_images(),
                  eval_hooks=[sigterm_after(2)])
    assert stopped.value.exit_code == 143  # saved at the signal and stopped
    resumed = train.run(config, str(tmp_path / "resumed"), source=random_images())
    assert int(resumed.step) == 4
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 _params(full), _params(resumed))
    # The resumed metrics file describes one trajectory, equal to the uninterrupted one.
    full_records = outputs.read_metrics(str(tmp_path / "full"))
    resumed_records = outputs.read_metrics(str(tmp_path / "resumed"))
    assert [r["step"] for r in resumed_records] == [1, 2, 3, 4]
    for a, b in zip(full_records, resumed_records):
        np.testing.assert_allclose(a["f"], b["f"], rtol=1e-5)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_outputs_and_logged_diagnostics(tmp_path):
    config = tiny_config(optimizer="acgd", num_steps=2)
    train.run(config, str(tmp_path), source=random_images(),
              eval_hooks=[lambda step, state, generate: {"mean_pixel": float(
                  np.mean(generate(np.zeros((4, 4), np.float32))))}])
    records = outputs.read_metrics(str(tmp_path))
    losses = [r for r in records if "f" in r]
    assert [r["step"] for r in losses] == [1, 2]
    for key in ("f", "g", "grad_norm_x", "grad_norm_y", "update_norm_x", "update_norm_y",
                "param_norm_x", "param_norm_y", "grad_evals", "solver_iterations",
                "solver_residual", "d_real", "d_fake"):
        assert np.isfinite(losses[0][key]), key
    assert losses[0]["solver_iterations"] >= 1
    assert any("eval/mean_pixel" in r for r in records)
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_00000002.png"]
    assert (tmp_path / "loss_curves.png").stat().st_size > 0
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tensorboard"))
    assert os.listdir(tmp_path / "checkpoints") == ["2"]


def test_non_finite_loss_stops_with_step_and_last_good_checkpoint(tmp_path):
    config = tiny_config(checkpoint_every=1)
    # The batches of loop index 2 feed update 3: its losses are logged at step 3.
    with pytest.raises(FloatingPointError, match=r"Non-finite loss at step 3 .*Last good "
                       r"checkpoint: step 2 in .*checkpoints"):
        train.run(config, str(tmp_path), source=random_images(poison_step=2))


def test_non_finite_parameters_after_finite_losses_stop_before_saving(tmp_path, monkeypatch):
    """Update 3 leaves an infinite generator weight (an infinite gradient, a solver
    breakdown) although its losses were finite: no checkpoint 3, exit 3 naming step 2."""
    import jax.numpy as jnp

    build = train.build

    def with_a_breakdown_at_update_3(config, source=None):
        exp = build(config, source)
        inner = exp.optimizer

        def init(px, py):
            return inner.init(px, py), jnp.zeros((), jnp.int32)

        def update(game, px, py, state):
            px, py, inner_state, info = inner.update(game, px, py, state[0])
            count = state[1] + 1
            px = jax.tree.map(lambda a: jnp.where(count == 3, a + jnp.inf, a), px)
            return px, py, (inner_state, count), info

        return exp._replace(optimizer=inner._replace(init=init, update=update))

    monkeypatch.setattr(train, "build", with_a_breakdown_at_update_3)
    config = tiny_config(penalty="none", checkpoint_every=1)
    with pytest.raises(FloatingPointError, match=r"Non-finite parameters after step 3 .*Last "
                       r"good checkpoint: step 2 in .*checkpoints"):
        train.run(config, str(tmp_path), source=random_images())
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]


def test_a_signal_in_the_last_step_and_a_rerun_of_a_finished_run_write_results(tmp_path):
    config = tiny_config(penalty="none", num_steps=2)

    def sigterm_in_the_last_step(step, state, generate):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return {}

    with pytest.raises(signals.Stopped, match="saved checkpoint step 2") as stopped:
        train.run(config, str(tmp_path), source=random_images(),
                  eval_hooks=[sigterm_in_the_last_step])
    assert stopped.value.exit_code == 143
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert results["steps"] == 2 and results["final_losses"]["step"] == 2
    os.remove(tmp_path / "results.json")  # finished, but stopped before reporting
    state = train.run(config, str(tmp_path), source=random_images())  # no step left
    assert int(state.step) == 2
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["final_losses"] == results["final_losses"]


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("optimizer", ["acgd", "altgd"])
def test_eight_devices_give_the_same_step_as_one(optimizer):
    config = tiny_config(optimizer=optimizer)
    exp = train_config.build(config, source=random_images())
    results = []
    for n in (1, 8):
        mesh = parallel.make_mesh(n)
        state, abstract = train_step.create_state(exp, 0, mesh)
        step = train_step.jit_train_step(exp, mesh, abstract)
        batches = next(loader.device_batches(loader.step_batches(
            exp.source, 0, 1, exp.n_sub, batch_size=8, seed=0), mesh))
        assert len(batches.sharding.device_set) == n
        state, metrics = step(state, batches)
        state, metrics = step(state, batches)
        results.append((_params(state), jax.device_get(metrics)))
    (p1, m1), (p8, m8) = results
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6), p1, p8)
    np.testing.assert_allclose(m1["f"], m8["f"], rtol=1e-5)


@pytest.mark.slow  # compiles ACGD on the full ICR model: minutes on 2 cores
def test_cifar_wgan_cgd_two_steps_on_mock_data(tmp_path):
    """The flagship config with its real model (ICR DCGAN, ACGD, WGAN) on mock CIFAR-10."""
    import tensorflow_datasets as tfds

    from tests.test_configs import EXPERIMENTS, load_config

    config = load_config(os.path.join(EXPERIMENTS, "cifar_wgan_cgd.py"))
    config.data.batch_size = 8  # for speed; the model is the real one
    config.optimizer.max_iter = 10
    config.train.update({"num_steps": 2, "log_every": 1, "checkpoint_every": 2,
                         "sample_every": 2, "num_samples": 16})
    with tfds.testing.mock_data(num_examples=32, policy=tfds.testing.MockPolicy.USE_CODE):
        state = train.run(config, str(tmp_path))
    assert int(state.step) == 2
    assert os.listdir(tmp_path / "checkpoints") == ["2"]
    with open(tmp_path / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [1, 2]
    assert all(np.isfinite(r["f"]) and r["solver_iterations"] >= 1 for r in records)
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "samples" / "step_00000002.png"))
    assert grid.shape == (4 * (4 * 33 + 1), 4 * (4 * 33 + 1), 3)  # upscaled to >= 512 px


def test_missing_dataset_fails_with_the_prepare_command(tmp_path):
    config = tiny_config()
    config.data.name = "cifar10"
    config.data.data_dir = str(tmp_path / "no_data_here")
    with pytest.raises(images.DatasetNotPreparedError, match="download_and_prepare"):
        train.run(config, str(tmp_path / "run"))
