"""No input ends in a traceback: every key of every experiment config (experiments/*.py
and the study configs experiments/studies/*.py), set to a wrong type, a negative, a zero
and an absurdly large number (where the key takes a number), either fails with the
one-line error (exit status 2, `Error: ` first on stderr, no traceback) or starts the run,
within CASE_SECONDS (a value that makes the set-up hang fails the case).

Each case runs `experiments/run.py`'s `main(argv)` in-process with the override on the
command line, so parsing, `quick`, the checks, the workdir and the runner's set-up (data,
with CIFAR-10 and CelebA under `tfds.testing.mock_data`; models, optimizer, evaluation
hooks) go the command line's way, up to where the runner starts on the program that
trains (`MAIN_PROGRAMS`; a study: the launch of its tasks, after it checked every cell):
there the case counts as started and stops. Compiling and
running the first step of every case would take hours (the CIFAR-10 models' state alone
compiles in half a minute on a 2-core CPU, their ACGD step in minutes); the steps
themselves are tested elsewhere.

Wrong types of keys inside a section are given the way a config file or a whole-section
override gives them (`--config.train='{..., "num_steps": "abc"}'`); at the top level and
for the numbers, the key itself is set (`--config.train.num_steps=-1`).
"""

from __future__ import annotations

import ast
import contextlib
import glob
import importlib
import importlib.util
import os
import shutil
import signal
import sys
from typing import Any, Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "experiments")
WRONG = "abc"
HUGE_INT, HUGE_FLOAT = 10**12, 1e30


def _load(path: str):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def experiment_configs() -> list[str]:
    """The files of experiments/ and experiments/studies/ that define get_config()."""
    out = []
    paths = glob.glob(os.path.join(EXP, "*.py")) + glob.glob(os.path.join(EXP, "studies", "*.py"))
    for path in sorted(paths):
        with open(path) as f:
            tree = ast.parse(f.read())
        if any(isinstance(n, ast.FunctionDef) and n.name == "get_config" for n in tree.body):
            out.append(path)
    return out


def _leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any) -> list[Any]:
    """A negative, a zero and an absurdly large value of a number key's kind; none when
    the key takes no number."""
    if _is_number(value):
        return ([-1, 0, HUGE_INT] if isinstance(value, int) else [-1.0, 0.0, HUGE_FLOAT])
    if isinstance(value, (tuple, list)) and value and all(map(_is_number, value)):
        return [(v,) for v in _numbers(value[0])]
    return []


def _wrong_type(value: Any) -> Any:
    return 3 if isinstance(value, str) else WRONG


def _section_override(tree: dict[str, Any], path: str, value: Any) -> str:
    """`--config.<section>=<dict literal>`: the key's section with the key set to value."""
    *parents, last = path.split(".")
    section = tree
    for key in parents:
        section = section[key]
    return f"--config.{'.'.join(parents)}={repr({**section, last: value})}"


def _key_override(path: str, value: Any) -> str:
    return f"--config.{path}={value!r}" if not isinstance(value, str) else f"--config.{path}={value}"


def cases(config_path: str) -> list[tuple[str, str]]:
    """(label, override argument) of every case of one config file."""
    sys.path.insert(0, ROOT)  # configs import experiments.<other config>
    tree = _load(config_path).get_config().to_dict()
    out = []
    for path, value in _leaves(tree):
        wrong = _wrong_type(value)
        if "." in path:
            out.append((f"{path}={wrong!r} (in its section)", _section_override(tree, path, wrong)))
        else:
            out.append((f"{path}={wrong!r}", _key_override(path, wrong)))
        for number in _numbers(value):
            out.append((f"{path}={number!r}", _key_override(path, number)))
    return out


CONFIGS = experiment_configs()


def _run_module():
    spec = importlib.util.spec_from_file_location("gd_run_every_key", os.path.join(EXP, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _run_module()


# Where each runner, its set-up done, starts its work (module, function): the image
# runner's state (then its step), the toy games' simulations, the synthetic run's chunks,
# the sweep's cells, the Gaussian mixtures' cells, a study's launch of its tasks (after
# every cell's config and dataset are checked).
MAIN_PROGRAMS = {
    "image": ("gan_dynamics.runners.train", "create_state"),
    "toy_game": ("gan_dynamics.runners.toy_run", "simulate_entries"),
    "synthetic": ("gan_dynamics.runners.synthetic_run", "train_with_progress"),
    "sweep": ("gan_dynamics.runners.sweep", "sweep_cell"),
    "mix_gaussians": ("gan_dynamics.runners.mix_gaussians_run", "run_cell"),
    "study": ("gan_dynamics.runners.study_launch", "launch"),
}


class Started(BaseException):
    """The run got as far as its main program (a BaseException, so that no handler of
    the run's own errors takes it)."""


class TimedOut(BaseException):
    """A case neither failed nor started within CASE_SECONDS."""


# A case takes a second or two (the first of a config loads its dataset; a loaded 2-core
# machine took 30 s once); one that takes this long hangs on the value (a loop over 10**12
# tasks, an array of 10**12 numbers).
CASE_SECONDS = 60


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """TimedOut raised in this (the main) thread after `seconds`."""
    def expired(signum, frame):
        raise TimedOut()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def stop_at_main_program(monkeypatch):
    """Calling a runner's MAIN_PROGRAMS function raises Started."""
    for module, name in MAIN_PROGRAMS.values():
        def started(*args, _name=name, **kwargs):
            raise Started(_name)

        monkeypatch.setattr(importlib.import_module(module), name, started)


@pytest.fixture
def no_mock_data_warning():
    """tfds's mock data lives in a data_dir that does not exist, and tfds warns so on every
    open (as it never does for a prepared dataset): that warning is not the run's."""
    import logging

    def not_the_mock(record: logging.LogRecord) -> bool:
        return "has no dataset_info.json" not in record.getMessage()

    logging.getLogger("absl").addFilter(not_the_mock)
    yield
    logging.getLogger("absl").removeFilter(not_the_mock)


def outcome(argv: list[str], capfd) -> str:
    """'' when the case fails well or starts; 'started' when it started; else what went
    wrong."""
    started = False
    try:
        with time_limit(CASE_SECONDS):
            status = RUN.main(argv)
    except Started:
        started, status = True, 0
    except TimedOut:
        capfd.readouterr()
        return f"neither failed nor started within {CASE_SECONDS} s"
    except BaseException as err:  # noqa: BLE001  (anything escaping main is a traceback)
        capfd.readouterr()
        return f"raised {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    err = capfd.readouterr().err
    if "Traceback" in err:
        lines = [line for line in err.splitlines() if line.strip()]
        return f"traceback on stderr, ending {lines[-1][:160]!r}"
    if status == 0:
        return "started" if started else ""
    if status != 2:
        return f"status {status}" + ("" if started else f": {err.strip()[:160]!r}")
    if not err.startswith("Error: "):
        return f"stderr does not start with the error: {err.splitlines()[0][:160]!r}"
    return ""


@pytest.mark.slow
@pytest.mark.parametrize("config_path", CONFIGS,
                         ids=[os.path.relpath(p, EXP)[:-3] for p in CONFIGS])
def test_every_key_fails_well_or_starts(config_path, tmp_path, capfd, monkeypatch,
                                        stop_at_main_program, no_mock_data_warning):
    import tensorflow_datasets as tfds

    monkeypatch.syspath_prepend(ROOT)
    failures = []
    all_cases = cases(config_path)
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
        # The config as it is starts: the cases below reach the runner's main program.
        assert outcome(["run.py", f"--config={config_path}",
                        f"--workdir={tmp_path / 'as_is'}"], capfd) == "started"
        for i, (label, override) in enumerate(all_cases):
            workdir = tmp_path / f"wd{i}"
            argv = ["run.py", f"--config={config_path}", override, f"--workdir={workdir}"]
            problem = outcome(argv, capfd)
            shutil.rmtree(workdir, ignore_errors=True)
            if problem not in ("", "started"):
                failures.append(f"{label}: {problem}")
    print(f"{os.path.relpath(config_path, EXP)}: {len(all_cases)} cases, {len(failures)} failed"
          + "".join(f"\n  {failure}" for failure in failures), flush=True)
    assert not failures, f"{len(failures)} of {len(all_cases)} cases:\n" + "\n".join(failures)
