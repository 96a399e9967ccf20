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
`synthetic_run.seed_key(config.seed, i)`, so any cell of a sweep equals the single run
with `seed_index = i`.

`run(config, workdir)` is the runner "sweep". After every chunk it prints seed-steps/s,
the mean current error and an ETA and writes the curves so far to
`progress/<part>.npz`; every `config.checkpoint_every` chunks, and on SIGTERM/SIGINT
(then it exits with 128 + signal), it saves the carry with Orbax in
`checkpoints/<part>/`. Rerunning the command skips finished cells, resumes an
interrupted one (bit for bit) and refuses settings that differ from the saved ones,
naming them. Per finished cell it writes `<model>__<optimizer>.npz` with `values` (seed,
lr|d, time, metric) and `reference` (seed, lr|d, metric: errors of a fresh random
generator), and `<model>__<optimizer>.json` naming the axes and their coordinates, with
the cell's settings, time and memory; `summary.json` holds, for every finished cell in
the workdir and sweep value, the final errors' mean with a 95% bootstrap interval,
median and the fraction of diverged (non-finite) runs. `experiments/plots.py` draws them.

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

import copy
import json
import os
import resource
import shutil
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_dynamics import signals
from gan_dynamics.checks import check_value
from gan_dynamics.errors import UserError
from gan_dynamics.runners import synthetic_run

Array = jax.Array
SEED_AXIS = "seeds"
SWEEPS = ("lr", "dim")
# Default chunks per part when config.chunk_steps is 0: a progress line, a possible
# checkpoint and a stop check after each.
TARGET_CHUNKS = 100


def seed_mesh(num_devices: int = 0) -> Mesh:
    """A one-axis mesh named "seeds" over the first `num_devices` devices (0: all; all
    processes' devices in a multi-process run)."""
    available = jax.device_count()
    n = num_devices or available
    if not 1 <= n <= available:
        raise ValueError(f"num_devices={num_devices} but {available} devices are visible; "
                         "use 0 for all of them.")
    if n != available and jax.process_count() > 1:
        raise ValueError(f"num_devices={num_devices} in a run of {jax.process_count()} "
                         f"processes: it must be 0 (all {available} devices of all "
                         "processes).")
    # Auto axes: XLA propagates the seed sharding through the vmapped program. (Explicit
    # axes, make_mesh's default, make every scatter inside the solvers name its sharding.)
    return jax.make_mesh((n,), (SEED_AXIS,), devices=jax.devices()[:n],
                         axis_types=(jax.sharding.AxisType.Auto,))


def is_writer() -> bool:
    """Whether this process prints and writes files: process 0 (of one or several)."""
    return jax.process_index() == 0


def put_runs(x: Any, sharding: NamedSharding) -> Array:
    """A host array (the same in every process) as a global array with `sharding`; keys
    as keys. Each process places only its own devices' rows, so this works when the
    mesh spans processes, where `device_put` of a host array does not."""
    if _is_key(x):
        data = put_runs(np.asarray(jax.random.key_data(x)), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_host(tree: Any) -> Any:
    """Arrays sharded over the mesh, whole, as numpy in every process (with several
    processes an all-gather: every process must call it at the same point)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def _sync(name: str) -> None:
    """Every process waits here for the others (files written by process 0 are then
    visible to all); a no-op with one process."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def compile_sweep(train: Callable, mesh: Mesh, over_lr: bool) -> Callable:
    """`(keys (S,), lrs (L,)) -> results (S, L, ...)` (or `(keys, lr) -> (S, ...)`), jitted.

    The whole run in one call (no progress, no checkpoints): what `run` computes chunk by
    chunk. Keys and results are sharded over the mesh's seed axis; learning rates are
    replicated.
    """
    per_seed = jax.vmap(train, in_axes=(None, 0)) if over_lr else train
    batched = jax.vmap(per_seed, in_axes=(0, None))
    seeds = NamedSharding(mesh, P(SEED_AXIS))
    return jax.jit(batched, in_shardings=(seeds, NamedSharding(mesh, P())),
                   out_shardings=seeds)


def run_seeds(sweep_fn: Callable, base_seed: int, num_seeds: int, lrs: Any, mesh: Mesh,
              chunk_seeds: int) -> synthetic_run.TrainResult:
    """Runs 0 .. num_seeds-1 of `compile_sweep`'s function in dispatches of `chunk_seeds`;
    results on the host, seed axis first."""
    devices = mesh.shape[SEED_AXIS]
    chunk = max(devices, (min(chunk_seeds, num_seeds) // devices) * devices)
    chunks = []
    for start in range(0, num_seeds, chunk):
        # The last chunk is padded to the compiled size (one program) and trimmed after.
        keys = seed_keys(base_seed, np.arange(start, start + chunk))
        keys = put_runs(keys, NamedSharding(mesh, P(SEED_AXIS)))
        out = to_host(sweep_fn(keys, lrs))
        chunks.append(jax.tree.map(lambda a: a[: num_seeds - start], out))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *chunks)


def seed_keys(base_seed: int, indices: np.ndarray) -> Array:
    """`synthetic_run.seed_key(base_seed, i)` for every i of `indices`."""
    return jax.vmap(lambda i: synthetic_run.seed_key(base_seed, i))(
        jnp.asarray(indices, jnp.int32))


class RunLayout(NamedTuple):
    """How the runs of one program (seed x lr pairs, seed-major) sit on the devices.

    `padded` runs (a multiple of devices x group) hold the `runs` real ones first; each
    device runs its share in `groups` groups of `group` runs, one group after another,
    the runs of a group vmapped together: the step's working set is that of one group.
    """

    runs: int
    padded: int
    group: int
    groups: int
    devices: int


def run_layout(runs: int, devices: int, group_max: int) -> RunLayout:
    """Equal groups of at most `group_max` runs per device, with the least padding."""
    local = -(-runs // devices)
    groups = -(-local // max(1, group_max))
    group = -(-local // groups)
    return RunLayout(runs, devices * groups * group, group, groups, devices)


class CellPrograms(NamedTuple):
    """One compiled program per part: `start(keys, lrs)` and `advance(carry, chunk, lrs)`
    over every run (arrays with the run axis first, sharded over the seed axis)."""

    start: Callable
    advance: Callable
    blocks: int
    layout: RunLayout
    memory: dict[str, int]


def compile_cell(cell: ml_collections.ConfigDict, mesh: Mesh, layout: RunLayout
                 ) -> CellPrograms:
    """Compiled `start` and `advance` for `layout.padded` runs of `cell` (one program each,
    reused for every chunk)."""
    fns = synthetic_run.make_chunk_fns(cell, synthetic_run.chunk_blocks(cell, TARGET_CHUNKS))
    runs, replicated = P(SEED_AXIS), P()

    def grouped(fn):
        # Inside one device: its runs in groups, each group vmapped (lax.map's batches).
        return lambda *args: jax.lax.map(lambda a: fn(*a), args, batch_size=layout.group)

    def local_start(keys, lrs):
        return grouped(lambda k, lr: fns.start(k, lr)[:3])(keys, lrs)

    def local_advance(carry, chunk, lrs):
        return grouped(lambda c, lr: fns.advance(c, chunk, lr)[:2])(carry, lrs)

    start = jax.jit(jax.shard_map(local_start, mesh=mesh, in_specs=(runs, runs),
                                  out_specs=runs, check_vma=False))
    advance = jax.jit(jax.shard_map(local_advance, mesh=mesh, in_specs=(runs, replicated, runs),
                                    out_specs=runs, check_vma=False), donate_argnums=0)
    keys = jax.ShapeDtypeStruct((layout.padded,), jax.eval_shape(
        lambda: synthetic_run.seed_key(0, 0)).dtype,
        sharding=NamedSharding(mesh, runs))
    lrs = jax.ShapeDtypeStruct((layout.padded,), jnp.float32, sharding=NamedSharding(mesh, runs))
    carry = jax.eval_shape(start, keys, lrs)[0]
    start = start.lower(keys, lrs).compile()
    carry = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype,
                                                        sharding=NamedSharding(mesh, runs)),
                         carry)
    advance = advance.lower(carry, jax.ShapeDtypeStruct((), jnp.int32), lrs).compile()
    analysis = advance.memory_analysis()
    memory = {} if analysis is None else {
        name: int(getattr(analysis, f"{name}_size_in_bytes", 0))
        for name in ("argument", "output", "temp", "generated_code")}
    return CellPrograms(start, advance, fns.blocks, layout, memory)


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, num_resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite values and its percentile bootstrap interval (NaN if none)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (num_resamples, values.size)).mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Summary of final errors over seeds: mean, 95% bootstrap CI, median, diverged fraction."""
    mean, low, high = bootstrap_mean_ci(values)
    finite = np.isfinite(values)
    return {"mean": mean, "ci_low": low, "ci_high": high,
            "median": float(np.median(values[finite])) if finite.any() else float("nan"),
            "std": float(np.std(values[finite])) if finite.any() else float("nan"),
            "nonfinite_fraction": float(1 - finite.mean())}


def cell_config(config: ml_collections.ConfigDict, model: str,
                optimizer: str) -> ml_collections.ConfigDict:
    """The single-run config of one (model, optimizer) cell of a sweep config."""
    if optimizer not in config.optimizers:
        raise ValueError(f"config.run_optimizers names {optimizer!r} but config.optimizers "
                         f"only sets {sorted(config.optimizers)}.")
    cell = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    cell.model = model
    settings = config.optimizers[optimizer].to_dict()
    cell.optimizer = ml_collections.ConfigDict(dict(
        name=optimizer, lr=settings.get("lr", 0.0), n_disc=settings.get("n_disc", 1),
        transform=settings.get("transform", {}), options=settings.get("options", {})))
    return cell


class Part(NamedTuple):
    """One compiled program of a cell: the lr sweep's single part (every lr of the grid)
    or one dimension of the d sweep (at the optimizer's fixed lr)."""

    name: str
    cell: ml_collections.ConfigDict
    lrs: tuple[float, ...]


def cell_parts(config: ml_collections.ConfigDict, model: str, optimizer: str) -> list[Part]:
    cell = cell_config(config, model, optimizer)
    name = f"{model}__{optimizer}"
    if config.sweep == "lr":
        return [Part(name, cell, tuple(float(lr) for lr in config.optimizers[optimizer].lrs))]
    parts = []
    for dim in config.dims:
        part = ml_collections.ConfigDict(copy.deepcopy(cell.to_dict()))
        part.dim = int(dim)
        parts.append(Part(f"{name}__d{int(dim)}", part, (float(cell.optimizer.lr),)))
    return parts


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _checkpoint_manager(directory: str):
    import orbax.checkpoint as ocp

    return ocp.CheckpointManager(os.path.abspath(directory), options=ocp.CheckpointManagerOptions(
        max_to_keep=1, create=True))


def _raw(x: Array) -> Array:
    return jax.random.key_data(x) if _is_key(x) else x


def save_checkpoint(directory: str, chunks_done: int, carry: Any, values: np.ndarray) -> None:
    """The carry (keys as their raw data) and the curves so far, labelled `chunks_done`.

    The carry is saved as the sharded arrays it is (each process writes its devices'
    rows); every process must call this.
    """
    import orbax.checkpoint as ocp

    leaves = [_raw(x) for x in jax.tree.leaves(carry)]
    tree = {"carry": {f"{i:04d}": leaf for i, leaf in enumerate(leaves)}, "values": values}
    with _checkpoint_manager(directory) as manager:
        manager.save(chunks_done, args=ocp.args.StandardSave(tree), force=True)
        manager.wait_until_finished()


def restore_checkpoint(directory: str, carry: Any, values: np.ndarray
                       ) -> Optional[tuple[int, Any, np.ndarray]]:
    """(chunks done, carry, curves) of the latest checkpoint in `directory`, shaped and
    sharded like `carry` and `values` (whatever the devices and processes that saved it);
    None when there is none. Every process must call this."""
    import orbax.checkpoint as ocp

    if not os.path.isdir(directory):
        return None
    with _checkpoint_manager(directory) as manager:
        step = manager.latest_step()
        if step is None:
            return None
        leaves, treedef = jax.tree.flatten(carry)
        # Restored straight onto this run's shardings (Orbax reads each device's rows).
        raw = [_raw(x) for x in leaves]
        template = {"carry": {f"{i:04d}": jax.ShapeDtypeStruct(r.shape, r.dtype,
                                                              sharding=r.sharding)
                              for i, r in enumerate(raw)},
                    "values": values}
        restored = manager.restore(step, args=ocp.args.StandardRestore(template))
    new_leaves = []
    for i, x in enumerate(leaves):
        data = restored["carry"][f"{i:04d}"]
        new_leaves.append(jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
                          if _is_key(x) else data)
    return int(step), jax.tree.unflatten(treedef, new_leaves), np.asarray(restored["values"])


def run_part(config: ml_collections.ConfigDict, part: Part, mesh: Mesh,
             workdir: Optional[str] = None, stop: Optional[signals.StopRequests] = None
             ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Every (seed, lr) run of one part, chunk by chunk with a progress line after each.

    With a workdir: the curves so far go to `progress/<part>.npz` after every chunk, the
    carry to `checkpoints/<part>/` every `config.checkpoint_every` chunks and on a stop
    request (then `signals.Stopped` is raised), and a checkpoint there is resumed.
    Returns values (seed, lr, time, metric), reference (seed, lr, metric) and stats.
    """
    num_seeds, num_lrs = int(config.num_seeds), len(part.lrs)
    layout = run_layout(num_seeds * num_lrs, mesh.shape[SEED_AXIS], int(config.chunk_seeds))
    compile_start = time.perf_counter()
    programs = compile_cell(part.cell, mesh, layout)
    compile_seconds = time.perf_counter() - compile_start
    runs = NamedSharding(mesh, P(SEED_AXIS))
    index = np.arange(layout.padded)
    # Run r is seed r // L at lr r % L; padding runs (r >= S·L) are trimmed after.
    keys = put_runs(seed_keys(config.seed, index // num_lrs), runs)
    lrs = put_runs(np.asarray(part.lrs, np.float32)[index % num_lrs], runs)
    carry, reference, first = programs.start(keys, lrs)
    metric_names = list(synthetic_run.METRICS)
    stack = lambda logged: np.stack(  # noqa: E731
        [np.asarray(logged[m]) for m in metric_names], -1)[: layout.runs]
    steps, log_every = int(part.cell.steps), int(part.cell.log_every)
    num_chunks = steps // (programs.blocks * log_every)
    values = np.full((layout.runs, steps // log_every + 1, len(metric_names)), np.nan,
                     np.float32)
    values[:, 0] = stack(to_host(first))
    reference = np.stack([np.asarray(to_host(reference)[m]) for m in
                          synthetic_run.ERROR_METRICS], -1)[: layout.runs]
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
    progress = synthetic_run.Progress(f"{part.name}: ", steps, layout.runs, done * chunk_steps)
    error_index = metric_names.index("param_error")
    run_start = time.perf_counter()
    for chunk in range(done, num_chunks):
        if stop is not None:
            stop.step = (chunk + 1) * chunk_steps
        carry, logged = programs.advance(carry, jnp.int32(chunk), lrs)
        first_log = 1 + chunk * programs.blocks
        values[:, first_log: first_log + programs.blocks] = stack(to_host(logged))
        if is_writer():
            progress.update((chunk + 1) * chunk_steps,
                            values[:, first_log + programs.blocks - 1, error_index])
        if workdir is None:
            continue
        if is_writer():
            write_npz(progress_path, values=shape(values), reference=shape(reference),
                      done_steps=(chunk + 1) * chunk_steps)
        stopping = stop is not None and stop.agreed(chunk) is not None
        last = chunk + 1 == num_chunks
        if stopping or (every and (chunk + 1) % every == 0 and not last):
            save_checkpoint(ckpt_dir, chunk + 1, carry, values)
        if stopping and not last:
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
                   "metric": list(synthetic_run.METRICS),
                   "reference_metric": list(synthetic_run.ERROR_METRICS)},
        "model": model, "optimizer": optimizer,
        "n_disc": (int(cell.optimizer.n_disc) if synthetic_run.uses_n_disc(optimizer)
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


def _names(value: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)


def validate(config: ml_collections.ConfigDict) -> None:
    """Fail before compiling anything on a sweep config that cannot run."""
    if config.sweep not in SWEEPS:
        raise ValueError(f"config.sweep={config.sweep!r}; choose one of {SWEEPS}.")
    if config.num_seeds < 1 or config.chunk_seeds < 1:
        raise ValueError("config.num_seeds and config.chunk_seeds must be >= 1.")
    for model in _names(config.models):
        for optimizer in _names(config.run_optimizers):
            cell = cell_config(config, model, optimizer)
            if config.sweep == "lr" and not len(config.optimizers[optimizer].get("lrs", ())):
                raise ValueError(f"config.optimizers.{optimizer}.lrs is empty.")
            synthetic_run.validate(cell)
            synthetic_run.chunk_blocks(cell, TARGET_CHUNKS)


def check(config: ml_collections.ConfigDict, data: bool = True) -> None:
    """Runner "sweep": every cell's config and every learning rate of its grid."""
    del data  # the data are generated from the config
    try:
        config = synthetic_run.resolve(config)
        validate(config)
        synthetic_run.check_values(config)
        for optimizer in _names(config.run_optimizers):
            settings = config.optimizers[optimizer]
            lrs = list(settings.get("lrs", ())) if config.sweep == "lr" else []
            for lr in lrs:
                check_value(f"config.optimizers.{optimizer}.lrs: ", "lr", lr)
            if "lr" in settings:
                check_value(f"config.optimizers.{optimizer}.", "lr", settings.lr)
            cell = cell_config(config, _names(config.models)[0], optimizer)
            synthetic_run.make_optimizer(cell.optimizer,
                                         float(lrs[0] if lrs else cell.optimizer.lr))
    except (ValueError, TypeError) as err:
        raise err if isinstance(err, UserError) else UserError(str(err)) from err


# Fields that do not change a cell's results: which cells a command runs, and how.
NOT_RESULTS = ("models", "run_optimizers", "optimizers", "quick", "quick_settings", "runner",
               "num_devices", "checkpoint_every", "parallel")
# Fields that change how the runs are split into programs and chunks: results agree to
# rounding, but a checkpoint resumes only under the same values (bit-for-bit results).
EXECUTION = ("chunk_seeds", "chunk_steps")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: list(tree) if isinstance(tree, tuple) else tree}


def cell_fingerprint(config: ml_collections.ConfigDict, model: str, optimizer: str
                     ) -> dict[str, Any]:
    """The settings a cell's results depend on (dotted names), execution fields included."""
    cell = cell_config(config, model, optimizer).to_dict()
    cell = {k: v for k, v in cell.items() if k not in NOT_RESULTS}
    if config.sweep == "lr":
        cell["lrs"] = [float(lr) for lr in config.optimizers[optimizer].lrs]
        cell.pop("dims", None)
    cell["chunk_steps"] = int(config.get("chunk_steps", 0) or 0)
    return json.loads(json.dumps(_flatten(cell)))  # tuples -> lists, as saved


def changed_fields(saved: dict[str, Any], current: dict[str, Any],
                   ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted names whose values differ (or exist on one side only)."""
    names = sorted(set(saved) | set(current))
    return [n for n in names if n not in ignore and saved.get(n, "<unset>") != current.get(
        n, "<unset>")]


def _mismatch(what: str, path: str, saved: dict[str, Any], current: dict[str, Any],
              fields: list[str]) -> UserError:
    shown = "; ".join(f"{f}: saved {saved.get(f, '<unset>')!r}, now {current.get(f, '<unset>')!r}"
                      for f in fields[:8])
    more = f" (and {len(fields) - 8} more)" if len(fields) > 8 else ""
    return UserError(f"{what} in {path} was made with different settings: {shown}{more}. "
                     "Rerun with the saved settings to reuse it, or use another --workdir.")


def cell_status(workdir: str, name: str, fingerprint: dict[str, Any]) -> str:
    """"done" (finished with these settings), "resume" (a checkpoint with these settings),
    or "new"; a finished cell or checkpoint with other settings raises UserError."""
    cell_path = os.path.join(workdir, f"{name}.json")
    if os.path.exists(cell_path):
        with open(cell_path) as f:
            saved = json.load(f).get("config")
        if saved is None:
            raise UserError(f"{cell_path} records no settings (an older sweep); move it out "
                            "of the workdir or use another --workdir.")
        fields = changed_fields(saved, fingerprint, EXECUTION)
        if fields:
            raise _mismatch(f"The finished cell {name}", cell_path, saved, fingerprint, fields)
        return "done"
    started_path = os.path.join(workdir, "checkpoints", f"{name}.config.json")
    if os.path.exists(started_path):
        with open(started_path) as f:
            saved = json.load(f)
        fields = changed_fields(saved, fingerprint)
        if fields:
            raise _mismatch(f"The interrupted cell {name}", started_path, saved, fingerprint,
                            fields)
        return "resume"
    return "new"


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
            "config": config.to_dict()}


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
    cells = [(m, o) for m in _names(config.models) for o in _names(config.run_optimizers)]
    status = {}
    for model, optimizer in cells:  # every settings check before any compile
        name = f"{model}__{optimizer}"
        status[name] = cell_status(workdir, name, cell_fingerprint(config, model, optimizer))
    _sync("sweep: settings checked")  # before process 0 writes what the checks read
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
                with open(started, "w") as f:
                    json.dump(fingerprint, f, indent=1)
            start = time.time()
            values, reference, axes = sweep_cell(config, model, optimizer, mesh, workdir, stop)
            axes["seconds"] = time.time() - start
            axes["config"] = fingerprint
            axes["rows"] = cell_summary(values, reference, axes)
            if writer:
                write_npz(os.path.join(workdir, f"{name}.npz"), values=values,
                          reference=reference)
                with open(os.path.join(workdir, f"{name}.json"), "w") as f:
                    json.dump(axes, f)
                for part in cell_parts(config, model, optimizer):
                    shutil.rmtree(os.path.join(workdir, "checkpoints", part.name),
                                  ignore_errors=True)
                    progress = os.path.join(workdir, "progress", f"{part.name}.npz")
                    if os.path.exists(progress):
                        os.remove(progress)
                os.remove(started)
                summary = collect_summary(workdir, config, mesh.shape[SEED_AXIS])
                print(format_cell(summary["cells"][name], config.sweep), flush=True)
                print(format_memory(name, axes["stats"]), flush=True)
                with open(os.path.join(workdir, "summary.json"), "w") as f:
                    json.dump(summary, f, indent=1)
            _sync(f"sweep: {name} written")
    summary = collect_summary(workdir, config, mesh.shape[SEED_AXIS])
    if writer:
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
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
