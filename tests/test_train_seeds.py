"""K-seed image runs (`train.num_seeds`): seed k equals the run alone, a diverged seed
stops alone, a stopped run resumes exactly, each seed is a run for every tool.

The 8 fake CPU devices of conftest.py give both placements: 4 seeds on 8 devices split
each seed's batch; 4 seeds on 4 devices (and 2 on 2) split the seeds.
"""

import json
import os

import jax
import numpy as np
import pytest

from gan_dynamics import checkpoints, outputs, parallel, signals
from gan_dynamics.data import images, loader
from gan_dynamics.errors import UserError
from gan_dynamics.runners import (
    open_run,
    seeds_step,
    train,
    train_config,
    train_seeds,
    train_step,
)
from tests.test_train import _params, random_images, sigterm_after, tiny_config

# Measured: seed k of the vmapped program differs from the seed alone by at most
# 6e-7 of a leaf's largest entry after 4 AltGD or ACGD steps (other reduction orders).
RTOL, ATOL = 1e-5, 1e-6


def _row(state, k):
    return jax.tree.map(lambda a: a[k], _params(state.runs))


def _close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL), a, b)


def test_seed_k_of_four_equals_the_seed_alone_in_both_placements(tmp_path):
    config = tiny_config(penalty="none", num_seeds=4)
    config.seed = 10
    state = train.run(config, str(tmp_path / "k4"), source=random_images())
    for k in range(4):
        alone = tiny_config(penalty="none")
        alone.seed = 10 + k
        one = train.run(alone, str(tmp_path / f"alone{k}"), source=random_images())
        _close(_params(one), _row(state, k))
        seed_dir = train_seeds.seed_dir(str(tmp_path / "k4"), k)
        # The seed's directory is the run alone's: its config, checkpoints, losses.
        assert checkpoints.read_config(seed_dir) == checkpoints.read_config(
            str(tmp_path / f"alone{k}"))
        exp = train_config.build(alone, source=random_images())
        _close(_params(one), _params(open_run.restore_state(alone, exp, seed_dir)))
        rows = outputs.read_metrics(seed_dir)
        alone_rows = outputs.read_metrics(str(tmp_path / f"alone{k}"))
        assert [r["step"] for r in rows] == [r["step"] for r in alone_rows] == [1, 2, 3, 4]
        np.testing.assert_allclose([r["f"] for r in rows], [r["f"] for r in alone_rows],
                                   rtol=1e-4, atol=1e-7)
        assert sorted(os.listdir(os.path.join(seed_dir, "samples"))) == [
            "step_00000002.png", "step_00000004.png"]
        with open(os.path.join(seed_dir, "results.json")) as f:
            assert json.load(f)["steps"] == 4
    with pytest.raises(UserError, match="holds a run of 4 seeds.*seed_0"):
        open_run.load_config(str(tmp_path / "k4"))
    # All four seeds in one vmapped call, or a group of three and then one, or the seeds
    # split over 2 devices (each steps its two in turn) or over 4 (one seed each): the
    # same numbers.
    for name, at_once, devices in (("vmap", 4, 0), ("groups", 3, 0), ("split2", 1, 2),
                                   ("split4", 0, 4)):
        other = tiny_config(penalty="none", num_seeds=4)
        other.seed, other.train.seeds_at_once, other.parallel.num_devices = 10, at_once, devices
        got = train.run(other, str(tmp_path / name), source=random_images())
        if devices:
            assert len(got.runs.step.sharding.device_set) == devices
        for k in range(4):
            _close(_row(state, k), _row(got, k))


def _poisoned(poison, batch_size=8, n_sub=3, num_examples=1000, steps=4, seeds=()):
    """Images where the examples seed s reads at loop index t are NaN, for (s, t) in
    `poison`, and no example any of `seeds` reads at another of the first `steps` steps."""
    data = np.random.default_rng(1).uniform(-1, 1, (num_examples, 8, 8, 1)).astype(np.float32)

    def rows(seed, step):
        return set(images.example_indices(num_examples, step, n_sub, batch_size=batch_size,
                                          seed=seed).ravel().tolist())

    bad = set().union(*(rows(s, t) for s, t in poison))
    clean = set().union(*(rows(s, t) for s in seeds for t in range(steps)
                          if (s, t) not in poison))
    data[sorted(bad - clean)] = np.nan
    return images.ImageSource("poisoned", num_examples, (8, 8, 1), lambda idx: data[idx])


def test_a_seed_driven_to_nan_stops_alone_and_every_seed_diverged_exits_3(tmp_path):
    config = tiny_config(penalty="none", num_seeds=3, checkpoint_every=1)
    workdir = str(tmp_path / "k3")
    # Seed 1's batches of loop index 2 feed its update 3.
    state = train.run(config, workdir, source=_poisoned([(1, 2)], seeds=range(3)))
    steps = np.asarray(state.runs.step)
    assert steps.tolist() == [4, 2, 4]  # seed 1 frozen after update 2, the others on
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(_params(state.runs)))
    seed1 = train_seeds.seed_dir(workdir, 1)
    rows = outputs.read_metrics(seed1)
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1] == {"step": 3, "diverged": 1}
    with open(os.path.join(seed1, "results.json")) as f:
        diverged = json.load(f)["diverged"]
    assert diverged["step"] == 3 and diverged["what"] == "loss"
    assert "step 2 in" in diverged["last_good_checkpoint"]
    assert sorted(os.listdir(os.path.join(seed1, "checkpoints"))) == ["1", "2"]
    # Its frozen row is its last good state.
    exp = train_config.build(train_config.seed_config(config, 1), source=random_images())
    _close(_params(open_run.restore_state(train_config.seed_config(config, 1), exp, seed1)),
           _row(state, 1))
    for k in (0, 2):
        assert [r["step"] for r in outputs.read_metrics(
            train_seeds.seed_dir(workdir, k))] == [1, 2, 3, 4]
    with open(os.path.join(workdir, "results.json")) as f:
        assert [s["status"] for s in json.load(f)["seeds"]] == ["done", "diverged", "done"]
    with pytest.raises(FloatingPointError, match=r"Every seed diverged \(seed 0: loss at step 3; "
                       r"seed 1: loss at step 3\)"):
        train.run(tiny_config(penalty="none", num_seeds=2), str(tmp_path / "all"),
                  source=_poisoned([(0, 2), (1, 2)], seeds=range(2)))


def test_resume_after_sigterm_equals_the_uninterrupted_run(tmp_path):
    # Two seeds on two devices: the seed axis split, each seed's arrays on one device.
    config = tiny_config(penalty="none", num_seeds=2)
    config.parallel.num_devices = 2
    full = train.run(config, str(tmp_path / "full"), source=random_images())

    with pytest.raises(signals.Stopped, match="saved checkpoint step 2") as stopped:
        train.run(config, str(tmp_path / "resumed"), source=random_images(),
                  eval_hooks=[sigterm_after(2)])
    assert stopped.value.exit_code == 143 and "marked partial" in str(stopped.value)
    for k in range(2):  # what a finished run leaves, marked partial
        seed = tmp_path / "resumed" / f"seed_{k}"
        results = json.loads((seed / "results.json").read_text())
        assert results["partial"] is True and results["stopped_by"] == "SIGTERM"
        assert results["steps"] == 2 and (seed / "loss_curves.png").exists()
        assert os.listdir(seed / "samples") == ["step_00000002.png"]
    outcome = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert outcome["partial"] is True and [s["status"] for s in outcome["seeds"]] == [
        "stopped", "stopped"]
    resumed = train.run(config, str(tmp_path / "resumed"), source=random_images())
    assert json.loads((tmp_path / "resumed" / "results.json").read_text())["partial"] is False
    assert np.asarray(resumed.runs.step).tolist() == [4, 4]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 _params(full.runs), _params(resumed.runs))
    for k in range(2):
        a = outputs.read_metrics(train_seeds.seed_dir(str(tmp_path / "full"), k))
        b = outputs.read_metrics(train_seeds.seed_dir(str(tmp_path / "resumed"), k))
        assert [r["step"] for r in b] == [1, 2, 3, 4]
        np.testing.assert_allclose([r["f"] for r in a], [r["f"] for r in b], rtol=1e-5)
    # Another number of seeds is another run; a single run does not take its workdir.
    more = tiny_config(penalty="none", num_seeds=3)
    with pytest.raises(UserError, match="train.num_seeds: 2 -> 3"):
        train.run(more, str(tmp_path / "resumed"), source=random_images())
    with pytest.raises(UserError, match="holds a run of several seeds"):
        train.run(tiny_config(penalty="none"), str(tmp_path / "resumed"),
                  source=random_images())


@pytest.mark.parametrize("change, words", [
    ({"train.num_seeds": 0}, "num_seeds=0 must be a positive integer"),
    ({"train.seeds_at_once": -1}, "seeds_at_once=-1 must be an integer >= 0"),
    ({"train.seeds_at_once": True}, "seeds_at_once=True must be an integer >= 0"),
    ({"train.num_seeds": 2, "parallel.distributed": True}, "runs in one process"),
    ({"train.num_seeds": 2, "train.keep_checkpoints": 1}, "keep_checkpoints must be at least 2"),
    ({"train.num_seeds": 2, "train.budget.seconds": 60.0}, "budget.seconds cannot stop"),
])
def test_seed_options_that_cannot_work_fail_in_one_line(tmp_path, change, words):
    config = tiny_config()
    for path, value in change.items():
        section, *rest = path.split(".")
        node = config[section]
        for key in rest[:-1]:
            node = node[key]
        node[rest[-1]] = value
    with pytest.raises(UserError, match=words) as err:
        train_config.check_config(config)
    assert "\n" not in str(err.value)


def test_more_seeds_than_the_memory_holds_fail_in_one_line():
    """Refused by the runner's check (data not opened), not after building 10**12 configs."""
    config = tiny_config(num_seeds=10**12)
    with pytest.raises(UserError, match=r"num_seeds=1000000000000: one step's batches need "
                                        r"[\d.]+ PB, more than the") as err:
        train_config.check(config, data=False)
    assert "\n" not in str(err.value)
    train_config.check(tiny_config(num_seeds=2), data=False)  # a number that fits passes


@pytest.mark.slow  # compiles ACGD seven times: ~3 min on a 2-core CPU; .ci/run runs it after the default suite
def test_acgd_seeds_solve_their_own_systems(tmp_path):
    """Under vmap the solver's while_loop runs until the slowest seed converges; each
    seed's iterations and result are still its own."""
    config = tiny_config(optimizer="acgd", num_seeds=2)
    config.train.seeds_at_once = 2
    state = train.run(config, str(tmp_path / "k2"), source=random_images())
    for k in range(2):
        alone = train_config.seed_config(config, k)
        one = train.run(alone, str(tmp_path / f"alone{k}"), source=random_images())
        _close(_params(one), _row(state, k))
        iterations = [[r["solver_iterations"] for r in outputs.read_metrics(d)]
                      for d in (train_seeds.seed_dir(str(tmp_path / "k2"), k),
                                str(tmp_path / f"alone{k}"))]
        assert iterations[0] == iterations[1]
    # The alternating choice of system enters once: one seed vmapped costs what it
    # costs alone (with a flag per seed, the cond would solve both systems).
    exp = train_config.build(config, source=random_images())
    mesh = parallel.make_mesh(1)
    alone, abstract = train_step.create_state(exp, 0, mesh)
    batch = next(loader.device_batches(loader.step_batches(
        exp.source, 0, 1, exp.n_sub, batch_size=8, seed=0), mesh))
    seeds, _ = seeds_step.create_seeds(exp, [0], mesh)
    stacked = next(loader.device_batches(loader.seeds_step_batches(
        exp.source, 0, 1, exp.n_sub, batch_size=8, seeds=[0]), mesh, split_axis=0))
    assert seeds_step.flags_agree(seeds)

    def flops(jitted, *args):
        analysis = jitted.lower(*args).compile().cost_analysis()
        return (analysis[0] if isinstance(analysis, (list, tuple)) else analysis)["flops"]

    one = flops(train_step.jit_train_step(exp, mesh, abstract), alone, batch)
    shared = flops(seeds_step.jit_seeds_step(exp, 1, mesh, share_flags=True), seeds, stacked)
    per_seed = flops(seeds_step.jit_seeds_step(exp, 1, mesh), seeds, stacked)
    assert shared < 1.05 * one < per_seed
    # One seed at a time is not vmapped: its cond is a cond, with or without shared flags.
    for share in (False, True):
        mapped = seeds_step.jit_seeds_step(exp, 1, mesh, share_flags=share, at_once=1)
        assert flops(mapped, seeds, stacked) < 1.05 * one
