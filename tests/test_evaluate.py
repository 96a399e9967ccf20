"""Sample metrics wired into the image loop, checkpoint scoring and its command line."""

import json
import math
import os
import subprocess
import sys
import types

import ml_collections
import numpy as np
import pytest

from gan_dynamics.data import images
from gan_dynamics.errors import UserError
from gan_dynamics.runners import image_eval as evaluate
from gan_dynamics.runners import train, train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "experiments"))
import evaluate as evaluate_cli  # noqa: E402  (experiments/ is put on the path first)

NAMES = ("classifier_is", "classifier_is_std", "classifier_fid", "critic", "ms_ssim",
         "classifier_is_test", "classifier_fid_test", "ms_ssim_test")


def tiny_config():
    """sklearn digits at 16x16, a width-4 DCGAN, two steps; every offline metric, tiny."""
    config = train_config.default_config()
    config.data.name = "sklearn_digits"
    config.data.image_size = 16
    config.data.batch_size = 8
    config.model = {"name": "dcgan", "image_size": 16, "z_dim": 4, "width": 4, "channels": 1}
    config.optimizer = train_config.adam_altgd(lr=1e-3, b1=0.5, b2=0.9, n_disc=1)
    train_config.set_loss(config, "non_saturating")
    config.train.update({"num_steps": 2, "log_every": 1, "checkpoint_every": 2,
                         "sample_every": 2, "num_samples": 4, "eval_every": 1})
    config.eval.update({"metrics": "classifier_is,classifier_fid,critic,ms_ssim",
                        "num_samples": 16, "batch_size": 8, "is_splits": 2})
    config.eval.classifier.update({"num_steps": 40, "batch_size": 16, "learning_rate": 3e-3})
    config.eval.critic.update({"num_steps": 20, "batch_size": 8, "width": 4,
                               "learning_rate": 1e-3})
    return config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("cache"))
    os.environ["GAN_DYNAMICS_CACHE"] = cache
    workdir = str(tmp_path_factory.mktemp("run"))
    config = tiny_config()
    exp = train_config.build(config)
    hooks = evaluate.make_eval_hooks(config, exp)
    assert len(hooks) == 1
    # The loop would also build the hooks of config.eval itself: switch those off and pass
    # ours, as a caller with its own hooks does.
    looped = tiny_config()
    looped.eval.metrics = ""
    assert evaluate.make_eval_hooks(looped, exp) == []
    train.run(looped, workdir, eval_hooks=hooks)
    yield config, exp, workdir
    del os.environ["GAN_DYNAMICS_CACHE"]


@pytest.mark.slow  # a training run, a classifier and a critic: ~1-5 min on 2 CPU cores
def test_hooks_log_eval_rows(trained_run):
    _, _, workdir = trained_run
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    evals = {r["step"]: r for r in rows if any(k.startswith("eval/") for k in r)}
    assert sorted(evals) == [1, 2]
    for row in evals.values():
        assert all(math.isfinite(row[f"eval/{n}"]) for n in NAMES)
        assert 1 <= row["eval/classifier_is"] <= 10 and row["eval/classifier_fid"] > 0
    # The held-out references do not depend on the step; the samples do.
    for name in ("classifier_is_test", "classifier_fid_test", "ms_ssim_test"):
        assert evals[1][f"eval/{name}"] == evals[2][f"eval/{name}"]
    assert "eval/critic_test" not in evals[1]
    assert evals[1]["eval/classifier_fid"] != evals[2]["eval/classifier_fid"]


@pytest.mark.slow  # a training run, a classifier and a critic: ~1-5 min on 2 CPU cores
def test_checkpoint_scoring_reproduces_the_logged_evaluation(trained_run, capsys):
    _, _, workdir = trained_run
    assert evaluate_cli.main(["--workdir", workdir]) == 0
    with open(evaluate.eval_path(workdir, 2)) as f:
        saved = json.load(f)
    assert saved["step"] == 2 and saved["eval"]["num_samples"] == 16
    logged = evaluate.read_evals(workdir)[2]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        row = [json.loads(x) for x in f if '"eval/' in x][-1]
    for name in NAMES:  # same latents, same critic key, restored parameters
        np.testing.assert_allclose(saved["metrics"][name], row[f"eval/{name}"], rtol=1e-4,
                                   atol=1e-6)
        assert logged[name] == saved["metrics"][name]
    out = capsys.readouterr().out
    assert "classifier_fid" in out and "eval_step_00000002.json" in out
    with pytest.raises(UserError, match=r"no checkpoint at step 7; it has \[2\]"):
        evaluate_cli.main(["--workdir", workdir, "--checkpoint", "7"])


@pytest.mark.slow  # a training run, a classifier and a critic: ~1-5 min on 2 CPU cores
def test_held_out_digits_beat_noise_on_every_metric(trained_run):
    config, exp, _ = trained_run
    config = ml_collections.ConfigDict(config.to_dict())  # a copy
    # A critic that trains long enough to tell images apart (the run's is only wiring).
    config.eval.critic.update({"num_steps": 150, "batch_size": 32, "width": 8})
    test = images.open_dataset("sklearn_digits", split="test", image_size=16)
    real = test.read(np.random.default_rng(0).permutation(test.num_examples)[:128])
    evaluator = evaluate.make_evaluator(config, exp, heldout=real[:64], log=None)
    noise = np.random.default_rng(1).uniform(-1, 1, real[64:].shape).astype(np.float32)
    good, bad = evaluator.score(real[64:]), evaluator.score(noise)
    assert good["classifier_is"] > bad["classifier_is"]
    assert good["classifier_fid"] < bad["classifier_fid"]
    assert good["critic"] > bad["critic"]
    assert (abs(good["ms_ssim"] - good["ms_ssim_test"])
            < abs(bad["ms_ssim"] - bad["ms_ssim_test"]))


@pytest.mark.slow  # the run's classifier (cached by the fixture), its reference statistics
def test_feature_scores_share_one_pass_and_one_n(trained_run):
    config, exp, _ = trained_run
    config = ml_collections.ConfigDict(config.to_dict())  # a copy
    config.eval.update({"metrics": "classifier_is,kid,precision,recall,density,coverage,fid_inf",
                        "features": "classifier", "num_samples": 96})
    config.eval.scores.kid_subset_size = 32
    test = images.open_dataset("sklearn_digits", split="test", image_size=16)
    real = test.read(np.random.default_rng(0).permutation(test.num_examples)[:160])
    with pytest.warns(UserWarning, match="has 64 images, fewer than num_samples=96"):
        evaluator = evaluate.make_evaluator(config, exp, heldout=real[:64], log=None)
    noise = np.random.default_rng(1).uniform(-1, 1, (96, 16, 16, 1)).astype(np.float32)
    good, bad = evaluator.score(real[64:]), evaluator.score(noise)
    for out in (good, bad):  # the counts beside the scores; both sides cut to 64
        assert (out["num_samples"], out["num_heldout"], out["num_features"]) == (96, 64, 64)
        assert (out["kid_subsets"], out["kid_subset_size"]) == (100, 32)
        assert "resize_clean" not in out  # no Inception ran
    assert good["kid"] < bad["kid"] and good["fid_inf"] < bad["fid_inf"]
    for name in ("precision", "recall", "density", "coverage"):
        assert good[name] > bad[name], name
    # Only FID∞ has a held-out value: the others would compare the held-out set with itself.
    assert {k for k in good if k.endswith("_test")} == {"classifier_is_test", "fid_inf_test"}


def test_bad_resize_or_feature_network_fails_with_one_message():
    exp = types.SimpleNamespace(image_shape=(16, 16, 1), z_dim=4)  # checked before it is used
    for key, value in (("resize", "bicubic"), ("features", "vgg")):
        bad = tiny_config()
        bad.eval[key] = value
        with pytest.raises(UserError, match="config.eval.resize must be one of"):
            evaluate.make_evaluator(bad, exp, log=None)


def test_bad_metric_names_and_workdirs_fail_with_one_message(tmp_path):
    with pytest.raises(UserError, match="Unknown metric 'clasifier_is'.*Did you mean 'classifier_is'"):
        evaluate.parse_metrics("clasifier_is,critic")
    assert evaluate.parse_metrics(("critic", "ms_ssim", "critic")) == ("critic", "ms_ssim")
    with pytest.raises(UserError, match="no checkpoints/ directory"):
        evaluate.evaluate_checkpoint(str(tmp_path), config=tiny_config())
    proc = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "evaluate.py"),
                           f"--workdir={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "has no config.json" in proc.stderr


@pytest.mark.parametrize("runner, results, where", [
    ("synthetic", "results.json", "results.json"),
    ("sweep", "summary.json", "python experiments/plots.py --workdir="),
])
def test_a_run_of_another_runner_says_what_scores_it(tmp_path, capsys, runner, results, where):
    """A synthetic or sweep run saves no config.json: the tools of image runs say what
    the run is and where its scores are, instead of asking for its config."""
    (tmp_path / results).write_text(json.dumps({"config": {"runner": runner}}))
    with pytest.raises(UserError) as err:
        evaluate_cli.main([f"--workdir={tmp_path}"])
    message = str(err.value)
    assert f"holds a '{runner}' run, not an image run" in message and where in message
    assert "--config" not in message and "\n" not in message


def test_plots_compare_models_from_eval_rows_and_files(tmp_path):
    import plots  # experiments/plots.py

    def run(name, loss, penalty, fids, file_fid=None):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({
            "loss": {"name": loss, "penalty": penalty},
            "optimizer": {"name": "altgd", "transform_x": {"name": "adam"}, "n_disc": 5}}))
        rows = [{"step": 10 * (i + 1), "f": 0.0, "eval/fid": v, "eval/fid_test": 2.0}
                for i, v in enumerate(fids)]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if file_fid is not None:  # experiments/evaluate.py at a later checkpoint
            (d / "eval_step_00000100.json").write_text(json.dumps(
                {"step": 100, "metrics": {"fid": file_fid, "fid_test": 2.0}}))
        return str(d)

    a = run("cifar_a", "wgan", "wgan_gp", [50.0, 30.0])
    run("cifar_b", "wgan", "wgan_gp", [40.0], file_fid=20.0)
    run("cifar_c", "non_saturating", "none", [60.0])
    assert plots.model_label(a) == "wgan+wgan_gp / adam (n_disc=5)"
    assert plots.last_evaluation(a, "fid") == (30.0, 2.0)  # the last step's value
    assert plots.last_evaluation(str(tmp_path / "cifar_b"), "fid") == (20.0, 2.0)
    assert plots.last_evaluation(a, "critic") is None
    path = plots.plot_sample_metric(str(tmp_path / "cifar_*"), "fid")
    assert path == str(tmp_path / "sample_fid.png") and os.path.getsize(path) > 1000
    with pytest.raises(UserError, match="has an evaluation of 'ms_ssim'"):
        plots.plot_sample_metric(str(tmp_path / "cifar_*"), "ms_ssim")


def test_the_held_out_evaluation_never_loads_a_classifier_trained_on_the_held_out_images(
        tmp_path, monkeypatch):
    """A run with data.split='all' trains its classifier on every digit; a run on 'train'
    must get (and train) its own, not that one from the cache."""
    import jax
    import jax.numpy as jnp

    from gan_dynamics.metrics import classifier

    monkeypatch.setenv("GAN_DYNAMICS_CACHE", str(tmp_path))
    trained_on = []

    def untrained(module, source, options, **kwargs):  # records the split it was given
        trained_on.append(source.num_examples)
        return module.init(jax.random.key(0), jnp.zeros((1, *source.image_shape)))["params"]

    monkeypatch.setattr(classifier, "train", untrained)
    names = []
    for split in ("all", "train"):
        config = tiny_config()
        config.data.split = split
        config.eval.metrics = "classifier_is,classifier_fid"  # FID reads the run's split
        names.append(evaluate.make_evaluator(config, train_config.build(config),
                                             log=None).classifier.name)
    assert trained_on == [1797, 1621]
    assert names[0].startswith("sklearn_digits-all_16px_") and names[1].startswith(
        "sklearn_digits_16px_")
