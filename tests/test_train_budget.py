"""The image runner's cost and time columns and its budgets (`train.budget`): every
logged row carries wall seconds (compilation apart) and cumulative gradient evaluations,
a resumed run continues both, and a budget in steps, gradient evaluations or seconds
stops the run cleanly with a checkpoint."""

from __future__ import annotations

import json
import os

import pytest

from gan_dynamics.outputs import read_metrics
from tests import test_fail_well

RUN = test_fail_well.RUN
tiny = test_fail_well.tiny  # the fixture: a tiny DCGAN config file on 8-px digits


def run(tiny_path, workdir, *overrides) -> int:
    return RUN.main(["run.py", f"--config={tiny_path}", f"--workdir={workdir}",
                     "--config.train.num_steps=6", *overrides])


def test_rows_carry_wall_seconds_and_gradient_evaluations_across_a_resume(tiny, tmp_path):
    workdir = tmp_path / "wd"
    assert run(tiny, workdir, "--config.train.budget.steps=2") == 0
    with open(workdir / "results.json") as f:
        results = json.load(f)
    assert results["budget_reached"] == {"budget": "steps", "step": 2}
    assert results["total_grad_evals"] == 4  # AltGD, n_disc 1: 2 per step
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]
    rows = [r for r in read_metrics(str(workdir)) if "f" in r]
    assert [r["step"] for r in rows] == [1, 2]  # step k: the k-th update
    assert "compile_seconds" in rows[0] and "compile_seconds" not in rows[1]
    assert rows[0]["wall_seconds"] == 0.0 < rows[1]["wall_seconds"]
    assert [r["total_grad_evals"] for r in rows] == [2, 4]
    # A rerun with the same budget trains no further; a larger one continues the counts.
    assert run(tiny, workdir, "--config.train.budget.steps=2") == 0
    assert len([r for r in read_metrics(str(workdir)) if "f" in r]) == 2
    assert run(tiny, workdir, "--config.train.budget.steps=4") == 0
    rows = [r for r in read_metrics(str(workdir)) if "f" in r]
    assert [r["total_grad_evals"] for r in rows] == [2, 4, 6, 8]
    assert rows[2]["wall_seconds"] >= rows[1]["wall_seconds"]
    assert "compile_seconds" in rows[2]  # the second session's own compilation


@pytest.mark.slow
@pytest.mark.parametrize("budget, stop_step", [("grad_evals=6", 3), ("seconds=1e-9", 1)])
def test_a_budget_stops_the_run_cleanly(tiny, tmp_path, budget, stop_step):
    workdir = tmp_path / "wd"
    assert run(tiny, workdir, f"--config.train.budget.{budget}") == 0
    with open(workdir / "results.json") as f:
        results = json.load(f)
    assert results["budget_reached"] == {"budget": budget.split("=")[0], "step": stop_step}
    assert str(stop_step) in os.listdir(workdir / "checkpoints")
    with open(workdir / "progress.json") as f:
        assert json.load(f)[str(stop_step)]["total_grad_evals"] == 2 * stop_step


def test_a_bad_budget_is_a_user_error(tiny, tmp_path, capsys):
    assert run(tiny, tmp_path / "wd", "--config.train.budget.steps=-1") == 2
    assert "config.train.budget.steps=-1 must be an integer >= 0" in capsys.readouterr().err
