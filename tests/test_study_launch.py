"""Launching a study (gan_dynamics.runners.study_launch) as the command line does: the
toy 2x2-cell, 2-seed study of tests/test_study.py through submitit's LocalExecutor, 2
tasks at a time; SIGTERM to the study and a rerun; a diverging cell of the tiny image
GAN; the SLURM job array it would submit, with stand-ins for sbatch, srun and sacct."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import stat
import subprocess
import sys

import pytest

from gan_dynamics.runners import study
from tests import processes
from tests.test_fail_well import TINY
from tests.test_study import load, write_study

TIMEOUT = 600


def run_study(tmp_path, *args: str) -> tuple[int, str, str]:
    [result] = processes.finish(processes.start(tmp_path, args, 1), TIMEOUT)
    return result


def records(config, workdir) -> dict[int, dict]:
    return {t.index: study.read_record(os.path.join(workdir, t.directory))
            for t in study.tasks(config)}


def summary_rows(workdir) -> list[dict[str, str]]:
    with open(os.path.join(workdir, "summary.csv")) as f:
        return list(csv.DictReader(f))


def most_at_once(intervals) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = peak = 0
    for _, change in events:
        now += change
        peak = max(peak, now)
    return peak


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The toy study run once, uninterrupted: (config, workdir, stdout)."""
    tmp_path = tmp_path_factory.mktemp("study")
    path, workdir = write_study(tmp_path), str(tmp_path / "wd")
    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={workdir}")
    assert status == 0, err[-3000:]
    return load(path), workdir, out


def test_local_study_runs_every_task_two_at_a_time(finished):
    config, workdir, out = finished
    recs = records(config, workdir)
    assert [r["status"] for r in recs.values()] == ["done"] * 8
    assert all(len(r["attempts"]) == 1 for r in recs.values())
    spans = [(a["started"], a["started"] + a["seconds"])
             for r in recs.values() for a in r["attempts"]]
    assert most_at_once(spans) == 2
    assert "8 tasks: 8 done, 0 running, 0 left, 0 diverged, 0 failed" in out
    assert "cgd__a3 beats simgd__a3 on run/distance (last evaluation" in out
    rows = summary_rows(workdir)
    assert {r["cell"] for r in rows} == {"simgd__a1", "simgd__a3", "cgd__a1", "cgd__a3"}
    assert all(r["n"] == "2" for r in rows)
    for task in study.tasks(config):  # each task is an ordinary run in its directory
        assert os.path.exists(os.path.join(workdir, task.directory, "results.json"))


def test_sigterm_then_rerun_finishes_only_what_is_left(tmp_path, finished):
    config, reference, _ = finished
    path, workdir = write_study(tmp_path), str(tmp_path / "wd")
    [proc] = processes.start(tmp_path, [f"--config={path}", f"--workdir={workdir}"], 1)
    done = started = 0
    try:
        while not started:  # two tasks finished, and the next one started
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()[-3000:]
            done += line.startswith("task ") and ": done" in line
            started += line.startswith("started task ") and done >= 2
        proc.send_signal(signal.SIGTERM)
    finally:
        [(status, _, err)] = processes.finish([proc], TIMEOUT)
    assert status == 143, err[-3000:]
    assert "Rerun the same command to run only those" in err
    before = records(config, workdir)
    finished_first = {i for i, r in before.items() if r is not None and r["status"] == "done"}
    stopped = {i for i, r in before.items() if r is not None and r["status"] == "stopped"}
    assert 2 <= len(finished_first) < 8 and stopped  # stopped mid-way, not between tasks
    assert all(r["attempts"][-1]["exit_code"] == 143 for i, r in before.items() if i in stopped)

    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={workdir}")
    assert status == 0, err[-3000:]
    assert f"{len(finished_first)} finished earlier (skipped), {8 - len(finished_first)} to run" \
        in out
    after = records(config, workdir)
    for i, record in after.items():
        assert record["status"] == "done"
        if i in finished_first:  # not run again
            assert record["attempts"] == before[i]["attempts"]
        else:
            assert len(record["attempts"]) == (2 if i in stopped else 1)
    assert summary_rows(workdir) == summary_rows(reference)


# A study config file over the tiny GAN of test_fail_well (written beside it as tiny.py);
# each study adds its axes and seeds to `config`.
TINY_STUDY = """
import importlib.util, os

from gan_dynamics.runners import study


def get_config():
    spec = importlib.util.spec_from_file_location(
        "tiny", os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.py"))
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    config = study.default_config(tiny.get_config())
"""

DIVERGING = TINY_STUDY + """    sgd = {"name": "sgd", "lr": 1e30}
    config.axes = (study.axis("setting", {
        "adam": {},
        "huge_lr": {"loss.name": "wgan",
                    "optimizer": {"name": "simgd", "transform_x": sgd, "transform_y": sgd}},
    }),)
    config.summary.x_axis = "wall_seconds"
    return config
"""


def test_a_diverging_cell_is_reported_and_not_retried(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    path, workdir = write_study(tmp_path, DIVERGING, "diverging.py"), str(tmp_path / "wd")
    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={workdir}")
    assert status == 0, err[-3000:]
    assert "task 1 (huge_lr/seed_0): diverged at step 2" in out  # update 2 saw inf
    assert "2 tasks: 1 done, 0 running, 0 left, 1 diverged, 0 failed" in out
    record = study.read_record(os.path.join(workdir, "huge_lr", "seed_0"))
    assert (record["status"], record["step"], record["attempts"][0]["exit_code"]) == \
        ("diverged", 2, 3)
    rows = {(r["cell"], r["metric"], r["at"]): r for r in summary_rows(workdir)}
    assert {r["diverged"] for (cell, _, _), r in rows.items() if cell == "huge_lr"} == {"1"}
    assert rows[("adam", "f", "last")]["n"] == "1"
    # Image runs log wall seconds (and cumulative cost), which the curves put on x.
    assert os.path.exists(os.path.join(workdir, "plots", "curves_f.png"))
    assert ("adam", "wall_seconds", "last") not in rows  # an x axis, not a metric

    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={workdir}")
    assert status == 0, err[-3000:]
    assert "2 finished earlier (skipped), 0 to run" in out
    again = study.read_record(os.path.join(workdir, "huge_lr", "seed_0"))
    assert again["attempts"] == record["attempts"]


def _script(path, text: str) -> None:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_slurm_builds_one_job_array_and_its_elements_run_their_tasks(tmp_path):
    bin_dir, captured = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    captured.mkdir()
    # Stand-ins for a cluster: sbatch keeps the script it was given and answers as SLURM
    # does; sacct says every element of the array is running; srun need only exist.
    _script(bin_dir / "sbatch", f'cp "$1" {captured}/$(date +%s%N).sh\n'
                                'echo "Submitted batch job 4242"\n')
    _script(bin_dir / "sacct", "echo 'JobID|State|NodeList'\n"
                               "for i in 0 1 2 3 4 5 6 7; do echo \"4242_$i|RUNNING|node1\"; done\n")
    _script(bin_dir / "srun", "exit 1\n")
    path, workdir = write_study(tmp_path), str(tmp_path / "wd")
    args = [sys.executable, os.path.join(processes.ROOT, "experiments", "run.py"),
            f"--config={path}", f"--workdir={workdir}", "--config.launcher=slurm",
            "--config.slurm.partition=gpu", "--config.slurm.time_min=90",
            "--config.slurm.gpus_per_task=1", "--config.slurm.cpus_per_task=4",
            "--config.slurm.mem_gb=16", "--config.slurm.setup=('source venv/bin/activate',)"]
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=processes.ROOT,
               JAX_PLATFORMS="cpu")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Submitted job array 4242: 8 tasks, at most 2 at a time" in done.stdout
    [script] = [p.read_text() for p in captured.iterdir()]
    for line in ("#SBATCH --array=0-7%2", "#SBATCH --partition=gpu", "#SBATCH --time=90",
                 "#SBATCH --gpus-per-task=1", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem=16GB", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
                 "source venv/bin/activate"):
        assert line in script.splitlines(), (line, script)
    assert "srun --unbuffered" in script and "-m submitit.core._submit" in script
    with open(os.path.join(workdir, "slurm.json")) as f:
        submitted = json.load(f)
    assert submitted == {"job_id": "4242", "tasks": {str(i): i for i in range(8)}}

    # Element 3 of the array runs exactly task 3 (what SLURM would start on a node).
    with open(os.path.join(workdir, "submitit", "4242_3_submitted.pkl"), "rb") as f:
        delayed = pickle.load(f)
    argv, log = delayed.args
    assert argv[-1] == "--task=3" and log.endswith("cgd__a3/seed_0/log.txt")
    assert subprocess.run(argv, env=env, timeout=TIMEOUT).returncode == 0
    assert study.read_record(os.path.join(workdir, "cgd__a3", "seed_0"))["status"] == "done"

    # A rerun while SLURM still runs the array submits nothing again.
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                           cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "still queued or running in the last array" in again.stdout
    assert len(list(captured.iterdir())) == 1
