"""Studies whose cells run their seeds in one program (`seeds_in_one_program`): a tiny
image study of 2 cells x 2 seeds through LocalExecutor gives 2 tasks whose seeds land in
the directories of separate tasks, and the summary equals the separate-task study's; a
seed that diverged inside a finished program is counted; the option is refused for a
non-image base, and a change of `seeds` on a workdir it ran is refused in one line."""

from __future__ import annotations

import json
import math
import os

import pytest

from gan_dynamics.errors import UserError
from gan_dynamics.runners import study
from tests.test_fail_well import TINY
from tests.test_study import RUN, load, write_study
from tests.test_study_launch import TINY_STUDY, run_study, summary_rows

TWO_CELLS = TINY_STUDY + """\
    config.axes = (study.axis("lr", {"small": {}, "large": {"optimizer.transform_x.lr": 3e-3}}),)
    config.seeds = 2
    return config
"""
# The K-seed program computes each seed's run to float rounding (a vmapped step, not
# bit-identical XLA code): measured, the last logged values and the summary's means
# differ by at most 3.5e-10 (1.1e-6 relative, on a value of 6e-5).
RTOL, ATOL = 1e-5, 1e-8


def last_rows(directory: str) -> dict[str, float]:
    """The last logged value of every metric of a run's metrics.jsonl (not its clock)."""
    out: dict[str, float] = {}
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        for line in f:
            out.update(json.loads(line))
    return {k: v for k, v in out.items()
            if k not in ("wall_seconds", "compile_seconds") and isinstance(v, (int, float))}


def test_one_program_per_cell_gives_the_separate_tasks_numbers(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    path = write_study(tmp_path, TWO_CELLS, "two_cells.py")
    separate, joint = str(tmp_path / "separate"), str(tmp_path / "joint")
    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={separate}")
    assert status == 0, err[-3000:]
    assert "4 tasks: 4 done" in out
    flag = "--config.seeds_in_one_program=True"
    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={joint}", flag)
    assert status == 0, err[-3000:]
    assert "2 tasks: 2 done, 0 running, 0 left, 0 diverged, 0 failed (4 seeds: 4 done, " \
           "0 diverged)" in out
    config = load(path, flag)
    assert [(t.index, t.directory) for t in study.tasks(config)] == [(0, "small"), (1, "large")]
    with open(os.path.join(joint, study.STUDY_FILE)) as f:
        assert [(t["directory"], t["seeds"]) for t in json.load(f)["tasks"]] == \
            [("small", [0, 1]), ("large", [0, 1])]
    for cell in ("small", "large"):
        record = study.read_record(os.path.join(joint, cell))
        assert (record["status"], record["config"]["train"]["num_seeds"]) == ("done", 2)
        for k in range(2):  # the same directory and seed as the separate task
            with open(os.path.join(joint, cell, f"seed_{k}", "config.json")) as f:
                seed = json.load(f)["seed"]
            assert seed == study.read_record(os.path.join(separate, cell, f"seed_{k}")
                                             )["config"]["seed"]
            a = last_rows(os.path.join(separate, cell, f"seed_{k}"))
            b = last_rows(os.path.join(joint, cell, f"seed_{k}"))
            assert a.keys() == b.keys() and "f" in a
            for name in a:
                assert b[name] == pytest.approx(a[name], rel=RTOL, abs=ATOL), (cell, k, name)
    rows_a, rows_b = summary_rows(separate), summary_rows(joint)
    assert len(rows_a) == len(rows_b) > 0
    for a, b in zip(rows_a, rows_b):
        assert (a["cell"], a["metric"], a["at"], a["n"], a["diverged"], a["seeds"]) == \
            (b["cell"], b["metric"], b["at"], b["n"], b["diverged"], b["seeds"]) == \
            (a["cell"], a["metric"], a["at"], "2", "0", "2")
        for field in ("mean", "median"):
            x, y = float(a[field]), float(b[field])
            assert math.isclose(x, y, rel_tol=RTOL, abs_tol=ATOL), (a["metric"], field, x, y)

    # A rerun skips the finished programs; another number of seeds is refused in one line.
    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={joint}", flag)
    assert status == 0 and "2 finished earlier (skipped), 0 to run" in out, err[-3000:]
    status, out, err = run_study(tmp_path, f"--config={path}", f"--workdir={joint}", flag,
                                 "--config.seeds=3")
    assert status == 2
    assert "config.seeds=3, but" in err and "restore config.seeds=2" in err


def test_the_option_needs_an_image_base(tmp_path, capsys):
    path, workdir = write_study(tmp_path), tmp_path / "wd"
    assert RUN.main(["run.py", f"--config={path}", f"--workdir={workdir}",
                     "--config.seeds_in_one_program=True"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "seeds_in_one_program=True needs an image base" in line and "'toy_game'" in line
    assert not workdir.exists()


def test_a_seed_that_diverged_in_a_finished_program_is_counted(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    config = load(write_study(tmp_path, TWO_CELLS, "two_cells.py"),
                  "--config.seeds_in_one_program=True")
    workdir = str(tmp_path / "wd")
    for cell, statuses in (("small", ["done", "done"]), ("large", ["diverged", "done"])):
        os.makedirs(os.path.join(workdir, cell))
        study.write_record(os.path.join(workdir, cell), {"status": "done", "attempts": []})
        with open(os.path.join(workdir, cell, "results.json"), "w") as f:
            json.dump({"seeds": [{"status": s} for s in statuses]}, f)
    states = {(r.cell.name, r.seed): study.run_state(config, workdir, r)
              for r in study.runs(config)}
    assert states == {("small", 0): "done", ("small", 1): "done",
                      ("large", 0): "diverged", ("large", 1): "done"}
    line = study.progress_line(config, workdir, study.tasks(config), ())
    assert line.startswith("2 tasks: 2 done, 0 running, 0 left, 0 diverged, 0 failed "
                           "(4 seeds: 3 done, 1 diverged)")


def test_list_and_a_workdir_of_the_other_layout(tmp_path, capsys):
    (tmp_path / "tiny.py").write_text(TINY)
    path, workdir = write_study(tmp_path, TWO_CELLS, "two_cells.py"), tmp_path / "wd"
    flag = "--config.seeds_in_one_program=True"
    assert RUN.main(["run.py", f"--config={path}", f"--workdir={workdir}", "--list", flag]) == 0
    out = capsys.readouterr().out
    assert "2 cells x 2 seeds in one program each = 2 tasks" in out
    assert out.splitlines()[3].split() == ["1", "large", "0..1", "new", "large"]
    config = load(path, flag)
    os.makedirs(workdir / "small" / "seed_0")
    study.write_record(str(workdir / "small" / "seed_0"), {"status": "done"})
    with pytest.raises(UserError, match="ran cell small's seeds as separate tasks"):
        study.check_layout(config, str(workdir), study.cells(config)[0])
    (workdir / "large").mkdir()
    study.write_record(str(workdir / "large"), {"status": "done"})
    with pytest.raises(UserError, match="ran cell large as one program of its seeds"):
        study.check_layout(load(path), str(workdir), study.cells(config)[1])
