"""Many-seed sweeps of the synthetic manifold experiments (Fedus et al. 2018, Sec. 4.4).

Fig. 10 sweeps the learning rate at fixed d, Fig. 11 the dimension d at fixed learning
rate, each point averaged over 1000 seeds. A (model, optimizer) cell is one part (lr
sweep: every (seed, lr) pair is a run, the lr traced) or one part per d (shapes change).
A part compiles two programs, `start` and `advance` (`compile_cell`), and runs as chunks
of steps: `advance` moves every run `config.chunk_steps` steps (0: about 100 chunks), the
carry staying on the devices between chunks, sharded over the one-axis mesh "seeds".
Inside a device its runs go in groups of at most `config.chunk_seeds`, each group
vmapped, one group after another (`lax.map` batches), so the step's working set is one
group's whatever the number of seeds (docs/sweeps.md: throughput and memory). Run i uses
`synthetic_train.seed_key(config.seed, i)`, so any cell of a sweep equals the single run
with `seed_index = i`.

This module is the runner: parts, chunks, progress, results. The pieces it uses are
`sweep_settings` (cells, parts, checks, the settings fingerprints that guard resumes),
`seed_sharding` (the seed mesh, placement, all-gathers, compiled programs),
`sweep_checkpoints` (Orbax) and `summaries` (mean, bootstrap interval, median).

`run(config, workdir)` is the runner "sweep". After every chunk it prints seed-steps/s,
the mean current error and an ETA and writes the curves so far to
`progress/<part>.npz`; every `config.checkpoint_every` chunks, and on SIGTERM/SIGINT
(then it exits with 128 + signal), it saves the carry with Orbax in
`checkpoints/<part>/` (and after a part's last chunk, until its cell is written); a stop
request seen after a part's last chunk, or before a part, stops there: nothing else is
compiled. Rerunning the command skips finished
cells, resumes an interrupted one (bit for bit) and refuses settings that differ from
the saved ones, naming them. Per finished cell it writes `<model>__<optimizer>.npz` with `values` (seed,
lr|d, time, metric) and `reference` (seed, lr|d, metric: errors of a fresh random
generator), and `<model>__<optimizer>.json` naming the axes and their coordinates, with
the cell's settings, time and memory; `summary.json` holds, for every finished cell in
the workdir and sweep value, the final errors' mean with a 95% bootstrap interval,
median and the fraction of diverged (non-finite) runs (after a stop, marked `partial`,
naming the interrupted cell). `experiments/plots.py` draws them.

Several processes (`config.parallel.distributed`, `jax.distributed` started by
experiments/run.py) share one mesh over all their devices: every process builds the same
host arrays and puts them on the global mesh (`put_runs`), fetches the runs' results
whole with an all-gather (`to_host`), and takes part in every collective, Orbax save and
restore and stop check (`StopRequests.agreed`); process 0 alone prints and writes the
workdir's files. Each device runs the same program on the same runs whatever the
process layout, so 2 processes x 2 devices give bit for bit what 1 process x 4 devices
gives, and a checkpoint of either resumes in the other.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_dynamics import progress, signals
from gan_dynamics.checks import check_value, is_int_at_least
from gan_dynamics.errors import UserError
from gan_dynamics.outputs import write_json
from gan_dynamics.parallel import to_host
from gan_dynamics.runners import synthetic_run, synthetic_train
from gan_dynamics.runners.seed_sharding import (
    SEED_AXIS,
    compile_cell,
    is_writer,
    put_runs,
    run_layout,
    seed_keys,
    seed_mesh,
    sync,
)
from gan_dynamics.runners.summaries import summarise
from gan_dynamics.runners.sweep_checkpoints import restore_checkpoint, save_checkpoint
from gan_dynamics.runners.sweep_settings import (
    Part,
    cell_config,
    cell_fingerprint,
    cell_parts,
    cell_status,
    names,
    validate,
)


def run_part(config: ml_collections.ConfigDict, part: Part, mesh: Mesh,
             workdir: Optional[str] = None, stop: Optional[signals.StopRequests] = None
             ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Every (seed, lr) run of one part, chunk by chunk with a progress line after each.

    With a workdir: the curves so far go to `progress/<part>.npz` after every chunk, the
    carry to `checkpoints/<part>/` every `config.checkpoint_every` chunks and on a stop
    request (then `signals.Stopped` is raised), and a checkpoint there is resumed.
    Returns values (seed, lr, time, metric), reference (seed, lr, metric) and stats.
    """
    if workdir is not None and stop is not None and stop.agreed(0) is not None:
        # A stop request since the last chunk (between parts or cells): compile nothing.
        raise signals.Stopped(stop.received, (
            f"Stopped before {part.name}; finished parts and cells are saved in {workdir}. "
            "Run the same command again to go on."))
    num_seeds, num_lrs = int(config.num_seeds), len(part.lrs)
    layout = run_layout(num_seeds * num_lrs, mesh.shape[SEED_AXIS], int(config.chunk_seeds))
    compile_start = time.perf_counter()
    with progress.step(f"Compiling the programs of {part.name} ({layout.runs} runs)"):
        programs = compile_cell(part.cell, mesh, layout)
    compile_seconds = time.perf_counter() - compile_start
    runs = NamedSharding(mesh, P(SEED_AXIS))
    index = np.arange(layout.padded)
    # Run r is seed r // L at lr r % L; padding runs (r >= S·L) are trimmed after.
    keys = put_runs(seed_keys(config.seed, index // num_lrs), runs)
    lrs = put_runs(np.asarray(part.lrs, np.float32)[index % num_lrs], runs)
    carry, reference, first = programs.start(keys, lrs)
    metric_names = list(synthetic_train.METRICS)
    stack = lambda logged: np.stack(  # noqa: E731
        [np.asarray(logged[m]) for m in metric_names], -1)[: layout.runs]
    steps, log_every = int(part.cell.steps), int(part.cell.log_every)
    num_chunks = steps // (programs.blocks * log_every)
    values = np.full((layout.runs, steps // log_every + 1, len(metric_names)), np.nan,
                     np.float32)
    values[:, 0] = stack(to_host(first))
    reference = np.stack([np.asarray(to_host(reference)[m]) for m in
                          synthetic_train.ERROR_METRICS], -1)[: layout.runs]
    shape = lambda a: a.reshape(num_seeds, num_lrs, *a.shape[1:])  # noqa: E731
    ckpt_dir = workdir and os.path.join(workdir, "checkpoints", part.name)
    progress_path = workdir and os.path.join(workdir, "progress", f"{part.name}.npz")
    done = 0
    restored = ckpt_dir and restore_checkpoint(ckpt_dir, carry, values)
    if restored:
        done, carry, values = restored
        if is_writer():
                print(f"{part.name}: resuming after chunk {done} of {num_chunks} from "
                  f"{ckpt_dir}", flush=True)
    every = int(config.get("checkpoint_every", 10) or 0)
    chunk_steps = programs.blocks * log_every
    meter = synthetic_run.Progress(f"{part.name}: ", steps, layout.runs, done * chunk_steps)
    error_index = metric_names.index("param_error")
    run_start = time.perf_counter()
    for chunk in range(done, num_chunks):
        if stop is not None:
            stop.step = (chunk + 1) * chunk_steps
        carry, logged = programs.advance(carry, jnp.int32(chunk), lrs)
        first_log = 1 + chunk * programs.blocks
        values[:, first_log: first_log + programs.blocks] = stack(to_host(logged))
        if is_writer():
            meter.update((chunk + 1) * chunk_steps,
                         values[:, first_log + programs.blocks - 1, error_index])
        if workdir is None:
            continue
        if is_writer():
            write_npz(progress_path, values=shape(values), reference=shape(reference),
                      done_steps=(chunk + 1) * chunk_steps)
        stopping = stop is not None and stop.agreed(chunk) is not None
        last = chunk + 1 == num_chunks
        # A finished part keeps its last checkpoint until its cell is written, so that a
        # stop before the cell's next part loses nothing.
        if stopping or last or (every and (chunk + 1) % every == 0):
            save_checkpoint(ckpt_dir, chunk + 1, carry, values)
        if stopping:  # also after the part's last chunk: nothing more starts
            raise signals.Stopped(stop.received, (
                f"Stopped after step {(chunk + 1) * chunk_steps} of {part.name}; saved "
                f"{ckpt_dir}. Run the same command again to resume."))
    seconds = time.perf_counter() - run_start
    stats = {"compile_seconds": compile_seconds, "run_seconds": seconds,
             "resumed_from_step": done * chunk_steps, "runs": layout.runs,
             "padded_runs": layout.padded, "group": layout.group,
             "seed_steps_per_s": (layout.runs * (num_chunks - done) * chunk_steps / seconds
                                  if seconds > 0 and num_chunks > done else None),
             "program_memory_bytes": programs.memory, **memory_now()}
    return shape(values), shape(reference), stats


def memory_now() -> dict[str, Any]:
    """Peak host memory of this process (max RSS) and its first device's peak where it
    reports it."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return {"peak_host_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_device_mb": (stats["peak_bytes_in_use"] / 2**20
                               if "peak_bytes_in_use" in stats else None)}


def write_npz(path: str, **arrays: Any) -> None:
    """np.savez to a temporary name, then renamed: a reader never sees half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".tmp.npz"
    np.savez(partial, **arrays)
    os.replace(partial, path)


def sweep_cell(config: ml_collections.ConfigDict, model: str, optimizer: str, mesh: Mesh,
               workdir: Optional[str] = None, stop: Optional[signals.StopRequests] = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run one cell; returns values (seed, sweep, time, metric), reference (seed, sweep,
    metric) and the axes' names and coordinates (with `stats`: time and memory per part)."""
    parts = cell_parts(config, model, optimizer)
    results = [run_part(config, part, mesh, workdir, stop) for part in parts]
    if config.sweep == "lr":
        (values, reference, stats), = results
        sweep_coords = list(parts[0].lrs)
    else:
        values = np.concatenate([r[0] for r in results], 1)
        reference = np.concatenate([r[1] for r in results], 1)
        stats = {part.name: r[2] for part, r in zip(parts, results)}
        sweep_coords = [int(d) for d in config.dims]
    cell = parts[0].cell
    log_every = int(cell.log_every)
    axes = {
        "values": ["seed", config.sweep, "time", "metric"],
        "reference": ["seed", config.sweep, "metric"],
        "coords": {"seed": list(range(config.num_seeds)), config.sweep: sweep_coords,
                   "time": list(range(0, int(cell.steps) + 1, log_every)),
                   "metric": list(synthetic_train.METRICS),
                   "reference_metric": list(synthetic_train.ERROR_METRICS)},
        "model": model, "optimizer": optimizer,
        "n_disc": (int(cell.optimizer.n_disc) if synthetic_train.uses_n_disc(optimizer)
                   else None),
        "stats": stats,
    }
    return values, reference, axes


def cell_summary(values: np.ndarray, reference: np.ndarray, axes: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """Per sweep value: final-error summaries and the random-init reference's."""
    metric_names = axes["coords"]["metric"]
    rows = []
    for j, coord in enumerate(axes["coords"][axes["values"][1]]):
        row = {axes["values"][1]: coord}
        for k, name in enumerate(axes["coords"]["reference_metric"]):
            row[name] = summarise(values[:, j, -1, metric_names.index(name)])
            row[f"reference_{name}"] = summarise(reference[:, j, k])
        rows.append(row)
    return rows






def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "sweep": every cell's config and every learning rate of its grid."""
    del data  # the data are generated from the config
    try:
        config = synthetic_run.resolve(config)
        validate(config)
        synthetic_run.check_values(config)
        devices = config.get("num_devices", 0)
        # The devices themselves are counted when the run starts (`seed_mesh`): a study
        # checks its cells on the CPU.
        if not is_int_at_least(devices, 0):
            raise UserError(f"config.num_devices={devices!r} must be an integer >= 0 (0: "
                            "all devices).")
        for optimizer in names(config.run_optimizers):
            settings = config.optimizers[optimizer]
            lrs = list(settings.get("lrs", ())) if config.sweep == "lr" else []
            for lr in lrs:
                check_value(f"config.optimizers.{optimizer}.lrs: ", "lr", lr)
            if "lr" in settings:
                check_value(f"config.optimizers.{optimizer}.", "lr", settings.lr)
            cell = cell_config(config, names(config.models)[0], optimizer)
            synthetic_train.make_optimizer(cell.optimizer,
                                         float(lrs[0] if lrs else cell.optimizer.lr))
    except (ValueError, TypeError) as err:
        raise err if isinstance(err, UserError) else UserError(str(err)) from err














def collect_summary(workdir: str, config: ml_collections.ConfigDict,
                    devices: int) -> dict[str, Any]:
    """summary.json's content: every finished cell in the workdir, from its files."""
    cells = {}
    for file in sorted(os.listdir(workdir)):
        name = file[: -len(".json")]
        if not file.endswith(".json") or not os.path.exists(os.path.join(workdir, f"{name}.npz")):
            continue
        with open(os.path.join(workdir, file)) as f:
            axes = json.load(f)
        if "coords" not in axes:
            continue
        sweep_name = axes["values"][1]
        if sweep_name != config.sweep:
            raise UserError(f"{workdir} holds {sweep_name} sweep cells ({file}) but this is a "
                            f"{config.sweep} sweep; use another --workdir.")
        if "rows" not in axes:
            with np.load(os.path.join(workdir, f"{name}.npz")) as arrays:
                axes["rows"] = cell_summary(arrays["values"], arrays["reference"], axes)
        cells[name] = {"model": axes["model"], "optimizer": axes["optimizer"],
                       "n_disc": axes["n_disc"], "num_seeds": len(axes["coords"]["seed"]),
                       "seconds": axes.get("seconds"), "stats": axes.get("stats"),
                       "rows": axes["rows"]}
    return {"sweep": config.sweep, "num_seeds": config.num_seeds, "steps": config.steps,
            "devices": devices, "processes": jax.process_count(), "cells": cells,
            "partial": False, "config": config.to_dict()}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Runner "sweep": every (model, optimizer) cell; arrays, axes and summary.json.

    Cells finished in `workdir` with the same settings are skipped, an interrupted one is
    resumed from its checkpoint, and summary.json lists every finished cell of the workdir
    (also those of earlier commands with other models or optimizers). In a multi-process
    run every process calls this with the same config and workdir.
    """
    config = synthetic_run.resolve(config)
    validate(config)
    mesh = seed_mesh(config.get("num_devices", 0))
    os.makedirs(workdir, exist_ok=True)
    cells = [(m, o) for m in names(config.models) for o in names(config.run_optimizers)]
    status = {}
    for model, optimizer in cells:  # every settings check before any compile
        name = f"{model}__{optimizer}"
        status[name] = cell_status(workdir, name, cell_fingerprint(config, model, optimizer))
    sync("sweep: settings checked")  # before process 0 writes what the checks read
    writer = is_writer()
    with signals.StopRequests("saving the sweep's checkpoint after {step}") as stop:
        for model, optimizer in cells:
            name = f"{model}__{optimizer}"
            if status[name] == "done":
                if writer:
                    print(f"{name}: finished earlier in {workdir}, skipping", flush=True)
                continue
            fingerprint = cell_fingerprint(config, model, optimizer)
            started = os.path.join(workdir, "checkpoints", f"{name}.config.json")
            if writer:
                os.makedirs(os.path.dirname(started), exist_ok=True)
                write_json(started, fingerprint, indent=1)
            start = time.time()
            try:
                values, reference, axes = sweep_cell(config, model, optimizer, mesh, workdir,
                                                     stop)
            except signals.Stopped:
                if writer:  # the finished cells' summary, marked partial: a look before resuming
                    write_json(os.path.join(workdir, "summary.json"),
                               {**collect_summary(workdir, config, mesh.shape[SEED_AXIS]),
                                "partial": True, "interrupted_cell": name}, indent=1)
                raise
            axes["seconds"] = time.time() - start
            axes["config"] = fingerprint
            axes["rows"] = cell_summary(values, reference, axes)
            if writer:
                write_npz(os.path.join(workdir, f"{name}.npz"), values=values,
                          reference=reference)
                write_json(os.path.join(workdir, f"{name}.json"), axes)
                for part in cell_parts(config, model, optimizer):
                    shutil.rmtree(os.path.join(workdir, "checkpoints", part.name),
                                  ignore_errors=True)
                    curves = os.path.join(workdir, "progress", f"{part.name}.npz")
                    if os.path.exists(curves):
                        os.remove(curves)
                os.remove(started)
                summary = collect_summary(workdir, config, mesh.shape[SEED_AXIS])
                print(format_cell(summary["cells"][name], config.sweep), flush=True)
                print(format_memory(name, axes["stats"]), flush=True)
                write_json(os.path.join(workdir, "summary.json"), summary, indent=1)
            sync(f"sweep: {name} written")
    summary = collect_summary(workdir, config, mesh.shape[SEED_AXIS])
    if writer:
        write_json(os.path.join(workdir, "summary.json"), summary, indent=1)
        for leftover in ("progress", "checkpoints"):
            path = os.path.join(workdir, leftover)
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)
    return summary


def format_memory(name: str, stats: dict[str, Any]) -> str:
    """Peak host RSS, the device's peak (where it reports one) and the chunk program's
    memory (XLA's memory_analysis: arguments, outputs, temporaries), per part."""
    parts = stats.items() if "runs" not in stats else [(name, stats)]
    lines = []
    for part, s in parts:
        program = sum(s["program_memory_bytes"].values()) / 2**20
        device = (f", device peak {s['peak_device_mb']:.0f} MB"
                  if s.get("peak_device_mb") is not None else "")
        lines.append(f"{part}: memory: host peak RSS {s['peak_host_rss_mb']:.0f} MB{device}, "
                     f"chunk program {program:.2f} MB ({s['runs']} runs in groups of "
                     f"{s['group']})")
    return "\n".join(lines)


def format_cell(cell: dict[str, Any], sweep: str, metric: str = "param_error") -> str:
    """One line per sweep value: mean [95% CI] of the final error, and the reference."""
    seconds = f" ({cell['seconds']:.0f} s)" if cell.get("seconds") is not None else ""
    lines = [f"{cell['model']} / {cell['optimizer']}{seconds}"]
    for row in cell["rows"]:
        s, r = row[metric], row[f"reference_{metric}"]
        lines.append(f"  {sweep}={row[sweep]:<8g} {metric} {s['mean']:.3g} "
                     f"[{s['ci_low']:.3g}, {s['ci_high']:.3g}] median {s['median']:.3g} "
                     f"diverged {s['nonfinite_fraction']:.0%}   random init {r['mean']:.3g}")
    return "\n".join(lines)
