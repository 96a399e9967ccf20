"""Studies: one base experiment run over a grid of settings and seeds, as ordinary runs.

A study answers "does optimizer A train better GANs than B?" the way Lucic et al. 2018
("Are GANs created equal?") and Fedus et al. 2018 ("Many paths to equilibrium") do:
every model under several hyperparameter settings and several seeds, scored by the same
metrics, compared with their uncertainty (`study_summary`). This module is what a study
*is*: its config, the pure mapping task index -> (cell, seed) -> run config, and how one
task runs and records its outcome. `study_launch` runs the tasks (submitit: processes on
this machine or a SLURM job array); docs/studies.md is the user's guide.

A study config (runner "study"; `default_config(base)` makes one) has:

  base         a complete config of another runner (image, synthetic, toy_game, ...);
  axes         the grid: `(axis(name, {level: {path: value}}), ...)`; a cell takes one
               level of every axis, and its overrides are set on the base in axis order
               (a dict value replaces a whole section, as `--config.section='{...}'` does);
  num_samples  Lucic's phase 1: this many random settings per grid cell, each drawn from
  ranges       `(draw(name, kind, args, paths), ...)` with `sample_seed`; draw j is the
               same in every grid cell, so models are compared on the same settings;
  seeds        runs per cell; seed k sets `seed_path` (default "seed") to base value + k;
  seeds_in_one_program  (image bases only) run each cell's seeds as one K-seed program
               (`train.num_seeds = seeds`) instead of one task per seed;
  launcher, parallel_tasks, slurm, summary: how to run and summarise (not the tasks).

Task t is (cell t % C, seed t // C) for C cells: seed-major, so that the first C tasks
give every cell one seed, and raising `seeds` appends tasks without renumbering any.
Task t runs in `<workdir>/<cell>/seed_<k>` as an ordinary run (its config.json,
checkpoints, metrics.jsonl) and records its outcome in `task.json` there (`run_task`):
done, diverged (non-finite loss, exit 3; with its step), stopped (a signal; resumable),
failed (a user error or a crash, with its message). The record, not the launcher, says
what a rerun must do, so any launcher that runs `--task=N` (a SLURM array, a Kubernetes
job) keeps the study resumable.

With `seeds_in_one_program`, task t is cell t, whose one program trains every seed: it
runs in `<workdir>/<cell>` with the base's seed and `train.num_seeds = seeds`, so seed k
lands in `<workdir>/<cell>/seed_<k>` with seed base + k, the directory and seed of the
separate task it replaces; the record is `<cell>/task.json`, and each seed's own outcome
(a seed may diverge while the others finish) is read from the program's results.json
(`run_state`). The summary reads the seeds' runs (`runs`) either way.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import signal
import socket
import sys
import time
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional, Sequence

import ml_collections
import numpy as np

from gan_dynamics import progress, signals
from gan_dynamics.checks import is_int_at_least
from gan_dynamics.errors import NonFiniteLoss, UserError, did_you_mean
from gan_dynamics.runners import dispatch

TASK_FILE = "task.json"
STUDY_FILE = "study.json"
LAUNCHERS = ("local", "slurm")
DRAW_KINDS = ("uniform", "log_uniform", "choice")
X_AXES = ("step", "grad_evals", "wall_seconds")
# Final states: a rerun skips them. Every other state (stopped, failed, running with no
# live process) is run again, resuming from the task's checkpoints where it has them.
FINAL = ("done", "diverged")
# Tasks are listed, checked and recorded one by one (a directory each): a study of more
# is a typo in seeds, num_samples or the axes, not a plan.
MAX_TASKS = 1_000_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")

RunConfig = Callable[[ml_collections.ConfigDict, str], Any]


# -- the study config --------------------------------------------------------------------

def default_config(base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A study of `base` with no axes, one seed, run locally two tasks at a time."""
    config = ml_collections.ConfigDict()
    config.runner = "study"
    config.base = base
    config.axes = ()
    config.num_samples = 0
    config.ranges = ()
    config.sample_seed = 0
    config.seeds = 1
    config.seed_path = "seed"
    # True: one K-seed program per cell (image bases; for accelerators, where the seeds
    # share the device); False: one task per seed, the faster choice on a CPU.
    config.seeds_in_one_program = False
    config.launcher = "local"
    config.parallel_tasks = 2
    config.slurm = ml_collections.ConfigDict({
        "partition": "",  # "": the cluster's default
        "time_min": 60,  # per task; a task stopped at its limit resumes on a rerun
        "gpus_per_task": 0,
        "cpus_per_task": 2,
        "mem_gb": 0,  # 0: the partition's default
        "account": "",
        "qos": "",
        "setup": (),  # shell lines run before each task, e.g. ("source .venv/bin/activate",)
    })
    config.summary = ml_collections.ConfigDict({
        "metrics": (),  # logged names to summarise; (): every logged metric
        "x_axis": "step",  # of the curves: step, grad_evals or wall_seconds
        "model_axis": "",  # the axis whose levels are models; "": the first axis
        "compare": (),  # two cell names: the paired difference of the first over the second
        "lower_is_better": (),  # metric names added to study_summary's direction table
        "higher_is_better": (),
    })
    return config


def axis(name: str, levels: Mapping[str, Mapping[str, Any]]) -> tuple:
    """One grid axis: `name` and, per level, the overrides {dotted path: value} it sets.

    Stored as nested tuples, because a ConfigDict takes no dots in its keys.
    """
    return (name, tuple((level, tuple(overrides.items())) for level, overrides in levels.items()))


def draw(name: str, kind: str, args: Sequence[Any], paths: Sequence[str]) -> tuple:
    """One random-search range: `kind` (uniform, log_uniform: args (low, high); choice:
    args the options), written to every path of `paths` that the cell's config has (so one
    "learning rate" can reach Adam's `optimizer.transform_x.lr` and ACGD's `optimizer.lr_x`)."""
    return (name, kind, tuple(args), tuple(paths))


_SCHEMA = default_config(ml_collections.ConfigDict({"runner": "toy_game"}))


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value


def check_study(config: ml_collections.ConfigDict) -> None:
    """UserError on unknown keys and bad values of the study's own sections."""
    for section, reference, where in ((config, _SCHEMA, "config"),
                                      (config.get("slurm", {}), _SCHEMA.slurm, "config.slurm"),
                                      (config.get("summary", {}), _SCHEMA.summary,
                                       "config.summary")):
        extra = sorted(set(section.keys()) - set(reference.keys()))
        if extra:
            hints = "".join(did_you_mean(k, reference.keys()) for k in extra)
            raise UserError(f"Unknown study key(s) {extra} in {where}.{hints} Known keys: "
                            f"{sorted(reference.keys())}.")
    missing = sorted(set(_SCHEMA.keys()) - set(config.keys()))
    if missing:
        raise UserError(f"The study config lacks {missing}; start it from "
                        "gan_dynamics.runners.study.default_config(base).")
    if not isinstance(config.base, ml_collections.ConfigDict) or "runner" not in config.base:
        raise UserError("config.base must be a complete experiment config with its own "
                        "`runner`, e.g. the get_config() of experiments/offline_digits.py.")
    if config.base.runner == "study":
        raise UserError("config.base is itself a study; a study's base must be one run's "
                        "config (add its axes to this study instead).")
    if not is_int_at_least(config.seeds, 1):
        raise UserError(f"config.seeds={config.seeds!r} must be an integer >= 1 (runs per "
                        "cell).")
    if not isinstance(config.seeds_in_one_program, bool):
        raise UserError(f"config.seeds_in_one_program={config.seeds_in_one_program!r} must "
                        "be True or False.")
    if config.seeds_in_one_program and config.base.runner != "image":
        raise UserError(f"config.seeds_in_one_program=True needs an image base (runner "
                        f"'image' trains several seeds in one program); this base's runner "
                        f"is {config.base.runner!r}: set it to False.")
    if config.seeds_in_one_program and config.seed_path != "seed":
        raise UserError(f"config.seeds_in_one_program=True varies `seed` (a K-seed program "
                        f"trains seeds seed..seed+K-1), not config.seed_path="
                        f"{config.seed_path!r}; set seed_path to 'seed' or the option to "
                        "False.")
    if not is_int_at_least(config.num_samples, 0):
        raise UserError(f"config.num_samples={config.num_samples!r} must be an integer >= 0 "
                        "(random settings per grid cell; 0: none).")
    if config.num_samples and not config.ranges:
        raise UserError(f"config.num_samples={config.num_samples} needs config.ranges to "
                        "draw from, e.g. (study.draw('lr', 'log_uniform', (1e-5, 1e-2), "
                        "('optimizer.lr_x',)),).")
    if config.launcher not in LAUNCHERS:
        raise UserError(f"config.launcher={config.launcher!r} must be one of {list(LAUNCHERS)}."
                        + did_you_mean(config.launcher, LAUNCHERS))
    if not is_int_at_least(config.parallel_tasks, 1):
        raise UserError(f"config.parallel_tasks={config.parallel_tasks!r} must be an "
                        "integer >= 1 (tasks running at once).")
    s = config.slurm
    for key, minimum in (("time_min", 1), ("gpus_per_task", 0), ("cpus_per_task", 1),
                         ("mem_gb", 0)):
        if not is_int_at_least(s[key], minimum):
            raise UserError(f"config.slurm.{key}={s[key]!r} must be an integer >= {minimum}.")
    if config.summary.x_axis not in X_AXES:
        raise UserError(f"config.summary.x_axis={config.summary.x_axis!r} must be one of "
                        f"{list(X_AXES)}.")
    for key in ("partition", "account", "qos"):
        if not isinstance(s[key], str):
            raise UserError(f"config.slurm.{key}={s[key]!r} must be a string (\"\": the "
                            "cluster's default).")
    if not _strings(s.setup):
        raise UserError(f"config.slurm.setup={s.setup!r} must be a tuple of shell lines, "
                        "e.g. (\"source .venv/bin/activate\",).")
    _check_summary(config.summary)
    _check_axes(config.axes)
    _check_ranges(config.ranges)
    grid = math.prod(len(levels) for _, levels in config.axes)
    count = grid * max(config.num_samples, 1) * config.seeds
    if count > MAX_TASKS:
        raise UserError(f"This study has {count:,} tasks ({grid} grid cells x "
                        f"config.num_samples={config.num_samples} x config.seeds="
                        f"{config.seeds}), more than {MAX_TASKS:,}; lower them.")


def _strings(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)


def _check_summary(summary: Any) -> None:
    """UserError on a `config.summary` value of the wrong kind (read after the tasks ran)."""
    for key in ("metrics", "compare", "lower_is_better", "higher_is_better"):
        if not _strings(summary[key]):
            raise UserError(f"config.summary.{key}={summary[key]!r} must be a tuple of names.")
    if len(summary.compare) not in (0, 2):
        raise UserError(f"config.summary.compare={tuple(summary.compare)!r} must name two "
                        "cells (the first compared with the second), or none.")
    if not isinstance(summary.model_axis, str):
        raise UserError(f"config.summary.model_axis={summary.model_axis!r} must be an axis "
                        "name (\"\": the first axis).")


def _check_axes(axes: Any) -> None:
    names = []
    for entry in axes:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise UserError(f"config.axes entry {entry!r} is not (name, levels); build axes "
                            "with study.axis(name, {level: {path: value}}).")
        name, levels = entry
        names.append(name)
        if not levels:
            raise UserError(f"config.axes: axis {name!r} has no levels; give it at least one.")
        for level, overrides in levels:
            if not (isinstance(level, str) and _NAME.match(level)):
                raise UserError(f"config.axes: level {level!r} of axis {name!r} must be a "
                                "name of letters, digits and _.+- (it names directories).")
            for item in overrides:
                if not (isinstance(item, (tuple, list)) and len(item) == 2
                        and isinstance(item[0], str)):
                    raise UserError(f"config.axes: level {level!r} of axis {name!r} has "
                                    f"override {item!r}; overrides are {{'a.b': value}}.")
        if len({level for level, _ in levels}) != len(levels):
            raise UserError(f"config.axes: axis {name!r} repeats a level name.")
    if len(set(names)) != len(names):
        raise UserError(f"config.axes repeats an axis name: {names}.")


def _check_ranges(ranges: Any) -> None:
    for entry in ranges:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 4):
            raise UserError(f"config.ranges entry {entry!r} is not (name, kind, args, paths); "
                            "build it with study.draw(...).")
        name, kind, args, paths = entry
        if kind not in DRAW_KINDS:
            raise UserError(f"config.ranges {name!r}: kind {kind!r} must be one of "
                            f"{list(DRAW_KINDS)}.")
        if kind == "choice":
            if len(args) < 1:
                raise UserError(f"config.ranges {name!r}: a choice needs options.")
            continue
        if len(args) != 2 or not all(isinstance(a, (int, float)) for a in args) or \
                not args[0] < args[1] or (kind == "log_uniform" and args[0] <= 0):
            raise UserError(f"config.ranges {name!r}: {kind} takes (low, high) with low < high"
                            + (" and low > 0" if kind == "log_uniform" else "")
                            + f"; got {tuple(args)}.")
        if not paths:
            raise UserError(f"config.ranges {name!r} names no config path to set.")


# -- cells and tasks: pure functions of the config ---------------------------------------

class Cell(NamedTuple):
    """One setting of the study: a level of every axis (and a random draw, if sampled)."""

    index: int
    name: str  # the directory name: levels joined by "__"
    levels: tuple[tuple[str, str], ...]  # (axis, level) ...; ("sample", "sN") if sampled
    overrides: tuple[tuple[str, Any], ...]  # (dotted path, value), set in this order


class Task(NamedTuple):
    """One run: a cell and a seed (with `seeds_in_one_program`, a task is a cell's
    program of every seed, with seed 0 and directory "<cell>")."""

    index: int
    cell: Cell
    seed: int  # 0 .. seeds - 1
    directory: str  # relative to the study's workdir: "<cell>/seed_<k>"


def _has_path(tree: Mapping[str, Any], path: str) -> bool:
    node: Any = tree
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def set_path(tree: dict[str, Any], path: str, value: Any, where: str) -> dict[str, Any]:
    """A copy of the plain-dict config `tree` with `path` set to `value`.

    The path must exist (a typo fails here, as an unknown `--config.a.b` does); a dict
    value replaces the whole section.
    """
    out = copy.deepcopy(tree)
    node, keys = out, path.split(".")
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            here = "config.base" + "".join(f".{k}" for k in keys[:i])
            known = sorted(node) if isinstance(node, dict) else []
            raise UserError(f"{where}: {path!r} does not exist ({here} has no {key!r})."
                            f"{did_you_mean(key, known)} Its keys: {known}.")
        if i == len(keys) - 1:
            node[key] = copy.deepcopy(_plain(value))
        else:
            node = node[key]
    return out


def _draw_value(rng: np.random.Generator, kind: str, args: Sequence[Any]) -> Any:
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "log_uniform":
        return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
    return args[int(rng.integers(len(args)))]


def draws(config: ml_collections.ConfigDict) -> list[tuple[tuple[str, Any], ...]]:
    """The `num_samples` random settings, each ((range name, value), ...).

    Draw j uses the generator seeded with (sample_seed, j): it does not depend on the
    number of draws, so raising num_samples keeps the earlier draws.
    """
    out = []
    for j in range(int(config.num_samples)):
        rng = np.random.default_rng([int(config.sample_seed), j])
        out.append(tuple((name, _draw_value(rng, kind, args))
                         for name, kind, args, _ in config.ranges))
    return out


def cells(config: ml_collections.ConfigDict) -> list[Cell]:
    """Every cell: the product of the axes' levels (the last axis fastest), each grid
    cell followed by its random draws when `num_samples` > 0."""
    axes = list(config.axes)
    grid = itertools.product(*[[(name, level, tuple(overrides)) for level, overrides in levels]
                               for name, levels in axes]) if axes else [()]
    sampled = draws(config)
    base = _plain(config.base)
    out: list[Cell] = []
    for combo in grid:
        levels = tuple((name, level) for name, level, _ in combo)
        overrides = tuple(item for *_, items in combo for item in items)
        names = [level for _, level in levels] or ["base"]
        if not sampled:
            out.append(Cell(len(out), "__".join(names), levels, tuple(map(tuple, overrides))))
            continue
        tree = base
        for path, value in overrides:
            tree = set_path(tree, path, value, f"config.axes ({'__'.join(names)})")
        for j, values in enumerate(sampled):
            extra = []
            for (name, _, _, paths), (_, value) in zip(config.ranges, values):
                present = [p for p in paths if _has_path(tree, p)]
                if not present:
                    raise UserError(f"config.ranges {name!r}: none of {list(paths)} exists in "
                                    f"cell {'__'.join(names)}'s config; add a path it has.")
                extra += [(p, value) for p in present]
            out.append(Cell(len(out), "__".join(names + [f"s{j}"]), levels + (("sample", f"s{j}"),),
                            tuple(map(tuple, overrides)) + tuple(extra)))
    return out


def runs(config: ml_collections.ConfigDict) -> list[Task]:
    """Every seed's run, in the order of separate tasks: run t = (cell t % C, seed t // C)
    in `<cell>/seed_<k>`; what the summary reads."""
    all_cells = cells(config)
    return [Task(s * len(all_cells) + c.index, c, s, f"{c.name}/seed_{s}")
            for s in range(int(config.seeds)) for c in all_cells]


def tasks(config: ml_collections.ConfigDict) -> list[Task]:
    """Every task in index order: the runs (task t = cell t % C, seed t // C), or with
    `seeds_in_one_program` one task per cell (task t = cell t, in `<cell>`)."""
    if config.seeds_in_one_program:
        return [Task(c.index, c, 0, c.name) for c in cells(config)]
    return runs(config)


def task_at(config: ml_collections.ConfigDict, index: int) -> Task:
    """Task number `index`; a UserError naming the valid range if there is none."""
    every = tasks(config)
    if not 0 <= index < len(every):
        raise UserError(f"--task={index} is not a task of this study: it has {len(every)} "
                        f"(0 to {len(every) - 1}; --list prints them).")
    return every[index]


def task_config(config: ml_collections.ConfigDict, task: Task,
                overridden: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """The complete run config of `task`: the base, the cell's overrides, the seed.

    `overridden`: the base's paths the command line set (`--config.base.a.b=v` gives
    "a.b"), which the base's `quick_settings` must leave alone, like the cell's own.
    """
    tree = _plain(config.base)
    where = f"config.axes ({task.cell.name})"
    for path, value in task.cell.overrides:
        tree = set_path(tree, path, value, where)
    seed_path = str(config.seed_path)
    if not _has_path(tree, seed_path):
        raise UserError(f"config.seed_path={seed_path!r} does not exist in the base config; "
                        "name the key that seeds a run (e.g. 'seed').")
    node: Any = tree
    for key in seed_path.split(".")[:-1]:
        node = node[key]
    first = node[seed_path.split(".")[-1]]
    if not is_int_at_least(first, 0):
        raise UserError(f"config.base.{seed_path}={first!r} must be an integer >= 0 (the "
                        "first seed of every cell).")
    tree = set_path(tree, seed_path, first + task.seed, where)
    touched = [p for p, _ in task.cell.overrides] + [seed_path, *overridden]
    if config.seeds_in_one_program:
        tree = set_path(tree, "train.num_seeds", int(config.seeds), where)
        touched.append("train.num_seeds")
    return _resolve(ml_collections.ConfigDict(tree), touched)


# -- the entry point's checks, in one place -----------------------------------------------

def _resolve(config: ml_collections.ConfigDict, overridden: Sequence[str]
             ) -> ml_collections.ConfigDict:
    return dispatch.resolve_quick(config, overridden)


def _check(config: ml_collections.ConfigDict, data: bool) -> None:
    dispatch.check(config, data=data)


def check_tasks(config: ml_collections.ConfigDict, overridden: Iterable[str] = (),
                data: bool = True) -> list[Task]:
    """Every task, after checking the study and one run config per cell (the seed is the
    only difference between a cell's tasks), and with `data` the dataset once per
    distinct data section (listing and summarising need no data).

    A bad value in any cell raises the usual UserError, prefixed with the cell's name,
    before any task starts.
    """
    check_study(config)
    every = tasks(config)
    if len({t.cell.name for t in every}) != len(cells(config)):
        raise UserError("Two cells of this study have the same name; give the axes' levels "
                        "distinct names.")
    datasets = set()
    for task in every[:len(cells(config))]:
        run = task_config(config, task, overridden)
        data_key = json.dumps(_plain(run.get("data", None)), sort_keys=True, default=str)
        try:
            _check(run, data=data and data_key not in datasets)
        except UserError as err:  # the same kind (a missing dataset stays one), named
            raise type(err)(f"Cell {task.cell.name}: {err}") from err
        datasets.add(data_key)
    return every


# -- task records ------------------------------------------------------------------------

def read_record(directory: str) -> Optional[dict[str, Any]]:
    """The task's `task.json`, or None if it never started."""
    path = os.path.join(directory, TASK_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_record(directory: str, record: Mapping[str, Any]) -> None:
    """Write `task.json` atomically (a reader never sees half a record)."""
    path = os.path.join(directory, TASK_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(dict(record), f, indent=1, default=str)
    os.replace(path + ".tmp", path)


def check_layout(config: ml_collections.ConfigDict, workdir: str, cell: Cell) -> None:
    """UserError when `cell`'s directory in `workdir` was run the other way (separate
    tasks / one program of its seeds), or by a program of another number of seeds, which
    a K-seed run cannot resume: said here in one line rather than inside the task."""
    directory = os.path.join(workdir, cell.name)
    program = read_record(directory)
    if not config.seeds_in_one_program:
        if program is not None:
            raise UserError(f"--workdir={workdir} ran cell {cell.name} as one program of its "
                            "seeds; set config.seeds_in_one_program=True to resume it, or "
                            "use a fresh --workdir.")
        return
    separate = [d for d in sorted(os.listdir(directory)) if d.startswith("seed_")
                and os.path.exists(os.path.join(directory, d, TASK_FILE))] \
        if os.path.isdir(directory) else []
    if separate:
        raise UserError(f"--workdir={workdir} ran cell {cell.name}'s seeds as separate tasks "
                        f"({cell.name}/{separate[0]}/{TASK_FILE}); set "
                        "config.seeds_in_one_program=False to resume them, or use a fresh "
                        "--workdir.")
    before = ((program or {}).get("config") or {}).get("train", {}).get("num_seeds")
    if before is not None and before != config.seeds:
        raise UserError(f"config.seeds={config.seeds}, but --workdir={workdir} trained cell "
                        f"{cell.name}'s {before} seeds in one program, which cannot change "
                        f"its number of seeds; restore config.seeds={before}, or use a fresh "
                        "--workdir.")


def _alive(record: Mapping[str, Any]) -> bool:
    """Whether the process a "running" record names still runs (only knowable on its host)."""
    if record.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(record["pid"]), 0)
    except (ProcessLookupError, PermissionError, KeyError, ValueError):
        return False
    return True


def state(record: Optional[Mapping[str, Any]]) -> str:
    """new, running, done, diverged, stopped or failed; a "running" record whose process
    is gone (killed outright) reads as stopped."""
    if record is None:
        return "new"
    status = record["status"]
    if status == "running" and not _alive(record):
        return "stopped"
    return status


def run_state(config: ml_collections.ConfigDict, workdir: str, run: Task) -> str:
    """The state of one seed's run (a `runs` entry): its task's state, except that a
    seed of a finished K-seed program (`seeds_in_one_program`) has its own outcome in
    the program's results.json (done, or diverged while the others finished)."""
    if not config.seeds_in_one_program:
        return state(read_record(os.path.join(workdir, run.directory)))
    program = os.path.join(workdir, run.cell.name)
    status = state(read_record(program))
    path = os.path.join(program, "results.json")
    # A diverged program is one whose every seed diverged (it wrote no results.json).
    if status != "done" or not os.path.exists(path):
        return status
    with open(path) as f:
        outcomes = json.load(f)["seeds"]
    return outcomes[run.seed]["status"] if run.seed < len(outcomes) else status


def total_seconds(record: Optional[Mapping[str, Any]]) -> float:
    """Wall time of every attempt of the task so far."""
    return float(sum(a.get("seconds", 0.0) for a in (record or {}).get("attempts", [])))


def _outcome(config: ml_collections.ConfigDict, directory: str) -> tuple[str, Optional[int]]:
    """(done or diverged, the first non-finite step) of a run that returned normally:
    the synthetic and toy runners finish a diverged run and flag it in results.json."""
    path = os.path.join(directory, "results.json")
    if not os.path.exists(path):
        return "done", None
    with open(path) as f:
        results = json.load(f)
    if config.runner == "synthetic" and results.get("finite") is False:
        return "diverged", None
    if config.runner == "toy_game":
        bad = [r.get("first_nonfinite_step") for r in results.get("results", {}).values()
               if r.get("diverged")]
        if bad:
            return "diverged", min((b for b in bad if b is not None), default=None)
    return "done", None


class _StopOnSignal:
    """SIGTERM raises `signals.Stopped` in runners that do not handle it themselves (toy,
    synthetic: no checkpoints, a rerun starts them afresh); the image and sweep runners
    install their own handler while they train, which saves first.

    The exception rises wherever the main thread is, and a library may catch it there and
    raise another (JAX does, while it starts a backend): `received` tells the caller that
    the run stopped for the signal whatever exception arrives."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._previous: Any = None

    def __enter__(self) -> _StopOnSignal:
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop; a second SIGTERM waits
        self.received = signum
        raise stopped(signum)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def stopped(signum: int) -> signals.Stopped:
    """The stop of a task whose runner had no handler of its own (nothing saved)."""
    return signals.Stopped(signum, f"Stopped by {signals.name(signum)} before the run "
                           "finished; a rerun runs it again.")


def run_task(config: ml_collections.ConfigDict, workdir: str, index: int,
             run_config: RunConfig, overridden: Iterable[str] = ()) -> Any:
    """Run task `index` of the study in its directory and record how it ended.

    `run_config(config, workdir)` runs one ordinary config (the entry point's own
    validation and runner). The record keeps every attempt's wall time and exit; the
    exceptions pass on, so the entry point exits as a plain run would (3, 143, 2).
    """
    check_study(config)
    task = task_at(config, index)
    run = task_config(config, task, overridden)
    check_layout(config, workdir, task.cell)
    directory = os.path.join(workdir, task.directory)
    os.makedirs(directory, exist_ok=True)
    previous = read_record(directory)
    if state(previous) == "running":
        raise UserError(f"Task {index} ({task.directory}) is running already (pid "
                        f"{previous['pid']}); wait for it or stop it first.")
    started = time.time()
    record = {"task": index, "cell": task.cell.name, "levels": dict(task.cell.levels),
              "seed": task.seed, "config": run.to_dict(), "status": "running",
              "pid": os.getpid(), "host": socket.gethostname(), "started": started,
              "attempts": (previous or {}).get("attempts", [])}

    def finish(status: str, exit_code: int, **extra: Any) -> None:
        record["attempts"].append({"started": started, "seconds": time.time() - started,
                                   "exit_code": exit_code, "status": status})
        record.update(status=status, **extra)
        write_record(directory, record)

    stop_on_signal = _StopOnSignal()
    try:
        # The handler first: a launcher that reads "running" may signal this pid at once.
        with stop_on_signal:
            write_record(directory, record)
            result = run_config(run, directory)
    except NonFiniteLoss as err:
        finish("diverged", 3, step=err.step, message=str(err).splitlines()[0])
        raise
    except signals.Stopped as stop:
        finish("stopped", stop.exit_code, message=str(stop))
        raise
    except KeyboardInterrupt:
        finish("stopped", 130, message="Interrupted (Ctrl-C).")
        raise
    except BaseException as err:
        if stop_on_signal.received is not None:  # our stop, turned into another exception
            stop = stopped(stop_on_signal.received)
            finish("stopped", stop.exit_code, message=str(stop))
            raise stop from err
        if isinstance(err, UserError):
            finish("failed", 2, message=str(err).splitlines()[0])
        else:  # a crash: recorded, then the traceback as usual
            finish("failed", 1, message=f"{type(err).__name__}: {err}".splitlines()[0])
        raise
    status, step = _outcome(run, directory)
    finish(status, 0, **({"step": step} if status == "diverged" else {}))
    return result


# -- progress -------------------------------------------------------------------------------

def records(workdir: str, every: Sequence[Task]) -> dict[int, Optional[dict[str, Any]]]:
    """Each task's record (None: never started), by task index."""
    return {t.index: read_record(os.path.join(workdir, t.directory)) for t in every}


def eta_seconds(finished: Sequence[float], left: int, running_elapsed: Sequence[float],
                parallel: int) -> float:
    """Time to finish: the left tasks and the rest of the running ones, each taking the
    finished tasks' mean time, `parallel` at a time; NaN before any task has finished."""
    if not finished:
        return float("nan")
    mean = sum(finished) / len(finished)
    work = left * mean + sum(max(mean - e, 0.0) for e in running_elapsed)
    return work / max(parallel, 1)


def progress_line(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task],
                  running: Sequence[int]) -> str:
    """"8 tasks: 3 done, 2 running, 3 left, 0 diverged, 0 failed; ETA 0:01:10 (...)"."""
    recs = records(workdir, every)
    states = {i: state(r) for i, r in recs.items()}
    # A launched task reads "new" until its process writes its record.
    states.update({i: "running" for i in running if states[i] == "new"})
    count = lambda s: sum(v == s for v in states.values())  # noqa: E731
    now = time.time()
    left = len(every) - sum(count(s) for s in ("done", "diverged", "failed", "running"))
    finished = [total_seconds(recs[i]) for i in states if states[i] in FINAL]
    elapsed = [total_seconds(recs[i]) + now - recs[i]["started"]
               for i in states if states[i] == "running" and recs[i] is not None]
    eta = eta_seconds(finished, left, elapsed, int(config.parallel_tasks))
    mean = f"; mean task {sum(finished) / len(finished):.0f} s" if finished else ""
    seeds = ""
    if config.seeds_in_one_program:  # a finished program may hold diverged seeds
        per_seed = [run_state(config, workdir, r) for r in runs(config)]
        seeds = (f" ({len(per_seed)} seeds: {per_seed.count('done')} done, "
                 f"{per_seed.count('diverged')} diverged)")
    return (f"{len(every)} tasks: {count('done')} done, {count('running')} running, {left} left, "
            f"{count('diverged')} diverged, {count('failed')} failed{seeds}; "
            f"ETA {progress.format_duration(eta)}{mean}")


# -- what the command line asks of a study ----------------------------------------------

class Request(NamedTuple):
    """A study command line: the mode and what a task's command line repeats."""

    task: Optional[int]  # --task=N: run exactly this task
    list_tasks: bool  # --list: print the tasks and their states
    summarize: bool  # --summarize: progress and the summary of what has finished
    command: tuple[str, ...]  # the entry point, config and overrides, for task commands
    overridden: tuple[str, ...]  # overridden config paths ("base.train.num_steps", ...)


def base_overrides(overridden: Iterable[str]) -> list[str]:
    """The base's paths among the command line's overrides ("base.a.b" -> "a.b")."""
    return [p[len("base."):] for p in overridden if p.startswith("base.")]


def format_tasks(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task]) -> str:
    """The task table of `--list`: index, cell, seed, state, directory; then each cell's
    overrides."""
    all_cells = cells(config)
    width = max(len(c.name) for c in all_cells)
    if config.seeds_in_one_program:
        head = (f"{len(all_cells)} cells x {config.seeds} seeds in one program each = "
                f"{len(every)} tasks (task t: cell t, its seeds in <cell>/seed_<k>)")
        seeds = f"0..{int(config.seeds) - 1}"
    else:
        head = (f"{len(all_cells)} cells x {config.seeds} seeds = {len(every)} tasks (task t: "
                f"cell t % {len(all_cells)}, seed t // {len(all_cells)})")
        seeds = ""
    lines = [f"{head}; workdir {workdir}",
             f"{'task':>5}  {'cell':<{width}}  {'seed':>4}  {'state':<9}  directory"]
    for task in every:
        st = state(read_record(os.path.join(workdir, task.directory)))
        lines.append(f"{task.index:>5}  {task.cell.name:<{width}}  {seeds or task.seed:>4}  "
                     f"{st:<9}  {task.directory}")
    lines.append("cells:")
    for cell in all_cells:
        sets = ", ".join(f"{p}={json.dumps(v, default=str)}" for p, v in cell.overrides)
        lines.append(f"  {cell.name}: {sets or '(the base config)'}")
    return "\n".join(lines)


def task_command(command: Sequence[str], index: int) -> list[str]:
    """The command line of task `index`: the study's command and `--task=index`."""
    return [*command, f"--task={index}"]


def python_command(entry_point: str, config_path: str, overrides: Sequence[str],
                   workdir: str, debug: bool) -> tuple[str, ...]:
    """The study's command line for its tasks, with absolute paths (a task may start in
    another directory: a SLURM job starts where sbatch ran)."""
    return (sys.executable, os.path.abspath(entry_point), f"--config={os.path.abspath(config_path)}",
            *overrides, f"--workdir={os.path.abspath(workdir)}", *(["--debug"] if debug else []))
