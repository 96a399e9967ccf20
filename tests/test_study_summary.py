"""A study's summary (gan_dynamics.runners.study_summary) on fixed per-seed scores,
checked against values computed by hand."""

from __future__ import annotations

import csv
import importlib.util
import math
import os

import numpy as np
import pytest

from gan_dynamics.runners import study, study_summary
from tests.test_fail_well import EXP
from tests.test_study import load, write_study


def test_describe_by_hand():
    d = study_summary.describe([1.0, 2.0, 3.0, 4.0, float("nan")])  # NaN: left out
    assert d["n"] == 4 and d["mean"] == 2.5 and d["median"] == 2.5
    assert d["std"] == pytest.approx(math.sqrt(5 / 3))  # ddof 1: sum of squares 5 over 3
    assert d["ci_low"] < 2.5 < d["ci_high"]
    # Two seeds: the resampled mean is 1, 2 or 3 with chance 1/4, 1/2, 1/4, so the 2.5%
    # and 97.5% percentiles of the bootstrap are the two values themselves.
    d = study_summary.describe([1.0, 3.0])
    assert (d["mean"], d["ci_low"], d["ci_high"]) == (2.0, 1.0, 3.0)
    d = study_summary.describe([2.0, 2.0, 2.0])  # no spread: the interval is the point
    assert (d["std"], d["ci_low"], d["ci_high"]) == (0.0, 2.0, 2.0)
    d = study_summary.describe([5.0])
    assert d["n"] == 1 and d["mean"] == 5.0 and math.isnan(d["std"]) and math.isnan(d["ci_low"])


def test_paired_difference_by_hand():
    # Every one of 5 differences positive: of the 2^5 sign flips only the observed one and
    # its mirror are as extreme, so the exact two-sided p-value is 2/32.
    r = study_summary.paired_difference([2.0, 3.0, 4.0, 5.0, 6.0], [1.0] * 5)
    assert r["mean"] == 3.0 and r["n"] == 5 and r["p"] == pytest.approx(2 / 32)
    assert 1.0 <= r["ci_low"] < 3.0 < r["ci_high"] <= 5.0
    r = study_summary.paired_difference([1.0, 2.0, 3.0, float("nan")], [2.0, 1.0, 3.0, 0.0])
    assert r["n"] == 3 and r["mean"] == 0.0 and r["p"] == pytest.approx(1.0)


def test_sentence_states_the_winner_in_the_better_direction():
    r = study_summary.paired_difference([1.0, 2.0, 3.0, 4.0, 5.0], [4.0, 5.0, 6.0, 7.0, 8.0])
    text = study_summary.sentence("acgd", "adam", "eval/classifier_fid", "last", "min", r)
    assert text.startswith("acgd beats adam on eval/classifier_fid (last evaluation, lower "
                           "is better) by 3 [3, 3], permutation test p = 0.0625 (5 paired seeds")
    text = study_summary.sentence("acgd", "adam", "eval/classifier_is", "last", "max", r)
    assert text.startswith("adam beats acgd on eval/classifier_is (last evaluation, higher "
                           "is better) by 3 [3, 3]")


def test_best_of_k_by_hand():
    # Scores 1, 2, 3: the best (lowest) of a random pair is 1 for two of the three pairs
    # and 2 for one: 4/3.
    ks, mean, low, high = study_summary.best_of_k([3.0, 1.0, 2.0], "min")
    assert list(ks) == [1, 2, 3]
    np.testing.assert_allclose(mean, [2.0, 4 / 3, 1.0])
    assert (low[0], high[0], low[-1], high[-1]) == (1.0, 3.0, 1.0, 1.0)
    _, mean, _, _ = study_summary.best_of_k([3.0, 1.0, 2.0], "max")
    np.testing.assert_allclose(mean, [2.0, 8 / 3, 3.0])


# Fixed final distances per (cell, seed); each toy trajectory falls linearly from 1.0 to
# its final value in 4 steps, so the best (lowest) value is the last one. cgd__a1 seed 1
# diverged.
FINAL = {("simgd__a1", 0): 0.5, ("simgd__a1", 1): 0.7, ("simgd__a3", 0): 0.8,
         ("simgd__a3", 1): 0.9, ("cgd__a1", 0): 0.2, ("cgd__a3", 0): 0.1, ("cgd__a3", 1): 0.3}


def fake_study(tmp_path):
    """A finished toy study written by hand: records and trajectories, no runs."""
    config = load(write_study(tmp_path))
    workdir = tmp_path / "wd"
    for task in study.tasks(config):
        directory = workdir / task.directory
        os.makedirs(directory)
        final = FINAL.get((task.cell.name, task.seed))
        status = "diverged" if final is None else "done"
        study.write_record(str(directory), {"status": status, "attempts": [{"seconds": 1.0}]})
        if final is not None:
            np.savez(directory / "trajectories.npz",
                     **{"run/distance": np.linspace(1.0, final, 5),
                        "run/grad_evals": np.full(4, 2.0)})
    return config, str(workdir)


def test_summary_numbers_by_hand(tmp_path):
    config, workdir = fake_study(tmp_path)
    every = study.tasks(config)
    result = study_summary.summarize(config, workdir, every)
    rows = {(r["cell"], r["at"]): r for r in result["rows"]}
    r = rows[("simgd__a1", "last")]
    assert (r["n"], r["diverged"], r["step"]) == (2, 0, 4)
    assert r["mean"] == pytest.approx(0.6) and r["median"] == pytest.approx(0.6)
    assert r["std"] == pytest.approx(math.sqrt(0.02))  # (0.1² + 0.1²) / (2 - 1)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.5, 0.7))
    assert rows[("simgd__a1", "best")]["mean"] == pytest.approx(0.6)  # distance: lower
    r = rows[("cgd__a1", "last")]  # one seed finished, one diverged: counted, not averaged
    assert (r["n"], r["diverged"], r["mean"]) == (1, 1, pytest.approx(0.2))
    assert math.isnan(r["std"])
    # compare = (cgd__a3, simgd__a3): differences 0.1 - 0.8 and 0.3 - 0.9, mean -0.65,
    # lower is better, so cgd__a3 beats simgd__a3 by 0.65; the exact permutation test
    # flips the 2 signs in 4 ways, one of which is as extreme on each side: p = 2/4.
    last = result["comparisons"][0]
    assert last["mean"] == pytest.approx(-0.65) and last["p"] == pytest.approx(0.5)
    assert last["sentence"].startswith("cgd__a3 beats simgd__a3 on run/distance (last "
                                       "evaluation, lower is better) by 0.65 [0.6, 0.7]")
    with open(os.path.join(workdir, "summary.csv")) as f:
        written = list(csv.DictReader(f))
    assert len(written) == 8 and written[0]["cell"] == "simgd__a1"
    assert written[0]["opt"] == "simgd" and written[0]["alpha"] == "a1"
    assert float(written[0]["mean"]) == pytest.approx(0.6)
    with open(os.path.join(workdir, "summary.md")) as f:
        text = f.read()
    assert "8 tasks: 7 done, 0 running, 0 left, 1 diverged, 0 failed" in text
    assert "| run/distance | last | 4 | 2 | 0.6 | 0.1414 | 0.6 | [0.5, 0.7] |" in text
    assert last["sentence"] in text
    names = sorted(os.path.basename(p) for p in result["plots"])
    assert names == ["best_of_k_run_distance.png", "boxes_run_distance.png",
                     "curves_run_distance.png", "paired_run_distance.png"]


def test_plots_overlays_runs_against_gradient_evaluations(tmp_path):
    spec = importlib.util.spec_from_file_location("gd_plots", os.path.join(EXP, "plots.py"))
    plots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plots)
    _, workdir = fake_study(tmp_path)
    path = plots.plot_run_curves(os.path.join(workdir, "*", "seed_0"), "run/distance",
                                 "grad_evals")
    assert path == os.path.join(workdir, "curves_run_distance_grad_evals.png")
    assert os.path.getsize(path) > 0
