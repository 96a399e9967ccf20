"""The image runner's input pipeline: a step-indexed grain dataset, decoded ahead by worker
processes or threads, and batches placed on the devices ahead of the step that uses them.

The batches of step t are a pure function of (source, seed, t, process) (`images.batches`:
each process reads only its rows of the global batch, whatever the number of processes).
So the pipeline is a `grain.MapDataset` over step numbers mapped by that function: there
is no loader state to checkpoint, a resumed run starts the dataset at its step, and N
processes resume what M saved. (A grain sampler sharded by process index would make the
batches depend on the process count.)

- `num_workers > 0`: decoding runs in that many worker processes (`mp_prefetch`), for
  datasets whose records are decoded per example (tfds: PNG/JPEG); 0 decodes in a thread
  pool of the main process, which suits in-memory sets (the package digit sets, whose
  batches are array slices: worker processes only add transfers there).
- `device_batches` keeps `prefetch` steps' global arrays in flight to the devices, so the
  host reads step t+1.. while the devices run step t.
"""

from __future__ import annotations

import collections
import functools
from typing import Callable, Iterator, Sequence

import grain
import jax
import numpy as np
from absl import flags

from gan_dynamics import parallel
from gan_dynamics.data import images


def step_batches(source: images.ImageSource, start: int, stop: int, n: int, *,
                 batch_size: int, seed: int, num_workers: int = 0,
                 read_threads: int = 2, buffer: int = 4) -> Iterator[np.ndarray]:
    """This process's rows of the n batches of each step in [start, stop), in order.

    Each item is `images.batches(source, t, n, ...)`: (n, batch_size / processes, H, W, C).
    """
    read = functools.partial(images.batches, source, n=n, batch_size=batch_size, seed=seed,
                             process_index=jax.process_index(),
                             process_count=jax.process_count())
    return _steps(read, start, stop, num_workers, read_threads, buffer)


def seeds_step_batches(source: images.ImageSource, start: int, stop: int, n: int, *,
                       batch_size: int, seeds: Sequence[int], num_workers: int = 0,
                       read_threads: int = 2, buffer: int = 4) -> Iterator[np.ndarray]:
    """The batches of each step in [start, stop) of every seed of a K-seed run (one
    process), stacked: (K, n, batch_size, H, W, C); row k is `step_batches` of seeds[k]."""
    read = functools.partial(_seeds_batches, source, n=n, batch_size=batch_size,
                             seeds=tuple(int(s) for s in seeds))
    return _steps(read, start, stop, num_workers, read_threads, buffer)


def _seeds_batches(source: images.ImageSource, step: int, *, n: int, batch_size: int,
                   seeds: tuple[int, ...]) -> np.ndarray:
    return np.stack([images.batches(source, step, n=n, batch_size=batch_size, seed=seed)
                     for seed in seeds])


def _steps(read: Callable[[int], np.ndarray], start: int, stop: int, num_workers: int,
           read_threads: int, buffer: int) -> Iterator[np.ndarray]:
    """`read(t)` for t in [start, stop): a grain dataset over step numbers."""
    if not 0 <= start <= stop or num_workers < 0 or read_threads < 1 or buffer < 1:
        raise ValueError(f"Need 0 <= start <= stop, num_workers >= 0, read_threads >= 1 and "
                         f"buffer >= 1; got start={start}, stop={stop}, "
                         f"num_workers={num_workers}, read_threads={read_threads}, "
                         f"buffer={buffer}.")
    dataset = grain.MapDataset.range(start, stop).map(read).to_iter_dataset(
        grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=buffer))
    if num_workers:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags (library use)
            flags.FLAGS.mark_as_parsed()
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return iter(dataset)


def device_batches(local: Iterator[np.ndarray], mesh: jax.sharding.Mesh,
                   prefetch: int = 2, split_axis: int = 1) -> Iterator[jax.Array]:
    """Global arrays (n, batch_size, H, W, C), batch axis on 'data', `prefetch` steps ahead.

    `local` yields this process's rows (`step_batches`); transfers are asynchronous, so
    keeping a few in the queue overlaps them with the running step. `split_axis`: the
    axis split over 'data' (and over processes' rows): the batch axis, 1; a K-seed run's
    stacked batches (`seeds_step_batches`) split their seed axis 0 or batch axis 2.
    """
    if prefetch < 1:
        raise ValueError(f"prefetch={prefetch} must be at least 1.")
    sharding = parallel.batch_sharding(mesh, batch_axis=split_axis)
    queue: collections.deque[jax.Array] = collections.deque()
    for rows in local:
        queue.append(parallel.global_batch(rows, sharding, batch_axis=split_axis))
        if len(queue) > prefetch:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
