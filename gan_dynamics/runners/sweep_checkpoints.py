"""Orbax checkpoints of a sweep part: the sharded carry (keys as raw data) and the curves.

Each process writes and reads its own devices' rows, so a checkpoint written by any
layout of devices and processes restores into any other.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import numpy as np

from gan_dynamics.runners.seed_sharding import Array, is_key


def _checkpoint_manager(directory: str):
    import orbax.checkpoint as ocp

    return ocp.CheckpointManager(os.path.abspath(directory), options=ocp.CheckpointManagerOptions(
        max_to_keep=1, create=True))


def _raw(x: Array) -> Array:
    return jax.random.key_data(x) if is_key(x) else x


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
                          if is_key(x) else data)
    return int(step), jax.tree.unflatten(treedef, new_leaves), np.asarray(restored["values"])
