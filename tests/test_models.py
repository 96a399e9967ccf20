"""Image GAN architectures: output shapes, parameter counts of the source code, init.

Parameter counts are computed by hand from the original code's layer shapes (weights +
biases + batch-norm scale/offset; running statistics are state, not parameters).
"""

import math

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
