"""experiments/study_results.py writes a study's summary between a page's markers."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV = """cell,model,metric,at,direction,step,n,mean,std,median,ci_low,ci_high,diverged,seeds
a,a,eval/fid,last,min,100.0,2,10.5,1,10.5,9.25,11.75,1,3
a,a,eval/fid,best,min,50.0,2,9.0,1,9.0,8.0,10.0,1,3
b,b,eval/fid,last,min,100.0,3,20.0,1,20.0,19.0,21.0,0,3
"""
MD = """# Study summary

## Paired comparison

- a beats b on eval/fid (last evaluation, lower is better) by 9.5 [8, 11], p = 0.25
- a beats b on eval/fid (best evaluation, lower is better) by 11 [9, 13], p = 0.25

## Plots
"""


def _module():
    spec = importlib.util.spec_from_file_location(
        "study_results", os.path.join(ROOT, "experiments", "study_results.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _study(tmp_path):
    workdir = tmp_path / "runs" / "toy_study"
    (workdir / "plots").mkdir(parents=True)
    (workdir / "summary.csv").write_text(CSV)
    (workdir / "summary.md").write_text(MD)
    (workdir / "plots" / "boxes_eval_fid.png").write_bytes(b"png")
    for seed, evals in ((0, 300), (1, 500)):
        (workdir / "a" / f"seed_{seed}").mkdir(parents=True)
        (workdir / "a" / f"seed_{seed}" / "results.json").write_text(
            json.dumps({"total_grad_evals": evals, "partial": False}))
    (workdir / "a" / "seed_2").mkdir()  # stopped: not counted
    (workdir / "a" / "seed_2" / "results.json").write_text(
        json.dumps({"total_grad_evals": 7, "partial": True}))
    return workdir


def test_the_section_between_the_markers_is_regenerated(tmp_path):
    workdir = _study(tmp_path)
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text("before\n<!-- study_results:toy_study -->\nold table\n"
                    "<!-- /study_results:toy_study -->\nafter\n")
    assert _module().main([str(workdir), f"--page={page}",
                           f"--plots={tmp_path / 'docs' / 'results'}"]) == 0
    text = page.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old table" not in text
    assert "| a | 2 of 3 | 1 | 400 | 10.50 [9.25, 11.75] |" in text
    assert "| b | 3 of 3 | 0 | - | 20.00 [19.00, 21.00] |" in text
    assert "by 9.5 [8, 11]" in text and "by 11 [9, 13]" not in text  # last evaluation only
    assert "](results/toy_study_fid.png)" in text
    assert (tmp_path / "docs" / "results" / "toy_study_fid.png").read_bytes() == b"png"
    # Run again: the same page (the markers stay, the section is replaced, not added).
    _module().main([str(workdir), f"--page={page}", f"--plots={tmp_path / 'docs' / 'results'}"])
    assert page.read_text() == text


def test_a_page_without_the_markers_is_refused(tmp_path):
    workdir = _study(tmp_path)
    page = tmp_path / "page.md"
    page.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- study_results:toy_study -->"):
        _module().main([str(workdir), f"--page={page}", f"--plots={tmp_path}"])
