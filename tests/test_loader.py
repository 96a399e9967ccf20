"""The grain input pipeline yields exactly `images.batches` of each step, from any start
step, with or without worker processes, and places them on the devices sharded."""

import numpy as np
import pytest

from gan_dynamics import parallel
from gan_dynamics.data import images, loader


def digits():
    return images.open_dataset("sklearn_digits", image_size=16)


def expected(source, steps, n=2, batch_size=16, seed=3):
    return [images.batches(source, t, n, batch_size=batch_size, seed=seed) for t in steps]


@pytest.mark.parametrize("start", [0, 7])
def test_thread_pipeline_is_the_pure_batches_from_any_start(start):
    source = digits()
    got = list(loader.step_batches(source, start, start + 5, 2, batch_size=16, seed=3))
    assert len(got) == 5
    for a, b in zip(got, expected(source, range(start, start + 5))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_worker_processes_give_the_same_batches():
    source = digits()
    got = list(loader.step_batches(source, 2, 8, 2, batch_size=16, seed=3, num_workers=2))
    for a, b in zip(got, expected(source, range(2, 8))):
        np.testing.assert_array_equal(a, b)


def test_device_batches_are_global_sharded_and_in_order():
    source = digits()
    mesh = parallel.make_mesh(8)
    local = loader.step_batches(source, 0, 4, 1, batch_size=16, seed=3)
    got = list(loader.device_batches(local, mesh, prefetch=2))
    assert len(got) == 4
    for a, b in zip(got, expected(source, range(4), n=1)):
        assert a.shape == (1, 16, 16, 16, 1)
        assert a.sharding.is_equivalent_to(parallel.batch_sharding(mesh, batch_axis=1), 5)
        np.testing.assert_array_equal(np.asarray(a), b)


def test_bad_arguments_fail():
    with pytest.raises(ValueError, match="start <= stop"):
        loader.step_batches(digits(), 5, 2, 1, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="prefetch"):
        next(loader.device_batches(iter([]), parallel.make_mesh(1), prefetch=0))
