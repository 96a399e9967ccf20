"""Image GAN architectures: output shapes, parameter counts of the source code, init.

Parameter counts are computed by hand from the original code's layer shapes (weights +
biases + batch-norm scale/offset; running statistics are state, not parameters).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics.models import dcgan, icr_dcgan, registry


def _abstract_variables(module, x):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))


# ICR GoodGenerator/GoodDiscriminator, DIM=64 (devzhk/Implicit-Competitive-Regularization,
# GANs/models.py): 128*4096+4096 linear, 2*4096 BN1d, 256*128*16+128, 2*128,
# 128*64*16+64, 2*64, 64*3*16+3  |  3*64*16+64, 64*128*16+128, 128*256*16+256, 4096+1.
ICR_G = 528_384 + 8_192 + 524_416 + 256 + 131_136 + 128 + 3_075
ICR_D = 3_136 + 131_200 + 524_544 + 4_097
# WGAN-GP gan_cifar.py, DIM=128: 128*8192+8192, 2*8192 BN (axes [0]), 512*256*25+256, 2*256,
# 256*128*25+128, 2*128, 128*3*25+3  |  3*128*25+128, 128*256*25+256, 256*512*25+512, 8193.
WGAN_GP_G = 1_056_768 + 16_384 + 3_277_056 + 512 + 819_328 + 256 + 9_603
WGAN_GP_D = 9_728 + 819_456 + 3_277_312 + 8_193
# Radford DCGAN, width 64, z 100, no conv/linear biases, 5x5 kernels.
DCGAN64_G = 100 * 8192 + 2 * 8192 + 512 * 256 * 25 + 512 + 256 * 128 * 25 + 256 \
    + 128 * 64 * 25 + 128 + 64 * 3 * 25
DCGAN64_D = 3 * 64 * 25 + 64 * 128 * 25 + 256 + 128 * 256 * 25 + 512 + 256 * 512 * 25 \
    + 1024 + 512 * 16
DCGAN32_G = 100 * 4096 + 2 * 4096 + 256 * 128 * 25 + 256 + 128 * 64 * 25 + 128 + 64 * 3 * 25
DCGAN32_D = 3 * 64 * 25 + 64 * 128 * 25 + 256 + 128 * 256 * 25 + 512 + 256 * 16

CASES = [
    ("icr_dcgan", {}, 128, (32, 32, 3), ICR_G, ICR_D),
    ("wgan_gp_cifar", {}, 128, (32, 32, 3), WGAN_GP_G, WGAN_GP_D),
    ("dcgan", {"image_size": 64}, 100, (64, 64, 3), DCGAN64_G, DCGAN64_D),
    ("dcgan", {"image_size": 32}, 100, (32, 32, 3), DCGAN32_G, DCGAN32_D),
]


def test_published_counts_are_the_ones_quoted():
    assert (ICR_G, ICR_D) == (1_195_587, 662_977)
    assert (WGAN_GP_G, WGAN_GP_D) == (5_179_907, 4_114_689)
    assert (DCGAN64_G, DCGAN64_D) == (5_142_080, 4_315_584)


@pytest.mark.parametrize("name,kw,z_dim,image_shape,n_g,n_d", CASES)
def test_parameter_counts(name, kw, z_dim, image_shape, n_g, n_d):
    gen, disc = registry.get_model(name, **kw)
    vg = _abstract_variables(gen, jnp.zeros((2, z_dim)))
    vd = _abstract_variables(disc, jnp.zeros((2, *image_shape)))
    assert registry.param_count(vg["params"]) == n_g
    assert registry.param_count(vd["params"]) == n_d


@pytest.mark.parametrize("name,kw,z_dim,image_shape,n_g,n_d", CASES)
def test_output_shapes(name, kw, z_dim, image_shape, n_g, n_d):
    gen, disc = registry.get_model(name, **kw)
    vg = _abstract_variables(gen, jnp.zeros((3, z_dim)))
    x, _ = jax.eval_shape(lambda v: gen.apply(v, jnp.zeros((3, z_dim)), train=True,
                                              mutable=["batch_stats"]), vg)
    assert x.shape == (3, *image_shape) and x.dtype == jnp.float32
    vd = _abstract_variables(disc, jnp.zeros(x.shape))
    logits, _ = jax.eval_shape(lambda v: disc.apply(v, jnp.zeros(x.shape), train=True,
                                                    mutable=["batch_stats"]), vd)
    assert logits.shape == (3,)


# Narrow networks (width 8) run the same layer graph cheaply on a shared CPU.
@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("name,kw,z_dim,channels", [("icr_dcgan", {}, 128, 3),
                                                    ("dcgan", {"image_size": 32}, 100, 1)])
def test_forward_values_and_batch_stats(name, kw, z_dim, channels):
    gen, disc = registry.get_model(name, width=8, channels=channels, **kw)
    kg, kd, kz = jax.random.split(jax.random.key(1), 3)
    z = jax.random.normal(kz, (4, z_dim))
    vg = gen.init(kg, z, train=False)
    x, new_g = gen.apply(vg, z, train=True, mutable=["batch_stats"])
    assert x.shape == (4, 32, 32, channels)
    assert float(jnp.max(jnp.abs(x))) <= 1.0 and float(jnp.std(x)) > 0
    # Training mode moves every running average away from its (0, 1) start.
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new_g["batch_stats"],
                         vg["batch_stats"])
    assert all(jax.tree.leaves(moved))
    vd = disc.init(kd, x, train=False)
    logits, _ = disc.apply(vd, x, train=True, mutable=["batch_stats"])
    assert logits.shape == (4,) and bool(jnp.all(jnp.isfinite(logits)))
    # Different images give different logits (the network is not constant).
    assert float(jnp.std(logits)) > 0


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_icr_init_is_pytorch_default():
    """U(+-1/sqrt(fan_in)) with torch's transposed-conv fan_in = out_channels * k * k."""
    gen, disc = icr_dcgan.make(width=8)
    pg = gen.init(jax.random.key(0), jnp.zeros((1, 128)), train=False)["params"]
    pd = disc.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)["params"]
    for w, fan_in in [(pg["linear"]["kernel"], 128), (pg["linear"]["bias"], 128),
                      (pg["deconv1"]["kernel"], 16 * 16), (pg["deconv3"]["kernel"], 3 * 16),
                      (pd["conv2"]["kernel"], 8 * 16), (pd["linear"]["kernel"], 4 * 4 * 32)]:
        bound = 1 / math.sqrt(fan_in)
        assert float(jnp.max(jnp.abs(w))) <= bound
        assert float(jnp.max(jnp.abs(w))) > 0.9 * bound  # uniform fills the interval


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_dcgan_init_is_radford():
    gen, _ = dcgan.make(image_size=32, width=8)
    p = gen.init(jax.random.key(0), jnp.zeros((1, 100)), train=False)["params"]
    assert np.std(p["linear"]["kernel"]) == pytest.approx(0.02, rel=0.02)
    assert np.mean(p["bn0"]["scale"]) == pytest.approx(1.0, abs=0.003)
    assert np.std(p["bn0"]["scale"]) == pytest.approx(0.02, rel=0.15)


def test_bad_names_and_arguments_fail_clearly():
    with pytest.raises(ValueError, match="Unknown model 'resnet'.*icr_dcgan"):
        registry.get_model("resnet")
    with pytest.raises(ValueError, match="takes no argument.*image_size"):
        registry.get_model("icr_dcgan", image_size=64)
    with pytest.raises(ValueError, match="4\\*2\\^k"):
        registry.get_model("dcgan", image_size=48)
    _, disc = registry.get_model("icr_dcgan")
    with pytest.raises(AssertionError):
        jax.eval_shape(lambda: disc.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)),
                                         train=False))


def _ref_conv(x, w, p_top, out_size):
    """Cross-correlation, stride 2: out[o] = sum_k x[2o + k - p_top] w[k] (NHWC, HWIO)."""
    k = w.shape[0]
    out = np.zeros((x.shape[0], out_size, out_size, w.shape[-1]))
    for oy in range(out_size):
        for ox in range(out_size):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = 2 * oy + ky - p_top, 2 * ox + kx - p_top
                    if 0 <= iy < x.shape[1] and 0 <= ix < x.shape[2]:
                        out[:, oy, ox] += x[:, iy, ix] @ w[ky, kx]
    return out


def _ref_conv_transpose(x, w, p_top):
    """The gradient of `_ref_conv` (torch ConvTranspose2d / tf conv2d_transpose /
    Theano deconv): input pixel i adds w[k] at output 2i + k - p_top; output 2x."""
    k, n = w.shape[0], x.shape[1]
    out = np.zeros((x.shape[0], 2 * n, 2 * n, w.shape[-1]))
    for iy in range(n):
        for ix in range(n):
            for ky in range(k):
                for kx in range(k):
                    oy, ox = 2 * iy + ky - p_top, 2 * ix + kx - p_top
                    if 0 <= oy < 2 * n and 0 <= ox < 2 * n:
                        out[:, oy, ox] += x[:, iy, ix] @ w[ky, kx]
    return out


# (kernel, p_top of the original, our padding): torch k4 p1; TF 'SAME' k5 (pads 1 before,
# 2 after on even sizes); Theano border_mode=(2, 2) k5.
ALIGNMENTS = [(4, 1, icr_dcgan._DOWN_PAD, icr_dcgan._UP_PAD),
              (5, 1, "SAME", "SAME"),
              (5, 2, dcgan._DOWN_PAD, dcgan._UP_PAD)]


@pytest.mark.parametrize("k,p_top,down_pad,up_pad", ALIGNMENTS)
def test_layers_align_pixels_like_the_original_code(k, p_top, down_pad, up_pad):
    """Our strided (transposed) convolutions compute the original framework's function
    (up to the spatial flip of a learned transposed-conv kernel), borders included."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    conv = nn.Conv(4, (k, k), (2, 2), down_pad, use_bias=False)
    v = conv.init(jax.random.key(0), x)
    w = np.asarray(v["params"]["kernel"])
    np.testing.assert_allclose(conv.apply(v, x), _ref_conv(x, w, p_top, 4), atol=1e-4)
    up = nn.ConvTranspose(4, (k, k), (2, 2), up_pad, use_bias=False)
    v = up.init(jax.random.key(0), x)
    w = np.asarray(v["params"]["kernel"])
    np.testing.assert_allclose(up.apply(v, x), _ref_conv_transpose(x, w[::-1, ::-1], p_top),
                               atol=1e-4)
