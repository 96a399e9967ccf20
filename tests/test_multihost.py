"""Two processes (2 CPU devices each, gloo collectives) train what one process on 4
devices trains, and a checkpoint written by either restores in the other.

Every subprocess has a timeout and is killed on failure, so a hang fails the test. The
runs are compared through what they leave in the workdir: the losses of every step in
metrics.jsonl and the parameters of the last checkpoint. Across process layouts the
gradient all-reduce sums in another order, so the comparison is to float32 rounding.
"""

from __future__ import annotations

import json
import textwrap

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests import processes

TIMEOUT = 900  # seconds per run (compiles on 2 shared cores); a hang fails

CONFIG = textwrap.dedent("""
    from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss

    def get_config(optimizer):
        config = default_config()
        config.data.name = "sklearn_digits"
        config.data.image_size = 8
        config.data.batch_size = 8
        config.model = {"name": "dcgan", "image_size": 8, "z_dim": 4, "width": 4,
                        "channels": 1}
        if optimizer == "acgd":
            set_loss(config, "wgan")
            config.optimizer = {"name": "acgd", "lr_x": 1e-3, "lr_y": 1e-3, "max_iter": 10}
        else:  # AltGD with Adam and the GAN-GP penalty
            set_loss(config, "non_saturating", penalty="gan_gp", weight=10.0)
            config.optimizer = adam_altgd(lr=1e-3, b1=0.5, b2=0.9, n_disc=2)
        config.train.update({"num_steps": 3, "log_every": 1, "checkpoint_every": 1,
                             "keep_checkpoints": 10, "sample_every": 1000, "num_samples": 4,
                             "eval_every": 1000})
        return config
""")


def _run(tmp_path, workdir: str, optimizer: str, num_steps: int, nproc: int) -> None:
    """Train `workdir` to `num_steps` with `nproc` processes of 4 / nproc devices."""
    processes.run(tmp_path, [f"--config={tmp_path / 'multihost.py'}:{optimizer}",
                             f"--workdir={tmp_path / workdir}",
                             f"--config.train.num_steps={num_steps}"],
                  nproc, TIMEOUT, devices=4 // nproc)


def _losses(tmp_path, workdir: str) -> dict[int, tuple[float, float]]:
    with open(tmp_path / workdir / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    return {r["step"]: (r["f"], r["g"]) for r in rows if "f" in r}


def _params(tmp_path, workdir: str, step: int) -> list[np.ndarray]:
    path = tmp_path / workdir / "checkpoints" / str(step) / "default"
    # As host arrays: the checkpoint's device layout is another process count's.
    checkpointer = ocp.PyTreeCheckpointer()
    meta = checkpointer.metadata(path)
    tree = meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    state = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
    leaves = []
    for name in ("params_x", "params_y"):
        leaves += [np.asarray(x) for x in _leaves(state[name])]
    return leaves


def _leaves(tree) -> list:
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key])]
    return [tree]


def _assert_same_run(tmp_path, a: str, b: str, steps: range, last: int) -> None:
    la, lb = _losses(tmp_path, a), _losses(tmp_path, b)
    for step in steps:
        np.testing.assert_allclose(la[step], lb[step], rtol=2e-5, atol=1e-6,
                                   err_msg=f"step {step}")
    for x, y in zip(_params(tmp_path, a, last), _params(tmp_path, b, last), strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-6)


@pytest.mark.slow  # six JAX processes compile the tiny GAN: minutes on 2 cores
@pytest.mark.parametrize("optimizer", ["acgd", "altgd_gp"])
def test_two_nprocequal_one_process_and_checkpoints_move_between_them(tmp_path,
                                                                           optimizer):
    (tmp_path / "multihost.py").write_text(CONFIG)
    _run(tmp_path, "one", optimizer, num_steps=3, nproc=1)
    _run(tmp_path, "two", optimizer, num_steps=3, nproc=2)
    _assert_same_run(tmp_path, "one", "two", range(1, 4), last=3)

    # A 2-process checkpoint continued by 1 process, and a 1-process one by 2 processes,
    # both equal the uninterrupted 1-process run.
    _run(tmp_path, "one", optimizer, num_steps=5, nproc=1)
    _run(tmp_path, "two", optimizer, num_steps=5, nproc=1)
    _assert_same_run(tmp_path, "one", "two", range(1, 6), last=5)
    _run(tmp_path, "one_then_two", optimizer, num_steps=3, nproc=1)
    _run(tmp_path, "one_then_two", optimizer, num_steps=5, nproc=2)
    _assert_same_run(tmp_path, "one", "one_then_two", range(1, 6), last=5)


# The Inception Score and FID of a fixed image set through the evaluator, with a random
# Inception (no weights to download): process 0 saves the features and the scores.
_SCORES = textwrap.dedent("""
    import sys

    import jax
    import numpy as np

    from gan_dynamics import parallel
    from gan_dynamics.metrics import critic, inception, scores
    from gan_dynamics.runners import image_eval

    processes, process_id, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if processes > 1:
        jax.distributed.initialize(f"localhost:{port}", processes, process_id)
    mesh = parallel.make_mesh(0)
    rng = np.random.default_rng(0)
    images, real = rng.uniform(-1, 1, (2, 8, 32, 32, 3)).astype(np.float32)
    params = jax.jit(inception.FIDInceptionV3().init)(jax.random.key(0), images[:1])
    extract = inception.make_extractor(params, mesh)
    reference = scores.gaussian_statistics(extract(real)[0])
    evaluator = image_eval.Evaluator(("inception_score", "fid"), np.zeros((8, 1)), 4, 2,
                                     real, 0, critic.CriticOptions(), inception=extract,
                                     inception_reference=reference)
    pool, logits = extract(images)
    result = evaluator.score(images)
    if jax.process_index() == 0:
        np.savez(out, pool=pool, logits=logits, **result)
""")


@pytest.mark.slow  # a random Inception-v3 at 299 px in three JAX processes: minutes
def test_inception_score_and_fid_of_two_processes_equal_one_process(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "scores.py"
    script.write_text(_SCORES)
    saved = {}
    for n in (1, 2):
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=processes.ROOT,
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={4 // n}")
        port = str(processes.free_port())
        out = str(tmp_path / f"{n}.npz")
        procs = [subprocess.Popen([sys.executable, str(script), str(n), str(i), port, out],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env) for i in range(n)]
        for status, _, err in processes.finish(procs, TIMEOUT):
            assert status == 0, err[-3000:]
        with np.load(out) as f:
            saved[n] = dict(f)
    for key in ("pool", "logits", "inception_score", "inception_score_std", "fid"):
        np.testing.assert_allclose(saved[2][key], saved[1][key], rtol=1e-4, atol=1e-5,
                                   err_msg=key)
