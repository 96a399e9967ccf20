"""Every image experiment config loads, passes the schema, and builds model and optimizer.

Models are built abstractly (`jax.eval_shape`): shapes and parameter trees without any
compile, so the whole directory is checked in seconds. Data is not touched (datasets may
not be prepared here); tests/test_train.py runs configs end to end.
"""

import glob
import importlib.util
import os

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from gan_dynamics.runners import train_config

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments")


def load_module(path: str):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    module = load_module(path)
    return module.get_config() if arg is None else module.get_config(arg)


def image_config_cases():
    """(file, parametrisation) for every config whose runner is "image"."""
    cases = []
    for path in sorted(glob.glob(os.path.join(EXPERIMENTS, "*.py"))):
        with open(path) as f:
            if "\ndef get_config(" not in f.read():  # a script (run.py, plots.py, ...)
                continue
        config = load_config(path)
        if config.get("runner") != "image":
            continue
        if os.path.basename(path) == "fedus_dcgan.py":
            fedus = load_module(path)
            cases += [(path, f"dataset={d},model={m}") for d in fedus.DATASETS for m in fedus.MODELS]
        else:
            cases.append((path, None))
    return cases


CASES = image_config_cases()


def test_every_image_experiment_is_found():
    names = {os.path.basename(p) for p, _ in CASES}
    for expected in ("cifar_wgan_cgd.py", "cifar_wgan_gp_adam.py", "cifar_wgan_adam.py",
                     "cifar_wgan_gp_cgd.py", "cifar_gan_cgd.py", "cifar_gan_adam.py",
                     "cifar_nsgan_gp_adam.py", "fedus_dcgan.py", "offline_digits.py"):
        assert expected in names


@pytest.mark.parametrize("path,arg", CASES, ids=[
    os.path.basename(p)[:-3] + (f":{a}" if a else "") for p, a in CASES])
def test_config_builds_model_and_optimizer(path, arg):
    config = load_config(path, arg)
    train_config.check_config(config)
    optimizer, n_sub = train_config.build_optimizer(config)
    assert n_sub == (config.optimizer.n_disc + 1 if "n_disc" in config.optimizer else 1)
    penalty = train_config.build_penalty(config)
    assert (penalty is None) == (config.loss.penalty == "none")
    generator, discriminator, z_dim, image_shape = train_config.build_models(config)
    key = jax.random.key(0)
    params_x = jax.eval_shape(lambda: generator.init(key, jnp.zeros((1, z_dim)), train=False))
    params_y = jax.eval_shape(
        lambda: discriminator.init(key, jnp.zeros((1, *image_shape)), train=False))
    opt_state = jax.eval_shape(optimizer.init, params_x["params"], params_y["params"])
    # every optimizer of these configs keeps per-coordinate state for the generator
    # (Adam moments, ACGD second moments, CGD warm starts): each of its shapes appears
    shapes = {leaf.shape for leaf in jax.tree.leaves(opt_state)}
    assert {leaf.shape for leaf in jax.tree.leaves(params_x["params"])} <= shapes
    logits = jax.eval_shape(
        lambda: discriminator.init_with_output(key, jnp.zeros((2, *image_shape)), train=False)[0])
    assert logits.shape == (2,)
