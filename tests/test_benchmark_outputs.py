"""Running a benchmark leaves the checkout clean: measured output goes to --out, by
default runs/benchmarks/ (ignored by git); `--out=benchmarks/results` updates the
committed files."""

from __future__ import annotations

import glob
import importlib
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITERS = sorted(p for p in glob.glob(os.path.join(ROOT, "benchmarks", "*.py"))
                 if "results_io" in open(p).read() and not p.endswith("results_io.py"))


def _load(path: str):
    return importlib.import_module(f"benchmarks.{os.path.basename(path)[:-3]}")


def _ignored_by_git(path: str) -> bool:
    probe = subprocess.run(["git", "check-ignore", "-q", os.path.relpath(path, ROOT)],
                           cwd=ROOT, capture_output=True)
    return probe.returncode == 0


def test_every_benchmark_writing_results_is_found():
    names = {os.path.basename(p) for p in WRITERS}
    assert {"bench_input.py", "bench_train.py", "bench_sweep.py"} <= names


@pytest.mark.parametrize("path", WRITERS, ids=[os.path.basename(p) for p in WRITERS])
def test_default_output_is_ignored_by_git_and_out_selects_the_committed_folder(path):
    module = _load(path)
    default = module.parse_args([]).out
    assert _ignored_by_git(os.path.join(default, "result.json")), default
    committed = os.path.join(ROOT, "benchmarks", "results")
    assert module.parse_args([f"--out={committed}"]).out == committed
    assert not _ignored_by_git(os.path.join(committed, "result.json"))


def test_write_json_writes_into_the_out_folder(tmp_path, capsys):
    from benchmarks import results_io

    path = results_io.write_json(str(tmp_path / "out"), "bench_x.json", {"a": 1})
    assert path == str(tmp_path / "out" / "bench_x.json")
    assert open(path).read().strip().startswith("{") and f"wrote {path}" in capsys.readouterr().out


def test_the_seeds_table_is_written_between_the_pages_markers(tmp_path):
    from benchmarks import bench_seeds, results_io
    from gan_dynamics.errors import UserError

    row = {"num_seeds": 8, "seeds_at_once": 1, "ms_per_step": 80.4, "seed_steps_per_s": 99.5,
           "seed_steps_per_s_in_turn": 104.7, "speedup_over_in_turn": 0.95,
           "compile_and_first_step_s": 5.5}
    summary = {"h100_estimate": {"flops_per_s": 1.0}, "results": [
        {"optimizer": "altgd", "rows": [dict(row, seeds_at_once=8, h100_estimated_speedup=6.6),
                                        row]},
        {"optimizer": "acgd", "rows": [dict(row, seeds_at_once=8, lane_use=0.93),
                                       dict(row, lane_use=0.93)]}]}
    page = tmp_path / "page.md"
    page.write_text("before\n<!-- bench_seeds -->\nold table\n<!-- /bench_seeds -->\nafter\n")
    results_io.update_page(str(page), "bench_seeds", bench_seeds.markdown_table(summary))
    text = page.read_text()
    assert "old table" not in text and text.startswith("before\n") and text.endswith("after\n")
    assert "| AltGD/Adam | 8 | 8 | 80 | 99.50 | 104.70 | 0.95 | - | 6.6x |" in text
    assert "| AltGD/Adam | 8 | 1 | 80 | 99.50 | 104.70 | 0.95 | - | - |" in text
    assert "| ACGD | 8 | 8 | 80 | 99.50 | 104.70 | 0.95 | 0.93 | - |" in text
    assert "| ACGD | 8 | 1 | 80 | 99.50 | 104.70 | 0.95 | - | - |" in text
    page.write_text("no markers\n")
    with pytest.raises(UserError, match="has no <!-- bench_seeds --> ... <!-- /bench_seeds -->"):
        results_io.update_page(str(page), "bench_seeds", "table")
