"""The matmul-and-fold ConvTranspose equals flax's, in values and derivatives."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics.models import layers


@pytest.mark.parametrize("kernel, stride, padding", [
    (4, 2, ((2, 2), (2, 2))),   # ICR DCGAN (torch k4 s2 p1)
    (5, 2, "SAME"),             # WGAN-GP CIFAR
    (5, 2, ((2, 3), (2, 3))),   # Radford DCGAN
    (3, 2, "VALID"),
    (3, 1, "SAME"),
    (2, 3, ((1, 0), (0, 1))),   # stride larger than the kernel, asymmetric pads
])
@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_conv_transpose_matches_flax(x64, kernel, stride, padding):
    x = jax.random.normal(jax.random.key(0), (2, 5, 4, 3), jnp.float64)
    ref = nn.ConvTranspose(4, (kernel, kernel), (stride, stride), padding,
                           param_dtype=jnp.float64)
    ours = layers.ConvTranspose(4, (kernel, kernel), (stride, stride), padding)
    params = ref.init(jax.random.key(1), x)
    assert jax.tree.structure(params) == jax.tree.structure(ours.init(jax.random.key(1), x))
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-12)

    def loss(module):
        return lambda p, v: jnp.sum(jnp.sin(module.apply(p, v)))

    g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, atol=1e-11)
    # the mixed second derivative CGD uses: d/dx of the parameter gradient
    tangent = jax.random.normal(jax.random.key(2), x.shape, jnp.float64)
    mixed = lambda m: jax.jvp(lambda v: jax.grad(loss(m))(params, v), (x,), (tangent,))[1]
    for a, b in zip(jax.tree.leaves(mixed(ours)), jax.tree.leaves(mixed(ref))):
        np.testing.assert_allclose(a, b, atol=1e-11)


def test_bad_padding_name_fails():
    with pytest.raises(ValueError, match="padding="):
        layers.conv_padding(8, 4, 2, "FULL")
    with pytest.raises(ValueError, match="padding="):
        layers.conv_transpose_padding(4, 2, "FULL")


@pytest.mark.parametrize("kernel, stride, padding", [
    (4, 2, ((1, 1), (1, 1))),   # ICR DCGAN discriminator
    (5, 2, "SAME"),             # WGAN-GP CIFAR critic
    (5, 2, ((2, 2), (2, 2))),   # Radford DCGAN
    (3, 1, "SAME"),
    (3, 2, "VALID"),
    (2, 3, ((0, 1), (1, 0))),
])
def test_conv_matches_flax(x64, kernel, stride, padding):
    x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3), jnp.float64)
    ref = nn.Conv(4, (kernel, kernel), (stride, stride), padding, param_dtype=jnp.float64)
    ours = layers.Conv(4, (kernel, kernel), (stride, stride), padding)
    params = ref.init(jax.random.key(1), x)
    assert jax.tree.structure(params) == jax.tree.structure(ours.init(jax.random.key(1), x))
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-12)
    loss = lambda m: (lambda p, v: jnp.sum(jnp.sin(m.apply(p, v))))
    for a, b in zip(jax.tree.leaves(jax.grad(loss(ours), argnums=(0, 1))(params, x)),
                    jax.tree.leaves(jax.grad(loss(ref), argnums=(0, 1))(params, x))):
        np.testing.assert_allclose(a, b, atol=1e-11)
    tangent = jax.random.normal(jax.random.key(2), x.shape, jnp.float64)
    mixed = lambda m: jax.jvp(lambda v: jax.grad(loss(m))(params, v), (x,), (tangent,))[1]
    for a, b in zip(jax.tree.leaves(mixed(ours)), jax.tree.leaves(mixed(ref))):
        np.testing.assert_allclose(a, b, atol=1e-11)


def test_native_conv_options_keep_convolutions_out_of_ynnpack_on_cpu():
    # The FID Inception's speed on CPU rests on these options (models/layers.py): if a
    # jaxlib renames the option, this says so instead of the extractor silently slowing.
    if jax.default_backend() != "cpu":
        assert layers.native_conv_compiler_options() == {}
        return
    x = jax.ShapeDtypeStruct((8, 35, 35, 64), jnp.float32)
    k = jax.ShapeDtypeStruct((3, 3, 64, 96), jnp.float32)
    conv = lambda x, k: layers.lax_conv(x, k, (1, 1), ((1, 1), (1, 1)))
    default = jax.jit(conv).lower(x, k).compile().as_text()
    native = jax.jit(conv, compiler_options=layers.native_conv_compiler_options()
                     ).lower(x, k).compile().as_text()
    assert "__ynn_fusion" in default
    assert "__ynn_fusion" not in native and "convolution(" in native
