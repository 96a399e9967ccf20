"""Studies (gan_dynamics.runners.study): the task mapping is a stable, total function of
the config; `--list` and `--task=N` through the entry point; every cell is checked before
anything starts.

The study here is a 2x2 grid (optimizer x game coupling) of the bilinear toy game with a
random start, so that seeds differ and a task runs in about a second in-process.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time

import ml_collections
import pytest

from gan_dynamics import signals
from gan_dynamics.errors import UserError
from gan_dynamics.runners import study
from tests.test_fail_well import load_run_module

RUN = load_run_module()

TOY_STUDY = textwrap.dedent("""
    from gan_dynamics.runners import study
    from gan_dynamics.runners.toy_run import default_config, sgd_players

    def get_config():
        base = default_config()
        base.game.name = "bilinear"
        base.game.alpha = 1.0
        base.game.dim = 1
        base.game.x0 = 0.5
        base.game.y0 = 0.5
        base.game.init_noise = 0.1
        base.steps = 20
        base.seed = 10
        base.optimizers.run = {"optimizer": "simgd", **sgd_players(0.2, 0.2)}
        config = study.default_config(base)
        config.axes = (
            study.axis("opt", {
                "simgd": {},
                "cgd": {"optimizers.run": {"optimizer": "cgd", "lr_x": 0.2, "lr_y": 0.2}},
            }),
            study.axis("alpha", {"a1": {"game.alpha": 1.0}, "a3": {"game.alpha": 3.0}}),
        )
        config.seeds = 2
        config.summary.compare = ("cgd__a3", "simgd__a3")
        return config
""")


def write_study(tmp_path, text: str = TOY_STUDY, name: str = "toy_study.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load(path: str, *overrides: str) -> ml_collections.ConfigDict:
    inv = RUN.parse(["run.py", f"--config={path}", *overrides])
    return inv.config


def test_task_mapping_is_total_and_stable(tmp_path):
    config = load(write_study(tmp_path))
    every = study.tasks(config)
    # Seed-major: the first 4 tasks are seed 0 of every cell, the last axis fastest.
    assert [(t.index, t.cell.name, t.seed, t.directory) for t in every] == [
        (0, "simgd__a1", 0, "simgd__a1/seed_0"), (1, "simgd__a3", 0, "simgd__a3/seed_0"),
        (2, "cgd__a1", 0, "cgd__a1/seed_0"), (3, "cgd__a3", 0, "cgd__a3/seed_0"),
        (4, "simgd__a1", 1, "simgd__a1/seed_1"), (5, "simgd__a3", 1, "simgd__a3/seed_1"),
        (6, "cgd__a1", 1, "cgd__a1/seed_1"), (7, "cgd__a3", 1, "cgd__a3/seed_1")]
    # Total: every index maps to one (cell, seed) and back; nothing else is a task.
    assert len({(t.cell.name, t.seed) for t in every}) == len(every) == 8
    for t in every:
        assert study.task_at(config, t.index) == t
    for bad in (-1, 8):
        with pytest.raises(UserError, match=r"--task=.* has 8 \(0 to 7"):
            study.task_at(config, bad)
    # Stable: the same config gives the same table, and more seeds only append tasks.
    assert study.tasks(load(write_study(tmp_path))) == every
    more = load(write_study(tmp_path), "--config.seeds=3")
    assert study.tasks(more)[:8] == every and len(study.tasks(more)) == 12


def test_task_config_is_the_base_with_the_cell_and_the_seed(tmp_path):
    config = load(write_study(tmp_path))
    run = study.task_config(config, study.task_at(config, 7))  # cgd__a3, seed 1
    expected = config.base.to_dict()
    expected["game"]["alpha"] = 3.0
    expected["optimizers"]["run"] = {"optimizer": "cgd", "lr_x": 0.2, "lr_y": 0.2}
    expected["seed"] = 11  # the base's seed 10 + seed index 1
    assert run.to_dict() == expected
    assert study.task_config(config, study.task_at(config, 0)).seed == 10


def test_random_draws_are_shared_by_the_grid_and_stable(tmp_path):
    text = TOY_STUDY.replace("config.seeds = 2", textwrap.indent(textwrap.dedent("""\
        config.seeds = 2
        config.num_samples = 3
        config.ranges = (study.draw("lr", "log_uniform", (1e-3, 1e-1),
                                    ("optimizers.run.lr_x", "optimizers.run.transform_x.lr")),)
        """), "    ").lstrip())
    config = load(write_study(tmp_path, text))
    cells = study.cells(config)
    assert len(cells) == 12 and cells[0].name == "simgd__a1__s0"
    lrs = {}
    for cell in cells:
        (path, value), = [o for o in cell.overrides if o[0].endswith(("lr_x", "transform_x.lr"))]
        assert path == ("optimizers.run.lr_x" if cell.name.startswith("cgd")
                        else "optimizers.run.transform_x.lr")
        assert 1e-3 <= value <= 1e-1
        lrs.setdefault(dict(cell.levels)["sample"], set()).add(value)
    assert all(len(v) == 1 for v in lrs.values())  # draw j is the same in every grid cell
    more = load(write_study(tmp_path, text), "--config.num_samples=4")
    assert [c.overrides for c in study.cells(more) if c.name.endswith("s2")] == \
        [c.overrides for c in cells if c.name.endswith("s2")]


def test_list_prints_every_task(tmp_path, capsys):
    path = write_study(tmp_path)
    assert RUN.main(["run.py", f"--config={path}", f"--workdir={tmp_path / 'wd'}", "--list"]) == 0
    out = capsys.readouterr().out
    assert "4 cells x 2 seeds = 8 tasks" in out
    rows = [line.split() for line in out.splitlines()[2:10]]
    assert rows[7] == ["7", "cgd__a3", "1", "new", "cgd__a3/seed_1"]
    assert 'cgd__a3: optimizers.run={"optimizer": "cgd", "lr_x": 0.2, "lr_y": 0.2}, ' \
           "game.alpha=3.0" in out
    assert not (tmp_path / "wd").exists()  # listing writes nothing


def test_task_runs_exactly_one_ordinary_run(tmp_path):
    path, workdir = write_study(tmp_path), tmp_path / "wd"
    assert RUN.main(["run.py", f"--config={path}", f"--workdir={workdir}", "--task=3"]) == 0
    assert sorted(os.listdir(workdir)) == ["cgd__a3"]
    run_dir = workdir / "cgd__a3" / "seed_0"
    assert {"results.json", "trajectories.npz", "task.json"} <= set(os.listdir(run_dir))
    record = json.loads((run_dir / "task.json").read_text())
    assert (record["status"], record["task"], record["seed"]) == ("done", 3, 0)
    assert record["config"]["game"]["alpha"] == 3.0 and len(record["attempts"]) == 1


def test_a_sigterm_that_a_library_turns_into_another_error_still_reads_as_stopped(tmp_path):
    """SIGTERM raises in a runner without a handler of its own wherever it is, and JAX,
    starting a backend, catches that and raises its own error: the task is still
    recorded as stopped (143), not failed, and a rerun runs it again."""
    config = load(write_study(tmp_path))

    def interrupted(run, directory):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        except signals.Stopped as err:
            raise RuntimeError("Unable to initialize backend 'cpu'") from err

    with pytest.raises(signals.Stopped) as stop:
        study.run_task(config, str(tmp_path / "wd"), 0, interrupted)
    assert stop.value.exit_code == 143
    record = study.read_record(str(tmp_path / "wd" / "simgd__a1" / "seed_0"))
    assert record["status"] == "stopped" and record["attempts"][0]["exit_code"] == 143


@pytest.mark.parametrize("override, words", [
    ("--config.base.optimizers.run.transform_x.lr=-0.2",
     ["Cell simgd__a1:", "lr=-0.2", "> 0"]),
    ("--config.seeds=0", ["config.seeds=0", ">= 1"]),
    ("--config.launcher=slrum", ["config.launcher='slrum'", "Did you mean 'slurm'"]),
])
def test_a_bad_value_stops_the_study_before_any_task(tmp_path, capsys, override, words):
    path, workdir = write_study(tmp_path), tmp_path / "wd"
    assert RUN.main(["run.py", f"--config={path}", f"--workdir={workdir}", override]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("Error: ") and all(w in line for w in words), line
    assert not workdir.exists()


def test_a_bad_path_in_one_cell_names_it(tmp_path, capsys):
    text = TOY_STUDY.replace('"a3": {"game.alpha": 3.0}', '"a3": {"game.alpah": 3.0}')
    path, workdir = write_study(tmp_path, text), tmp_path / "wd"
    assert RUN.main(["run.py", f"--config={path}", f"--workdir={workdir}"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'game.alpah' does not exist" in line and "Did you mean 'alpha'" in line
    assert not workdir.exists()


def test_study_flags_need_a_study(tmp_path):
    bilinear = os.path.join(os.path.dirname(RUN.__file__), "bilinear.py")
    with pytest.raises(UserError, match="--task apply to study configs"):
        RUN.parse(["run.py", f"--config={bilinear}", "--task=0"])


STUDIES = os.path.join(os.path.dirname(RUN.__file__), "studies")


@pytest.mark.parametrize("name, tasks", [("icr_digits", 20), ("fedus_digits", 18),
                                         ("icr_cifar10", 20), ("fedus_cifar10", 18)])
def test_committed_studies_check(name, tasks):
    """Every cell of the committed studies builds (their data is not opened: CIFAR-10 is
    not prepared everywhere)."""
    inv = RUN.parse(["run.py", f"--config={os.path.join(STUDIES, name + '.py')}"])
    every = study.check_tasks(inv.config, data=False)
    assert len(every) == tasks
    first, last = every[0], every[-1]
    assert study.task_config(inv.config, last).seed == \
        study.task_config(inv.config, first).seed + inv.config.seeds - 1
