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
