"""Long waits are announced: what is being compiled or computed, then how long it took."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

from gan_dynamics import progress


def test_compile_announces_what_and_how_long(capsys):
    compiled = progress.compile("the doubling", jax.jit(lambda x: 2 * x),
                                jax.ShapeDtypeStruct((3,), jnp.float32))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Compiling the doubling ..."
    assert re.fullmatch(r"Compiling the doubling: done in \d+\.\d s", lines[1]), lines
    assert compiled(jnp.ones(3)).tolist() == [2.0, 2.0, 2.0]


def test_a_step_inside_a_step_keeps_both_lines_whole(capsys):
    with progress.step("Evaluating step 5"):
        with progress.step("Sampling 16 images"):
            pass
        progress.note("  a part")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Evaluating step 5 ...", "Sampling 16 images ..."]
    assert lines[2].startswith("Sampling 16 images: done in ")
    assert lines[3] == "  a part"
    assert lines[4].startswith("Evaluating step 5: done in ")


@pytest.mark.slow  # compiles the tiny GAN, its evaluation and diagnostics: ~1 min
def test_an_image_run_says_what_it_compiles_and_evaluates(tmp_path, capsys):
    """The training step, the initial state and the generator are compiled ahead with a
    message; an evaluation announces its parts (sampling, the critic, diagnostics)."""
    from gan_dynamics.runners import train
    from tests.test_signals import _tiny_config

    config = _tiny_config(tmp_path, num_steps=2, eval_every=2)
    config.eval.update({"metrics": "critic", "num_samples": 16, "batch_size": 8})
    config.eval.critic.update({"num_steps": 5, "batch_size": 4})
    config.diagnostics.update({"every": 2, "k": 2, "which": "LM", "hessian": False})
    train.run(config, str(tmp_path / "wd"))
    out = capsys.readouterr().out
    for line in ("Compiling the initial state: done in ",
                 "Compiling the training step: done in ",
                 "Compiling the sample generator: done in ",
                 "Evaluating step 2 ...", "Sampling 16 images: done in ",
                 "Training and scoring the independent critic (5 steps): done in ",
                 "Diagnostics of step 2 ...", "  eigenvalues (LM) ...",
                 "Evaluating step 2: done in "):
        assert line in out, (line, out)
    assert out.index("Compiling the training step") < out.index("step 1/2")
