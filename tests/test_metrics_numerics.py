"""The metric networks ask for full float32 in every convolution and matrix product.

Checked in the lowered program, where the precision is fixed whatever the backend: on a
CPU the numbers would not show it (float32 is computed in full there anyway).
"""

import jax
import jax.numpy as jnp
import optax

from gan_dynamics.metrics import classifier, inception, numerics


def _assert_all_highest(lowered_text: str, at_least: int) -> None:
    ops = [line for line in lowered_text.splitlines()
           if "stablehlo.dot_general" in line or "stablehlo.convolution" in line]
    assert len(ops) >= at_least
    for line in ops:
        assert "HIGHEST" in line, line


def test_inception_extractor_runs_at_highest_precision():
    images = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    model = inception.FIDInceptionV3()
    params = jax.eval_shape(model.init, jax.random.key(0), images)
    lowered = jax.jit(numerics.highest_precision(model.apply)).lower(params, images)
    _assert_all_highest(lowered.as_text(), at_least=94)  # 94 convolutions, the fc, resizes


def test_classifier_scoring_and_training_run_at_highest_precision():
    module = classifier.make_module("small_cnn", 10)
    x = jax.ShapeDtypeStruct((4, 16, 16, 1), jnp.float32)
    params = jax.eval_shape(module.init, jax.random.key(0), x)["params"]
    _assert_all_highest(classifier._apply.lower(module, params, x).as_text(), at_least=4)
    tx = optax.adam(1e-3)
    chunk = classifier.make_train_chunk(module, tx, flip=False)
    lowered = chunk.lower(params, jax.eval_shape(tx.init, params), jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 4, 16, 16, 1), jnp.float32),
                          jax.ShapeDtypeStruct((1, 4), jnp.int32))
    _assert_all_highest(lowered.as_text(), at_least=8)  # forward and backward products


def test_precision_is_left_as_it_was_outside():
    f = lambda a: a @ a
    numerics.highest_precision(f)(jnp.eye(2))
    lowered = jax.jit(f).lower(jnp.eye(2)).as_text()
    assert "HIGHEST" not in lowered
