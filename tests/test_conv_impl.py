"""`conv_impl` "lax" and "matmul" compute the same models: values, gradients and the
mixed second derivatives CGD uses, for every image model family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_dynamics.models import layers, registry

FAMILIES = [
    ("icr_dcgan", {"z_dim": 8, "width": 4, "channels": 3}),
    ("wgan_gp_cifar", {"z_dim": 8, "width": 4, "channels": 3}),
    ("dcgan", {"image_size": 16, "z_dim": 8, "width": 4, "channels": 1}),
]


def _close(a, b, tol):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
@pytest.mark.parametrize("name,kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_lax_and_matmul_models_agree(x64, name, kwargs):
    gens, discs = {}, {}
    for impl in ("lax", "matmul"):
        gens[impl], discs[impl] = registry.get_model(name, conv_impl=impl, **kwargs)
    z_dim = kwargs["z_dim"]
    kz, kg, kd, kt = jax.random.split(jax.random.key(0), 4)
    z = jax.random.normal(kz, (3, z_dim), jnp.float64)
    vars_g = gens["lax"].init(kg, z, train=False)
    images = gens["lax"].apply(vars_g, z, train=False)
    vars_d = discs["lax"].init(kd, images, train=False)
    assert jax.tree.structure(vars_g) == jax.tree.structure(
        gens["matmul"].init(kg, z, train=False))

    def game(impl):
        # a GAN-like scalar through both networks (train mode: batch statistics in play)
        def loss(pg, pd):
            x, _ = gens[impl].apply({**vars_g, "params": pg}, z, train=True,
                                    mutable=["batch_stats"])
            d, _ = discs[impl].apply({**vars_d, "params": pd}, x, train=True,
                                     mutable=["batch_stats"])
            return jnp.sum(jnp.tanh(d))
        return loss

    pg, pd = vars_g["params"], vars_d["params"]
    _close(game("lax")(pg, pd), game("matmul")(pg, pd), 1e-12)
    grads = {impl: jax.grad(game(impl), argnums=(0, 1))(pg, pd) for impl in ("lax", "matmul")}
    _close(grads["lax"], grads["matmul"], 1e-10)
    tangent = jax.tree.map(lambda p: jax.random.normal(kt, p.shape, p.dtype), pd)
    mixed = {impl: jax.jvp(lambda q: jax.grad(game(impl))(pg, q), (pd,), (tangent,))[1]
             for impl in ("lax", "matmul")}
    _close(mixed["lax"], mixed["matmul"], 1e-10)


def test_auto_is_matmul_on_cpu_and_bad_names_fail():
    assert jax.default_backend() == "cpu"
    assert layers.resolve_conv_impl("auto") == "matmul"
    with pytest.raises(ValueError, match="conv_impl='cudnn'"):
        registry.get_model("icr_dcgan", conv_impl="cudnn")
