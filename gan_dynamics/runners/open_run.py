"""Open a saved image run: its config, its checkpoints and the state at a step.

Everything that scores or inspects a run after the fact (`image_eval.evaluate_checkpoint`,
experiments/diagnose.py, studies) opens it here, so they share one reading of a workdir:
the config is the run's `config.json` (or the experiment file it was started with), the
newest checkpoint is the newest readable one (damaged ones are moved aside with a
message, `checkpoints.Checkpoints.restore_latest`), and step 0 is re-created from the
config's seed when no checkpoint holds it (initialisation is a deterministic function of
the seed, `train_step.init_state`).
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import NamedTuple, Optional

import jax
import ml_collections

from gan_dynamics import checkpoints, parallel
from gan_dynamics.errors import UserError
from gan_dynamics.runners.train_config import (
    Experiment,
    build,
    build_models,
    build_optimizer,
    build_penalty,
)
from gan_dynamics.runners.train_step import TrainState, create_state, init_state


class OpenedRun(NamedTuple):
    """A saved run ready to score or inspect."""

    config: ml_collections.ConfigDict
    exp: Experiment
    step: int  # the generator steps the state has taken
    state: TrainState


def load_config_file(config_path: str) -> ml_collections.ConfigDict:
    """`get_config()` of an experiment file; UserError if it is missing or fails."""
    if not os.path.isfile(config_path):
        raise UserError(f"--config={config_path} does not exist; pass the experiment "
                        "file the run was started with (experiments/<name>.py).")
    spec = importlib.util.spec_from_file_location("experiment_config", config_path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.get_config()
    except Exception as err:  # the config file's own error: user-fixable
        raise UserError(f"Could not load config file {config_path}: "
                        f"{type(err).__name__}: {err}") from err


# Where the other runners leave their scores ({w}: the workdir), for the message that
# sends a user there instead of to an image run's tools.
_RESULTS_OF = {
    "synthetic": "its scores (final squared parameter error and W2² against a random "
                 "generator's) are in {w}/results.json, over time in {w}/metrics.npz and "
                 "drawn in {w}/snapshots.png",
    "sweep": "its scores are in {w}/summary.json; draw them with python "
             "experiments/plots.py --workdir={w}",
    "toy_game": "its results are in {w}/results.json, drawn in {w}/distance.png",
    "mix_gaussians": "its scores are in {w}/results.json, drawn in {w}/mix_gaussians.png",
}


def saved_runner(workdir: str) -> Optional[str]:
    """The runner of the run in `workdir`, from the config its results.json or
    summary.json hold (the runners other than "image" save no config.json); None if
    neither names one."""
    for name in ("results.json", "summary.json"):
        try:
            with open(os.path.join(workdir, name)) as f:
                runner = json.load(f).get("config", {}).get("runner")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(runner, str):
            return runner
    return None


def not_an_image_run(workdir: str, runner: str) -> UserError:
    """The error for a tool of image runs pointed at another runner's workdir."""
    where = _RESULTS_OF.get(runner, "see the files it wrote there").format(w=workdir)
    return UserError(f"{workdir} holds a {runner!r} run, not an image run: only image runs "
                     f"have a generator's checkpoints to score or inspect; {where}.")


def load_config(workdir: str, config: Optional[ml_collections.ConfigDict] = None,
                config_path: str = "") -> ml_collections.ConfigDict:
    """The run's config: `config`, else the experiment file `config_path`, else the
    `workdir/config.json` the run saved. UserError when none is usable or the run is not
    an image run (naming where that run's results are)."""
    if config is None and config_path:
        config = load_config_file(config_path)
    if config is None:
        saved = checkpoints.read_config(workdir)
        if saved is None:
            runner = saved_runner(workdir)
            if runner is not None and runner != "image":
                raise not_an_image_run(workdir, runner)
            raise UserError(f"{workdir} has no config.json; pass the run's config file "
                            "with --config=experiments/<experiment>.py.")
        config = ml_collections.ConfigDict(saved)
    if config.get("runner", "image") != "image":
        raise not_an_image_run(workdir, config.runner)
    num_seeds = config.get("train", {}).get("num_seeds", 1)
    if num_seeds > 1:
        raise UserError(f"{workdir} holds a run of {num_seeds} seeds; each is a run of its "
                        f"own: pass --workdir={os.path.join(workdir, 'seed_0')} (up to "
                        f"seed_{num_seeds - 1}).")
    return config


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps of the checkpoints in `workdir/checkpoints` (ascending)."""
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        return []
    return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def abstract_state(config: ml_collections.ConfigDict) -> TrainState:
    """The shapes and dtypes of the state `config` trains, from its models and optimizer
    alone: no data is opened and nothing is compiled."""
    optimizer, n_sub = build_optimizer(config)
    generator, discriminator, z_dim, image_shape = build_models(config)
    exp = Experiment(generator, discriminator, z_dim, image_shape, optimizer, n_sub, None,
                     config.loss.name, build_penalty(config))
    return jax.eval_shape(lambda key: init_state(exp, key), jax.random.key(0))


def check_fits(config: ml_collections.ConfigDict, workdir: str,
               step: Optional[int] = None) -> None:
    """UserError in one line when checkpoint `step` (default: the newest) of `workdir`
    does not fit `config`: the first array that differs, with both shapes, and the
    trajectory fields in which the run's config.json differs; found from the checkpoint's
    metadata and `abstract_state`, before anything is built."""
    steps = checkpoint_steps(workdir)
    target = steps[-1] if step is None and steps else step
    if target not in steps:
        return
    problem = checkpoints.fit_problem(os.path.join(checkpoint_dir(workdir), str(target)),
                                      abstract_state(config))
    if problem is None:
        return
    saved = checkpoints.read_config(workdir)
    changes = [c for c in checkpoints.trajectory_changes(saved, json.loads(json.dumps(
        config.to_dict(), default=str))) if c.startswith(("model.", "optimizer."))
               ] if saved is not None else []  # the fields that shape the state
    more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
    differs = (f" (it differs from the run's config.json in {'; '.join(changes[:3])}{more})"
               if changes else "")
    raise UserError(f"Checkpoint step {target} of {workdir} does not fit this config"
                    f"{differs}: {problem}. Pass the config the run was started with.")


def restore_state(config: ml_collections.ConfigDict, exp: Experiment, workdir: str,
                  step: Optional[int] = None,
                  mesh: Optional[jax.sharding.Mesh] = None) -> TrainState:
    """The TrainState of checkpoint `step` of `workdir` (default: the newest readable);
    step 0 is re-created from the seed when no checkpoint holds it.

    `mesh`: where the state lives (default: the devices of `config.parallel`).
    """
    mesh = mesh or parallel.make_mesh(int(config.parallel.num_devices))
    initial, abstract = create_state(exp, int(config.seed), mesh)
    steps = checkpoint_steps(workdir)
    if step == 0 and 0 not in steps:
        return initial
    if not os.path.isdir(checkpoint_dir(workdir)):
        raise UserError(f"{workdir} has no checkpoints/ directory: nothing to open. "
                        "Train first (python experiments/run.py --config=... "
                        f"--workdir={workdir}).")
    if not steps:
        raise UserError(f"{checkpoint_dir(workdir)} holds no checkpoint; train first.")
    ckpt = checkpoints.Checkpoints(workdir, int(config.train.keep_checkpoints))
    try:
        if step is not None:
            return ckpt.restore(step, abstract)
        state = ckpt.restore_latest(abstract)
        if state is None:
            raise UserError(f"No readable checkpoint in {checkpoint_dir(workdir)}.")
        return state
    finally:
        ckpt.close()


def open_run(workdir: str, step: Optional[int] = None,
             config: Optional[ml_collections.ConfigDict] = None, config_path: str = "",
             mesh: Optional[jax.sharding.Mesh] = None) -> OpenedRun:
    """The config, experiment and state at `step` (default: the newest) of a saved run."""
    if not os.path.isdir(workdir):
        raise UserError(f"--workdir={workdir} is not a directory; pass a run's workdir.")
    config = load_config(workdir, config, config_path)
    check_fits(config, workdir, step)
    exp = build(config)
    state = restore_state(config, exp, workdir, step, mesh)
    return OpenedRun(config, exp, int(state.step), state)
