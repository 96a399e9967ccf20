"""Devices for one training run: multi-host start-up, the mesh and the shardings.

Data parallelism in the modern JAX form (docs/design.md Sec. 10): one `Mesh` with a single
axis `'data'` (of type Auto) over the devices, batches sharded on that axis, parameters and optimizer
state replicated, and one `jax.jit` with explicit in/out shardings. XLA inserts the
gradient all-reduce, so a step on 8 devices computes the same function as on 1 (the
numbers agree to rounding: the all-reduce sums in another order).

Multi-host runs (TPU pods, GPU clusters, or several CPU processes on one machine) call
`jax.distributed.initialize` first; each process then feeds only its own rows of the
global batch (`global_batch`).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_dynamics.errors import UserError

DATA_AXIS = "data"

# The keys of a `parallel` section and the type of each.
_KINDS = {"num_devices": int, "distributed": bool, "coordinator_address": str,
          "num_processes": int, "process_id": int}


def check_config(parallel_config: Any) -> None:
    """UserError naming the key when a `parallel` section's value has the wrong type
    (before `initialize_distributed` acts on it: a string is a true `distributed`)."""
    for key, kind in _KINDS.items():
        value = parallel_config.get(key, kind())
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"config.parallel.{key}={value!r} must be "
                            f"{'an' if kind is int else 'a'} {kind.__name__}.")


def initialize_distributed(parallel_config: Any) -> None:
    """Start multi-host JAX when `parallel_config.distributed` is set; a no-op otherwise.

    Empty `coordinator_address` / negative `num_processes` / `process_id` let JAX detect
    them from the cluster environment (SLURM, TPU pods, Open MPI).
    """
    check_config(parallel_config)
    if not parallel_config.distributed or jax.distributed.is_initialized():
        return
    address = parallel_config.coordinator_address or None
    num_processes = parallel_config.num_processes if parallel_config.num_processes > 0 else None
    process_id = parallel_config.process_id if parallel_config.process_id >= 0 else None
    jax.distributed.initialize(address, num_processes, process_id)


def make_mesh(num_devices: int = 0, axis: str = DATA_AXIS) -> Mesh:
    """A one-axis mesh (`'data'` by default) over the first `num_devices` devices (0: all).

    The axis is of type Auto: shardings are fixed at the jit boundary (inputs, outputs,
    the state) and XLA propagates them through the program. Explicit axes would make every
    operation inside a model or solver agree with the sharding of its operands (a reshape
    that splits a sharded axis, a scatter, a user's own layer), which data parallelism
    does not need and which makes a user's model fail where it runs on one device.
    """
    available = jax.device_count()
    if num_devices < 0 or num_devices > available:
        raise ValueError(
            f"parallel.num_devices={num_devices} but {available} devices are visible; "
            "use 0 for all of them or a number between 1 and that."
        )
    n = num_devices or available
    if n != available and jax.process_count() > 1:
        raise ValueError("parallel.num_devices must be 0 (all devices) in a multi-host run.")
    return jax.make_mesh((n,), (axis,), devices=jax.devices()[:n],
                         axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (parameters, optimizer state, keys)."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Rows of axis `batch_axis` split over `'data'`; every other axis whole."""
    return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Fail before compiling when the global batch does not split evenly over devices."""
    n = mesh.shape[DATA_AXIS]
    if batch_size % n:
        raise ValueError(
            f"data.batch_size={batch_size} does not divide over {n} devices; choose a "
            f"multiple of {n} or set parallel.num_devices."
        )


def put_rows(host: Any, sharding: NamedSharding) -> jax.Array:
    """A host array (the same in every process) as a global array with `sharding`.

    Each process places only its own devices' parts, so this works when the mesh spans
    processes, where a `device_put` or a jit of a numpy array onto such a sharding is
    refused ("Passing non-trivial shardings for numpy inputs is not allowed").
    """
    x = np.asarray(host)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_host(tree: Any) -> Any:
    """Arrays sharded over a mesh, whole, as numpy in every process (with several
    processes an all-gather: every process must call it at the same point)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def in_every_process(flag: bool) -> bool:
    """Whether `flag` holds in every process (an all-gather with several processes:
    every process must call it at the same point)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.min(multihost_utils.process_allgather(np.int32(bool(flag)))))


def global_batch(local: Any, sharding: NamedSharding, batch_axis: int = 0) -> Any:
    """Assemble a global array from each process's rows (a pytree of numpy arrays).

    `local` holds this process's contiguous, equal share of rows along `batch_axis` (process
    i holds rows [i*b, (i+1)*b)); on one host it is the whole batch.
    """

    def build(x):
        x = np.asarray(x)
        shape = list(x.shape)
        shape[batch_axis] *= jax.process_count()
        return jax.make_array_from_process_local_data(sharding, x, tuple(shape))

    return jax.tree.map(build, local)
