"""The pieces of an image run (`runners/train*.py`) that its diagnostics need.

- `fixed_game_fn`: `state -> Game`, the run's GAN game on one fixed batch, latents and
  penalty key, with the state's batch statistics (`runners.train_step.step_game`), so
  that every checkpoint is measured on the same data.
- `step_sizes_fn`: the step sizes η_x, η_y that CGD (the learning rates) or ACGD (its
  RMSProp-like per-coordinate sizes from the optimizer state) apply at a state, and the
  system (x or y) its next step solves; None for other optimizers.
- `load_config`, `checkpoint_steps`, `restore_state`: a run's config (`config.json` in the
  workdir, or an experiment file), its checkpoints (Orbax) and the state at a step. Step
  0 is re-created from the config's seed when no checkpoint holds it: initialisation is
  a deterministic function of the seed (`runners.train_step.init_state`).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_dynamics.errors import UserError
from gan_dynamics.game import Game
from gan_dynamics.optimizers.cgd import ACGDState, CGDState

# fold_in constant of the diagnostics' latents and penalty key (apart from training keys).
_DIAGNOSTICS_KEY = 0xD1A6


def fixed_batch(exp: Any, config: ml_collections.ConfigDict, batch_size: int = 0,
                batch_step: int = 0) -> jax.Array:
    """The real images of step `batch_step` of the run's data order: (batch, H, W, C)."""
    from gan_dynamics.data import images

    size = int(batch_size or config.data.batch_size)
    return jnp.asarray(images.batch_at(exp.source, batch_step, batch_size=size,
                                       seed=int(config.seed), process_index=0,
                                       process_count=1))


def fixed_game_fn(exp: Any, batch: jax.Array, seed: int) -> Callable[[Any], Game]:
    """`state -> Game` on `batch`, with latents and penalty key fixed by `seed`."""
    from gan_dynamics.runners.train_step import step_game

    key = jax.random.fold_in(jax.random.key(seed), _DIAGNOSTICS_KEY)
    batches = batch[None]

    def game_fn(state):
        # one batch: the game without substeps (diagnostics use the step's first game)
        return step_game(exp._replace(n_sub=1), state, batches, key)

    return game_fn


def step_sizes_fn(config: ml_collections.ConfigDict
                  ) -> Callable[[Any], tuple[Any, Any, str]] | None:
    """`state -> (η_x, η_y, system)` for CGD and ACGD runs; None for other optimizers."""
    opt = config.optimizer
    name = opt.get("name")
    if name == "cgd":
        solve = opt.get("solve", "x")

        def cgd_sizes(state):
            system = _next_system(state.opt_state, solve)
            return (jnp.asarray(opt.get("lr_x", 0.01), jnp.float32),
                    jnp.asarray(opt.get("lr_y", 0.01), jnp.float32), system)

        return cgd_sizes
    if name == "acgd":
        lr_x, lr_y = float(opt.get("lr_x", 1e-3)), float(opt.get("lr_y", 1e-3))
        beta, eps = float(opt.get("beta", 0.99)), float(opt.get("eps", 1e-5))
        solve = opt.get("solve", "alternate")

        def acgd_sizes(state):
            s: ACGDState = state.opt_state
            count = max(int(s.count), 1)  # a fresh state: the first step's sizes
            correction = float(np.sqrt(1 - beta**count))
            size = lambda lr, nu: jax.tree.map(
                lambda n: (lr * correction / (jnp.sqrt(n) + eps)).astype(n.dtype), nu)
            return size(lr_x, s.nu_x), size(lr_y, s.nu_y), _next_system(s.solver, solve)

        return acgd_sizes
    return None


def _next_system(opt_state: Any, solve: str) -> str:
    if solve in ("x", "y"):
        return solve
    if isinstance(opt_state, CGDState):
        return "y" if bool(opt_state.solve_y) else "x"
    return "x"


# ------------------------------------------------------------------ runs on disk


def load_config(workdir: str, config_path: str = "") -> ml_collections.ConfigDict:
    """The run's config: `config_path` (an experiment file) if given, else
    `workdir/config.json`. UserError when neither is usable."""
    if config_path:
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
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist: pass --config=experiments/<name>.py, the "
                        "experiment file the run was started with.")
    with open(path) as f:
        try:
            return ml_collections.ConfigDict(json.load(f))
        except json.JSONDecodeError as err:
            raise UserError(f"{path} is not valid JSON ({err}); pass --config= instead.") from err


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps of the checkpoints in `workdir/checkpoints` (ascending)."""
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        return []
    return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def restore_state(workdir: str, step: int, exp: Any, config: ml_collections.ConfigDict):
    """The TrainState at `step`: its checkpoint, or the initial state for step 0."""
    import orbax.checkpoint as ocp

    from gan_dynamics import parallel
    from gan_dynamics.runners.train_step import create_state

    mesh = parallel.make_mesh(1)
    initial, abstract = create_state(exp, int(config.seed), mesh)
    steps = checkpoint_steps(workdir)
    if step == 0 and 0 not in steps:
        return initial
    if step not in steps:
        raise UserError(f"No checkpoint at step {step} in {checkpoint_dir(workdir)}; "
                        f"it holds steps {steps or 'none'} (and step 0 is re-created from "
                        "the seed).")
    manager = ocp.CheckpointManager(checkpoint_dir(workdir))
    try:
        return manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except ValueError as err:
        raise UserError(f"The checkpoint at step {step} does not fit the config (model, "
                        f"optimizer or loss changed?): pass the --config the run used. "
                        f"Orbax said: {err}") from err
    finally:
        manager.close()
