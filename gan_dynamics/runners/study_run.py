"""What `experiments/run.py` does with a study config (runner "study"; docs/studies.md):
run one task (`--task=N`), list the tasks (`--list`), summarise (`--summarize`) or
launch every unfinished task (`study_launch`). The study's pieces: `study` (the config
and the task mapping), `study_summary` (statistics, tables, plots), `study_launch`
(submitit).
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from gan_dynamics import errors, workdir_lock
from gan_dynamics.runners import study, study_launch, study_summary


def execute(config: ml_collections.ConfigDict, workdir: str, request: study.Request,
            run_config: study.RunConfig, what: str = "The study's config") -> Any:
    """What `experiments/run.py` does with a study config: run one task (`--task`), list
    the tasks (`--list`), summarise (`--summarize`) or launch every unfinished task.
    `what` names the input in the one-line error of a check that fails
    (`errors.rejected_input`)."""
    overridden = study.base_overrides(request.overridden)
    if request.task is not None:
        return study.run_task(config, workdir, request.task, run_config, overridden)
    # This process only checks configs (which starts a JAX backend) and summarises: on
    # the CPU, so that it does not take the accelerators' memory from its tasks (JAX
    # preallocates most of a GPU's at the first use).
    import jax

    jax.config.update("jax_platforms", "cpu")
    with errors.rejected_input(what):
        every = study.check_tasks(config, overridden,
                                  data=not (request.list_tasks or request.summarize))
    if request.list_tasks:
        print(study.format_tasks(config, workdir, every), flush=True)
        return None
    if request.summarize:
        return study_summary.summarize(config, workdir, every)
    # One launcher per study (each task holds its own run's workdir; --list, --summarize
    # and --task take no study-wide lock, so progress can be read while it runs).
    os.makedirs(workdir, exist_ok=True)
    with workdir_lock.hold(workdir):
        return study_launch.launch(config, workdir, every, request.command, overridden)


def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "study": the study's own keys and one run config per cell (the check
    `runners.dispatch.check` runs for every runner)."""
    study.check_tasks(config, data=data)
