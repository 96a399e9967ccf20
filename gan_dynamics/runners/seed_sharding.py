"""Runs of a sweep on the devices: the seed mesh, placement, gathering, compiled programs.

Every run (seed, or seed x learning rate) of a sweep part is a row of arrays sharded over
the one-axis mesh "seeds" (`seed_mesh`). Inside a device its runs go in groups of at most
`config.chunk_seeds` (`run_layout`), each group vmapped, one group after another
(`lax.map` batches), so the step's working set is one group's whatever the number of
seeds (`compile_cell`; docs/sweeps.md: throughput and memory). With several processes
every process builds the same host arrays and puts them on the global mesh (`put_runs`)
and fetches results whole with an all-gather (`parallel.to_host`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_dynamics.errors import UserError
from gan_dynamics.parallel import put_rows, to_host
from gan_dynamics.runners import synthetic_train
from gan_dynamics.runners.sweep_settings import TARGET_CHUNKS

Array = jax.Array


SEED_AXIS = "seeds"


def seed_mesh(num_devices: int = 0) -> Mesh:
    """A one-axis mesh named "seeds" over the first `num_devices` devices (0: all; all
    processes' devices in a multi-process run)."""
    available = jax.device_count()
    if isinstance(num_devices, bool) or not isinstance(num_devices, int):
        raise UserError(f"config.num_devices={num_devices!r} must be an integer (0: all "
                        f"{available} devices).")
    n = num_devices or available
    if not 1 <= n <= available:
        raise UserError(f"config.num_devices={num_devices} but {available} devices are "
                        "visible; use 0 for all of them.")
    if n != available and jax.process_count() > 1:
        raise UserError(f"config.num_devices={num_devices} in a run of {jax.process_count()} "
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
    as keys (`parallel.put_rows`: works when the mesh spans processes)."""
    if is_key(x):
        data = put_runs(np.asarray(jax.random.key_data(x)), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    return put_rows(x, sharding)


def sync(name: str) -> None:
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
              chunk_seeds: int) -> synthetic_train.TrainResult:
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
        chunks.append(jax.tree.map(lambda a, n=num_seeds - start: a[:n], out))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *chunks)


def seed_keys(base_seed: int, indices: np.ndarray) -> Array:
    """`synthetic_train.seed_key(base_seed, i)` for every i of `indices`."""
    return jax.vmap(lambda i: synthetic_train.seed_key(base_seed, i))(
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
    fns = synthetic_train.make_chunk_fns(cell, synthetic_train.chunk_blocks(cell, TARGET_CHUNKS))
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
        lambda: synthetic_train.seed_key(0, 0)).dtype,
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


def is_key(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
