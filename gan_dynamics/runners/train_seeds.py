"""A K-seed image run (`train.num_seeds = K`): K GANs of one setting in one program.

The loop of `train.run` for K independent runs trained by one jitted step
(`seeds_step`): seed k is the run alone of `train_config.seed_config(config, k)`, i.e.
with seed `config.seed + k` (its initialisation, its step keys and its data order, a
pure function of its seed and step as in every run), and computes what that run
computes, to float rounding (docs/scaling.md gives the measured difference).

Outputs in the workdir DIR:
- `config.json` (num_seeds K), `progress.json` (the program's wall seconds and the
  seeds' summed gradient evaluations at each checkpoint), `seeds.json` (each seed's
  first non-finite step, or -1, at each checkpoint) and, at the end, `results.json`
  (each seed's outcome).
- `seed_<k>/`: seed k laid out as an ordinary image run of its own config (seed + k,
  num_seeds 1): `config.json`, `checkpoints/`, `progress.json`, `metrics.jsonl`,
  `tensorboard/`, `samples/`, `loss_curves.png`, `results.json`, so that evaluate.py,
  diagnose.py, plots.py and studies read each seed as a run; while the run trains it
  holds each seed's directory (`workdir_lock`), as a run alone holds its own.

Checkpoints are per seed, in `seed_<k>/checkpoints/`: every tool opens a seed as the
run alone, with no knowledge of K-seed runs (a stacked checkpoint would need each of
them taught to slice it). The seeds are saved one after another; a rerun resumes from
the newest checkpoint step that `seeds.json` records and every seed live at it holds
(so a run killed between two saves goes back one checkpoint: keep_checkpoints >= 2).

A seed whose loss or state turns non-finite stops alone: its row of the program is
frozen at its last finite state (`seeds_step`), its metrics.jsonl gets a row
`{"step": s, "diverged": 1}` at the first non-finite step s, its results.json says how it
diverged (the message a run alone exits 3 with, and its last good checkpoint), and
nothing more is written for it; the others train on. The run exits 0 when at least one
seed finished (the console names the diverged ones); when every seed has diverged it
raises `errors.NonFiniteLoss` (exit 3), as a run alone does.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from gan_dynamics import checkpoints, parallel, progress, signals, workdir_lock
from gan_dynamics.data import loader
from gan_dynamics.errors import NonFiniteLoss, UserError
from gan_dynamics.outputs import write_json
from gan_dynamics.runners import seeds_step
from gan_dynamics.runners.train_config import (
    EVAL_SECTIONS,
    Experiment,
    build,
    check_config,
    seed_config,
)
from gan_dynamics.runners.train_report import (
    EvalHook,
    Reporter,
    non_finite_found,
    read_progress,
    write_progress,
)

# Evaluation sections whose hooks read `config.seed` (the diagnostics' fixed batch): built
# once per seed; the others are the same for every seed and are built once.
_PER_SEED_SECTIONS = frozenset({"diagnostics"})
_WHAT = {1: "loss", 2: "parameters"}  # train_report._LOSS, _STATE


def seed_dir(workdir: str, k: int) -> str:
    """Where seed k of a K-seed run in `workdir` lives, as a run of its own."""
    return os.path.join(workdir, f"seed_{k}")


def _mesh(config: ml_collections.ConfigDict, num_seeds: int) -> jax.sharding.Mesh:
    """The mesh of `config.parallel`; the batch must split over it only when the seeds
    do not (`seeds_step.seeds_split`). UserError if the devices do not fit."""
    try:
        mesh = parallel.make_mesh(config.parallel.num_devices)
        if not seeds_step.seeds_split(num_seeds, mesh):
            parallel.check_batch_size(config.data.batch_size, mesh)
    except ValueError as err:
        raise UserError(str(err)) from err
    return mesh


def _check_resume(workdir: str, config: ml_collections.ConfigDict) -> None:
    """UserError when `workdir` holds a single run, or a K-seed run whose config differs
    in a field that alters the seeds' trajectories (the number of seeds included)."""
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
        raise UserError(f"--workdir={workdir} holds a single run (its checkpoints/); a run "
                        "of several seeds needs a fresh --workdir.")
    saved = checkpoints.read_config(workdir)
    if saved is None or not os.path.exists(os.path.join(workdir, checkpoints.SEEDS_FILE)):
        return
    current = json.loads(json.dumps(config.to_dict(), default=str))
    changes = checkpoints.trajectory_changes(saved, current)
    before = saved.get("train", {}).get("num_seeds", 1)
    if before != config.train.num_seeds:
        changes.append(f"train.num_seeds: {before} -> {config.train.num_seeds}")
    if changes:
        raise UserError(
            f"--workdir={workdir} holds a run of several seeds with a different config: "
            f"{'; '.join(changes)}. Use a fresh --workdir for the new settings, or resume "
            f"with the saved ones ({checkpoints.config_path(workdir)}).")


def _hooks(config: ml_collections.ConfigDict, configs: Sequence[ml_collections.ConfigDict],
           exp: Experiment, eval_hooks: Sequence[EvalHook]) -> list[list[EvalHook]]:
    """Each seed's evaluation hooks, in `train.configured_eval_hooks`' order."""
    shared = {section: importlib.import_module(module).make_eval_hooks(config, exp)
              for section, module in EVAL_SECTIONS.items()
              if section in config and section not in _PER_SEED_SECTIONS}
    out = []
    for one in configs:
        hooks = []
        for section, module in EVAL_SECTIONS.items():
            if section in shared:
                hooks.extend(shared[section])
            elif section in one:
                hooks.extend(importlib.import_module(module).make_eval_hooks(one, exp))
        out.append([*hooks, *eval_hooks])
    return out


def _read_seeds_file(workdir: str) -> dict[int, list[list[int]]]:
    """seeds.json: checkpoint step -> each seed's [first non-finite step or -1, what]."""
    path = os.path.join(workdir, checkpoints.SEEDS_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {int(step): entry["first_bad"] for step, entry in json.load(f).items()}


def _write_seeds_file(workdir: str, step: int, bad: np.ndarray) -> None:
    """Add checkpoint `step`'s entry to seeds.json (atomically), dropping later ones."""
    saved = {s: b for s, b in _read_seeds_file(workdir).items() if s < step}
    saved[step] = np.asarray(bad).tolist()
    write_json(os.path.join(workdir, checkpoints.SEEDS_FILE),
               {str(s): {"first_bad": b} for s, b in sorted(saved.items())})


def _restore(workdir: str, ckpts: Sequence[checkpoints.Checkpoints], abstract: Any,
             initial: seeds_step.SeedsState, mesh: jax.sharding.Mesh
             ) -> tuple[int, seeds_step.SeedsState, bool]:
    """(start step, state, whether restored): the newest step of seeds.json that every
    seed live at it holds a checkpoint of; the initial state when there is none. Seed
    checkpoints after the start step (a run stopped between saves) are removed."""
    num_seeds = len(ckpts)
    start, state = 0, initial
    for step, bad in sorted(_read_seeds_file(workdir).items(), reverse=True):
        live = [k for k in range(num_seeds) if bad[k][0] < 0]
        if len(bad) == num_seeds and all(step in ckpts[k].steps() for k in live):
            # A diverged seed's row is never read again: its initial state holds the place.
            rows = seeds_step.host_runs(initial)
            runs = [ckpts[k].restore(step, abstract) if k in live else rows[k]
                    for k in range(num_seeds)]
            start, state = step, seeds_step.stack_runs(runs, np.asarray(bad, np.int32), mesh)
            break
    for ckpt in ckpts:
        for later in [s for s in ckpt.steps() if s > start]:
            ckpt.manager.delete(later)
    return start, state, start > 0


class _Clock:
    """The program's wall seconds, this session's compilation and first step excluded
    (`train_report.Reporter`'s reckoning, shared by the seeds)."""

    def __init__(self, offset: float):
        self.offset, self.loop_start, self.first_done = offset, time.perf_counter(), None

    def seconds(self) -> float:
        if self.first_done is None:
            return self.offset
        return self.offset + time.perf_counter() - self.first_done


def run(config: ml_collections.ConfigDict, workdir: str, eval_hooks: Sequence[EvalHook] = (),
        source: Any = None) -> seeds_step.SeedsState:
    """Train (or resume) the K seeds of `config` in `workdir`; the final `SeedsState`.

    `eval_hooks` and `source` as for `train.run`; each hook is called for every live seed
    with that seed's state.
    """
    check_config(config)
    t, batch = config.train, int(config.data.batch_size)
    num_seeds = int(t.num_seeds)
    exp = build(config, source)
    mesh = _mesh(config, num_seeds)
    _check_resume(workdir, config)
    configs = [seed_config(config, k) for k in range(num_seeds)]
    seeds = [int(c.seed) for c in configs]
    dirs = [seed_dir(workdir, k) for k in range(num_seeds)]
    hooks = _hooks(config, configs, exp, eval_hooks)
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(signals.StopRequests("saving checkpoints at the next step boundary"))
        for d in dirs:  # evaluate.py and diagnose.py write into a seed's directory
            os.makedirs(d, exist_ok=True)
            stack.enter_context(workdir_lock.hold(d))
        state, abstract = seeds_step.create_seeds(exp, seeds, mesh)
        ckpts = [stack.enter_context(contextlib.closing(
            checkpoints.Checkpoints(d, t.keep_checkpoints))) for d in dirs]
        start, state, restored = _restore(workdir, ckpts, abstract, state, mesh)
        checkpoints.write_config(workdir, config)
        for d, c in zip(dirs, configs):
            checkpoints.write_config(d, c)
        reports = [stack.enter_context(contextlib.closing(Reporter(d, c, exp, start, h)))
                   for d, c, h in zip(dirs, configs, hooks)]
        first_bad = np.asarray(jax.device_get(state.bad))
        reported = first_bad[:, 0] >= 0  # diverged before `start`: already written
        at_once = seeds_step.seeds_at_once(t.get("seeds_at_once", 0), num_seeds,
                                           jax.default_backend())
        step_fn = seeds_step.jit_seeds_step(exp, num_seeds, mesh,
                                            share_flags=seeds_step.flags_agree(state),
                                            at_once=at_once)
        split = "seeds" if seeds_step.seeds_split(num_seeds, mesh) else "each batch"
        print(("Resuming from checkpoint step " if restored else "Training from step ")
              + f"{start} to {t.num_steps}: {num_seeds} seeds ({seeds[0]}..{seeds[-1]}), "
              f"{at_once} at a time, on {mesh.devices.size} device(s), {split} split over "
              f"them; workdir {workdir}", flush=True)
        clock = _Clock(read_progress(workdir, start)[0])
        budget_steps = int(t.get("budget", {}).get("steps", 0))
        already = bool(start and budget_steps and start >= budget_steps)
        if already:
            for report in reports:
                report.budget_reached = ("steps", start)
            print(f"The steps budget was reached by step {start}; nothing to train.", flush=True)
        end = start if already else t.num_steps
        inputs = loader.device_batches(
            loader.seeds_step_batches(exp.source, start, end, exp.n_sub, batch_size=batch,
                                      seeds=seeds, num_workers=config.data.num_workers),
            mesh, config.data.prefetch, split_axis=seeds_step.batch_split_axis(num_seeds, mesh))
        clock.loop_start = time.perf_counter()
        for step, batches in zip(range(start, end), inputs):
            stop.step = done = step + 1
            if step == start:  # compiled on its first call: say so (minutes on a CPU)
                with progress.step(f"Compiling the training step of {num_seeds} seeds and "
                                   "running its first step"):
                    state, metrics = jax.block_until_ready(step_fn(state, batches))
            else:
                state, metrics = step_fn(state, batches)
            log = step == start or done % t.log_every == 0 or done == t.num_steps
            evaluate = any(hooks) and done % t.eval_every == 0
            sample = done % t.sample_every == 0 or done == t.num_steps
            live = None  # read from the device only at the steps that need it
            if log or evaluate or sample:
                live, first_bad, reported = _check(state, reports, ckpts, seeds, reported,
                                                   workdir)
            if log:
                _log(done, start, t.num_steps, metrics, state, reports, live, clock)
            for k in np.flatnonzero(live) if live is not None else ():
                reports[k].after(done, seeds_step.run_of(state, k))
            signum = stop.agreed(step)  # after the evaluation, as in a run alone
            budget = bool(budget_steps and done >= budget_steps)
            if done % t.checkpoint_every == 0 or done == t.num_steps or signum or budget:
                if live is None:  # never save a non-finite state
                    live, first_bad, reported = _check(state, reports, ckpts, seeds, reported,
                                                       workdir)
                runs = seeds_step.host_runs(state)
                evals = np.asarray(jax.device_get(state.grad_evals))
                for k in np.flatnonzero(live):
                    ckpts[k].save(done, runs[k])
                    write_progress(dirs[k], done, clock.seconds(),
                                   reports[k].grad_offset + int(evals[k]))
                write_progress(workdir, done, clock.seconds(),
                               sum(r.grad_offset for r in reports) + int(evals.sum()))
                _write_seeds_file(workdir, done, first_bad)
            if signum:
                for ckpt in ckpts:
                    ckpt.manager.wait_until_finished()
                # What a finished run leaves (marked partial unless this was the last
                # step): a look before resuming.
                for k in np.flatnonzero(live):
                    reports[k].grid_and_curves(done, seeds_step.run_of(state, k))
                complete = done == t.num_steps
                _results(workdir, config, reports, seeds, first_bad, done,
                         stopped_by=None if complete else signals.name(signum))
                raise signals.Stopped(signum, f"Stopped by {signals.name(signum)}: saved "
                                      f"checkpoint step {done} of every live seed in "
                                      f"{workdir}/seed_<k>/ and the results so far "
                                      "(results.json" + ("" if complete else ", marked partial")
                                      + "; loss_curves.png; samples/); run the same command "
                                      "again to resume.")
            if budget:
                for k in np.flatnonzero(live):
                    reports[k].budget_reached = ("steps", done)
                print(f"The steps budget ({budget_steps}) was reached at step {done}: saved "
                      f"checkpoint step {done}; stopping.", flush=True)
                break
        # Also when no step was left: a run that finished but stopped before reporting.
        _results(workdir, config, reports, seeds, np.asarray(jax.device_get(state.bad)),
                 int(np.asarray(jax.device_get(state.runs.step)).max()))
    return state


def _check(state: seeds_step.SeedsState, reports: Sequence[Reporter],
           ckpts: Sequence[checkpoints.Checkpoints], seeds: Sequence[int],
           reported: np.ndarray, workdir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(live seeds, each seed's [first non-finite step, what], the seeds marked diverged)
    after marking the seeds newly diverged (waits for the device); NonFiniteLoss when
    none is live."""
    first_bad = np.asarray(jax.device_get(state.bad))
    live = first_bad[:, 0] < 0
    for k in np.flatnonzero(~live & ~reported):
        _stop_seed(reports[k], ckpts[k], k, seeds[k], *first_bad[k], live.any())
    if not live.any():
        raise NonFiniteLoss(
            "Every seed diverged (" + "; ".join(
                f"seed {s}: {_WHAT[int(w)]} at step {int(b)}"
                for s, (b, w) in zip(seeds, first_bad)) + "); stopping. Each seed's last good "
            f"checkpoint is in {workdir}/seed_<k>/checkpoints. Lower the learning rates or "
            "add a penalty, and start in a fresh --workdir.", step=int(first_bad[:, 0].min()))
    return live, first_bad, ~live


def _stop_seed(report: Reporter, ckpt: checkpoints.Checkpoints, k: int, seed: int,
               bad: int, what: int, others_go_on: bool) -> None:
    """Mark seed k diverged at step `bad`: a metrics row, its results.json, a line."""
    found = non_finite_found(int(bad), int(what))
    last_good = ckpt.last_good(int(bad))
    report.writer.write(int(bad), {"diverged": 1})
    report.results(int(bad) - 1, diverged={"step": int(bad), "what": _WHAT[int(what)],
                                           "message": found, "last_good_checkpoint": last_good})
    print(f"Seed {k} (seed {seed}) stopped: {found}. Last good checkpoint: {last_good}"
          + ("; the other seeds go on." if others_go_on else "."), file=sys.stderr, flush=True)


def _log(done: int, start: int, num_steps: int, metrics: dict[str, Any],
         state: seeds_step.SeedsState, reports: Sequence[Reporter], live: np.ndarray,
         clock: _Clock) -> None:
    """Every live seed's row of update `done` in its metrics.jsonl, and one console line."""
    metrics = jax.device_get(metrics)
    evals = np.asarray(jax.device_get(state.grad_evals))
    now = time.perf_counter()
    first = clock.first_done is None
    for k in np.flatnonzero(live):
        m = {name: float(v[k]) for name, v in metrics.items() if np.ndim(v) == 1}
        if first:
            m["compile_seconds"] = now - clock.loop_start
        m.update(wall_seconds=clock.seconds(),
                 total_grad_evals=reports[k].grad_offset + int(evals[k]))
        reports[k].writer.write(done, m)
    f, g = (float(np.mean(np.asarray(metrics[n])[live])) for n in ("f", "g"))
    if first:
        clock.first_done, speed = now, "first step"
    else:
        rate = (done - start - 1) / (now - clock.first_done)
        speed = (f"{rate * len(live):.3g} seed-steps/s  ETA "
                 f"{_duration((num_steps - done) / rate)}")
    print(f"step {done}/{num_steps}  {int(live.sum())}/{len(live)} seeds live  mean f={f:.4g}  "
          f"g={g:.4g}  |  {speed}", flush=True)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _results(workdir: str, config: ml_collections.ConfigDict, reports: Sequence[Reporter],
             seeds: Sequence[int], first_bad: np.ndarray, step: int,
             stopped_by: str | None = None) -> None:
    """Each live seed's results.json, and DIR/results.json with every seed's outcome;
    `partial` with the signal's name when a signal stopped the run before its end."""
    outcomes = []
    for k, (report, seed, (bad, what)) in enumerate(zip(reports, seeds, first_bad)):
        if bad < 0:
            report.results(step, stopped_by=stopped_by)
            outcomes.append({"seed": seed, "workdir": f"seed_{k}",
                             "status": "stopped" if stopped_by else "done", "steps": step})
        else:
            outcomes.append({"seed": seed, "workdir": f"seed_{k}", "status": "diverged",
                             "steps": int(bad) - 1, "diverged_at": int(bad),
                             "what": _WHAT[int(what)]})
    write_json(os.path.join(workdir, "results.json"),
               {"num_seeds": len(seeds), "partial": stopped_by is not None,
                "stopped_by": stopped_by, "seeds": outcomes, "config": config.to_dict()},
               indent=1, default=str)
    diverged = [o["seed"] for o in outcomes if o["status"] == "diverged"]
    if diverged:
        print(f"Seeds {diverged} diverged (see their results.json); the other "
              f"{len(seeds) - len(diverged)} finished.", flush=True)
