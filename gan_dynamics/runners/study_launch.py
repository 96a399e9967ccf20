"""Launching a study's tasks with submitit: processes on this machine or a SLURM job array.

Each task is the command line `experiments/run.py --config=<study> ... --task=N`, run by
the function `task_job()` makes, inside a submitit job, so that a task is an ordinary run
whatever launches it. Two launchers (`config.launcher`):

- "local" (the default): submitit's LocalExecutor, at most `config.parallel_tasks` jobs
  at a time; the next task starts when one ends. The study prints a progress line
  (done / running / left / diverged and an ETA from the finished tasks' times) whenever
  a task ends and summarises when all have (`study_summary`). SIGTERM or Ctrl-C stops
  it: no new task starts, each running task gets SIGTERM (it saves a checkpoint and
  exits 143; the study signals the pid the task recorded), and the study exits 143 once
  they have; a rerun runs what is left.
- "slurm": submitit's SlurmExecutor submits the unfinished tasks as one job array
  (`--array=0-(n-1)%parallel_tasks`, partition, time, GPUs and CPUs per task from
  `config.slurm`) and returns; `--summarize` reports progress at any time. SLURM's
  warning signal before the time limit (USR2) stops a task as SIGTERM does, and a rerun
  after the array has ended resubmits what is left; a rerun while it still runs
  submits nothing for its queued or running tasks.

Which tasks run is decided from the tasks' own records (`study.state`): done and
diverged tasks are skipped, every other one runs (resuming from its checkpoints). A
task whose recorded config differs from the study's in what changes the trajectory is
refused before anything starts, naming the fields; a done task whose config changed
only in what may change on a resume (more `train.num_steps`, other evaluation settings)
runs again and continues from its last checkpoint.

A task that is itself a multi-process run (a TPU pod slice, `parallel.distributed`) is
out of scope: each task is one process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import ml_collections

from gan_dynamics import signals
from gan_dynamics.errors import UserError
from gan_dynamics.runners import study
from gan_dynamics.runners.study import FINAL, Task

SUBMITIT_DIR = "submitit"
SLURM_FILE = "slurm.json"
LOG_FILE = "log.txt"
# LocalExecutor's controller stops a job at its timeout (default 2 min); a task runs until
# it ends, so the limit is a week.
_LOCAL_TIMEOUT_MIN = 7 * 24 * 60
_POLL_S = 0.5
# SLURM job states of a task that still holds or waits for a node.
_ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING",
           "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED")


# -- the job: one task's command line -----------------------------------------------------

def task_job() -> Callable[[Sequence[str], str], int]:
    """The function a submitit job runs: `job(argv, log_path) -> exit status` of the task's
    command line, its output appended to `log_path` (in the task's directory).

    A nested function, so that cloudpickle sends it by value: the job's process then
    imports neither this package nor JAX (about 2 s per task) before starting the task.
    SIGUSR2 (SLURM's warning before the time limit, sent to every process of the job) is
    ignored by the task, which inherits that, and reaches it from here as SIGTERM: it
    saves and exits 143 instead of dying. SIGTERM is passed on as it is. SIGINT is not: a
    Ctrl-C in the terminal reaches the task itself, and a second one would mean "stop
    without saving".
    """

    def job(argv: Sequence[str], log_path: str) -> int:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # inherited by the task
        with open(log_path, "a") as log:
            process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT)

        def relay(signum: int, frame: Any) -> None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, relay)
        signal.signal(signal.SIGUSR2, relay)
        return process.wait()

    return job


# -- before launching -------------------------------------------------------------------

def changed_tasks(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task],
                  overridden: Sequence[str] = ()) -> set[int]:
    """The tasks whose recorded config differs from the study's now, in what a resume may
    change (`checkpoints.RESUMABLE_CHANGES`); UserError naming the first few if any
    differs in what changes its trajectory."""
    from gan_dynamics import checkpoints

    for task in every:
        study.check_layout(config, workdir, task.cell)
    problems, changed = [], set()
    for task in every:
        record = study.read_record(os.path.join(workdir, task.directory))
        if record is None or "config" not in record:
            continue
        current = json.loads(json.dumps(study.task_config(config, task, overridden).to_dict(),
                                        default=str))
        changes = checkpoints.trajectory_changes(record["config"], current)
        if changes:
            problems.append(f"{task.directory}: {'; '.join(changes[:3])}")
        elif record["config"] != current:
            changed.add(task.index)
    if problems:
        raise UserError(f"--workdir={workdir} holds tasks of a study with other settings "
                        f"({len(problems)} tasks differ; {problems[0]}). Restore the settings "
                        "to resume, or use a fresh --workdir.")
    return changed


def _write_study_file(config: ml_collections.ConfigDict, workdir: str,
                      every: Sequence[Task]) -> None:
    """`study.json`: the study's config and task table, for readers of the workdir."""
    os.makedirs(workdir, exist_ok=True)
    # A task of `seeds_in_one_program` trains every seed of its cell, not seed 0 alone.
    seeds = ({"seeds": list(range(int(config.seeds)))} if config.seeds_in_one_program
             else {})
    table = [{"task": t.index, "cell": t.cell.name, "seed": t.seed, "directory": t.directory,
              "levels": dict(t.cell.levels), **seeds} for t in every]
    with open(os.path.join(workdir, study.STUDY_FILE), "w") as f:
        json.dump({"config": config.to_dict(), "tasks": table}, f, indent=1, default=str)


# -- local --------------------------------------------------------------------------------

class _Running(NamedTuple):
    job: Any  # submitit.local.local.LocalJob
    task: Task


def _finished(workdir: str, run: _Running) -> bool:
    """The job has ended and so has the task's own process (it may outlive the job's
    process when a Ctrl-C reached both)."""
    if not run.job.done():
        return False
    record = study.read_record(os.path.join(workdir, run.task.directory))
    return study.state(record) != "running"


def _stop(workdir: str, run: _Running, stopped: set[int]) -> None:
    """SIGTERM, once, to the task's own process as its record names it. A task that has
    not written its record yet is signalled at a later poll, once it has (before that it
    has installed no handler, and the signal would kill it unsaved)."""
    record = study.read_record(os.path.join(workdir, run.task.directory))
    if study.state(record) != "running" or record["pid"] in stopped:
        return
    stopped.add(record["pid"])
    try:
        os.kill(int(record["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        pass


def _record_early_exit(workdir: str, run: _Running) -> None:
    """A task whose process ended before it wrote a record (a crash at start-up) gets a
    failed record with the job's exit status, so that it is reported."""
    directory = os.path.join(workdir, run.task.directory)
    if study.read_record(directory) is not None:
        return
    from submitit.core.utils import FailedJobError, UncompletedJobError

    try:
        status = run.job.result()
    except (FailedJobError, UncompletedJobError):  # the job's process was killed
        status = "unknown"
    study.write_record(directory, {
        "task": run.task.index, "cell": run.task.cell.name, "seed": run.task.seed,
        "status": "failed", "attempts": [],
        "message": f"exited with status {status} before its run started; see "
                   f"{os.path.join(directory, LOG_FILE)}"})


def run_local(config: ml_collections.ConfigDict, workdir: str, pending: Sequence[Task],
              every: Sequence[Task], command: Sequence[str]) -> Optional[int]:
    """Run `pending` through LocalExecutor, `parallel_tasks` at a time; the signal number
    that stopped the study, or None when every task ran."""
    import submitit

    executor = submitit.LocalExecutor(folder=os.path.join(workdir, SUBMITIT_DIR))
    executor.update_parameters(timeout_min=_LOCAL_TIMEOUT_MIN)
    queue, running = list(pending), []
    parallel = int(config.parallel_tasks)
    job_fn, stopped = task_job(), set()
    with signals.StopRequests("stopping the running tasks (each saves) and starting "
                              "no more") as stop:
        while queue or running:
            while queue and len(running) < parallel and stop.received is None:
                task = queue.pop(0)
                log = os.path.join(workdir, task.directory, LOG_FILE)
                job = executor.submit(job_fn, study.task_command(command, task.index), log)
                running.append(_Running(job, task))
                print(f"started task {task.index} ({task.directory}); log {log}", flush=True)
            if stop.received is not None:
                queue.clear()
                for run in running:
                    _stop(workdir, run, stopped)
            time.sleep(_POLL_S)
            for run in [r for r in running if _finished(workdir, r)]:
                running.remove(run)
                _record_early_exit(workdir, run)
                record = study.read_record(os.path.join(workdir, run.task.directory))
                print(f"task {run.task.index} ({run.task.directory}): {study.state(record)}"
                      f"{_detail(record)}", flush=True)
                print(study.progress_line(config, workdir, every, [r.task.index for r in running]),
                      flush=True)
    return stop.received


def _detail(record: Optional[dict[str, Any]]) -> str:
    if record is None:
        return " before it started"
    if record["status"] == "diverged":
        return f" at step {record.get('step')}"
    if record["status"] in ("failed", "stopped") and record.get("message"):
        return f": {record['message']}"
    return f" in {study.total_seconds(record):.0f} s"


# -- slurm --------------------------------------------------------------------------------

def slurm_executor(config: ml_collections.ConfigDict, workdir: str) -> Any:
    """The SlurmExecutor of `config.slurm`: one task per array element, at most
    `parallel_tasks` running at once."""
    import submitit

    s = config.slurm
    params: dict[str, Any] = {
        "job_name": f"study_{os.path.basename(os.path.normpath(workdir))}",
        "time": int(s.time_min), "nodes": 1, "ntasks_per_node": 1,
        "cpus_per_task": int(s.cpus_per_task), "array_parallelism": int(config.parallel_tasks),
    }
    if s.partition:
        params["partition"] = s.partition
    if s.gpus_per_task:
        params["gpus_per_task"] = int(s.gpus_per_task)
    if s.mem_gb:
        params["mem"] = f"{int(s.mem_gb)}GB"  # a bare number would be megabytes
    if s.account:
        params["account"] = s.account
    if s.qos:
        params["qos"] = s.qos
    if s.setup:
        params["setup"] = list(s.setup)
    executor = submitit.SlurmExecutor(folder=os.path.join(workdir, SUBMITIT_DIR))
    executor.update_parameters(**params)
    return executor


def _queued(workdir: str) -> set[int]:
    """Tasks of the last submitted array that SLURM still holds (pending or running).
    UserError if SLURM cannot say (no sacct answer)."""
    path = os.path.join(workdir, SLURM_FILE)
    if not os.path.exists(path):
        return set()
    import submitit

    with open(path) as f:
        submitted = json.load(f)
    held = set()
    for element, index in submitted["tasks"].items():
        job_id = f"{submitted['job_id']}_{element}"
        state = submitit.SlurmJob(os.path.join(workdir, SUBMITIT_DIR), job_id).get_info(
            mode="force").get("State", "UNKNOWN").split()[0]
        if state == "UNKNOWN":
            raise UserError(f"SLURM gave no state for job {job_id} (task {index}) of the last "
                            f"array; if none of job {submitted['job_id']} is in squeue any "
                            f"more, delete {path} and rerun.")
        if state in _ACTIVE:
            held.add(int(index))
    return held


def submit_slurm(config: ml_collections.ConfigDict, workdir: str, pending: Sequence[Task],
                 command: Sequence[str]) -> Optional[str]:
    """Submit the `pending` tasks that SLURM does not already hold as one job array; its
    job id (None if nothing was left to submit)."""
    held = _queued(workdir)
    if held:
        print(f"{len(held)} tasks are still queued or running in the last array: "
              f"{sorted(held)}; not submitting them again.", flush=True)
    pending = [t for t in pending if t.index not in held]
    if not pending:
        return None
    executor = slurm_executor(config, workdir)
    argvs = [study.task_command(command, t.index) for t in pending]
    logs = [os.path.join(workdir, t.directory, LOG_FILE) for t in pending]
    jobs = executor.map_array(task_job(), argvs, logs)
    array_id = jobs[0].job_id.split("_")[0]
    with open(os.path.join(workdir, SLURM_FILE), "w") as f:
        json.dump({"job_id": array_id,
                   "tasks": {str(j.job_id.split("_")[1]): t.index for j, t in zip(jobs, pending)}},
                  f, indent=1)
    print(f"Submitted job array {array_id}: {len(pending)} tasks, at most "
          f"{config.parallel_tasks} at a time. Progress and the summary so far: the same "
          "command with --summarize; after the array ends, rerun the same command to "
          "resubmit what did not finish.", flush=True)
    return array_id


# -- the study ----------------------------------------------------------------------------

def launch(config: ml_collections.ConfigDict, workdir: str, every: Sequence[Task],
           command: Sequence[str], overridden: Sequence[str] = ()) -> Any:
    """Run (local) or submit (slurm) every unfinished task; locally, then summarise.

    Raises `signals.Stopped` when a signal stopped the study, and a UserError naming the
    failed tasks when some failed.
    """
    from gan_dynamics.runners import study_summary

    changed = changed_tasks(config, workdir, every, overridden)
    records = study.records(workdir, every)
    states = {i: study.state(r) for i, r in records.items()}
    busy = [i for i, s in states.items() if s == "running"]
    if busy and config.launcher == "local":
        raise UserError(f"Tasks {busy} of this study are running (another study process?); "
                        "stop it or wait for it before rerunning.")
    _write_study_file(config, workdir, every)
    pending = [t for t in every if states[t.index] not in FINAL
               or (states[t.index] == "done" and t.index in changed)]
    resumed = sum(states[t.index] != "new" for t in pending)
    skipped = len(every) - len(pending)
    print(f"Study {workdir}: {len(every)} tasks; {skipped} finished earlier (skipped), "
          f"{len(pending)} to run ({resumed} resume); {config.launcher} launcher, "
          f"{config.parallel_tasks} at a time.", flush=True)
    if config.launcher == "slurm":
        return submit_slurm(config, workdir, pending, command)
    signum = run_local(config, workdir, pending, every, command) if pending else None
    if signum is not None:
        print(study.progress_line(config, workdir, every, ()), flush=True)
        left = sum(study.state(r) not in FINAL for r in study.records(workdir, every).values())
        raise signals.Stopped(signum, f"Stopped by {signals.name(signum)}: the running tasks "
                              f"saved; {left} tasks are left. Rerun the same command to run "
                              "only those.")
    result = study_summary.summarize(config, workdir, every)
    after = study.records(workdir, every)
    failed = [t for t in every if study.state(after[t.index]) == "failed"]
    if failed:
        task = failed[0]
        raise UserError(f"{len(failed)} tasks failed, e.g. task {task.index} "
                        f"({task.directory}): {after[task.index].get('message', '')} (log: "
                        f"{os.path.join(workdir, task.directory, LOG_FILE)}). Fix it and "
                        "rerun the same command: finished tasks are skipped.")
    return result

