"""Diagnostics of an image run: the run's game at a state, and the periodic hook.

- `fixed_game_fn`: `state -> Game`, the run's GAN game on one fixed batch, latents and
  penalty key, with the state's batch statistics (`train_step.step_game`), so that every
  checkpoint is measured on the same data (`fixed_batch`).
- `step_sizes_fn`: the step sizes η_x, η_y that the next CGD step (the learning rates)
  or ACGD step (its RMSProp-like per-coordinate sizes, from the optimizer state and the
  gradients at the state: `optimizers.cgd.acgd_step_sizes`) solves with on a game, and
  the system (x or y) it solves; None for other optimizers.
- `make_eval_hooks(config, exp)`: periodic diagnostics inside image training.

Reads `config.diagnostics` (off by default: `every = 0`). The image loop calls each hook
every `config.train.eval_every` steps; this one computes at the steps that are also
multiples of `diagnostics.every` the field's eigenvalues, each player's extreme Hessian
eigenvalues, the norms of J's symmetric and antisymmetric parts and the CGD/ACGD
system's condition number (`report.PointDiagnostics`) on one fixed batch, and returns
`report.scalars`: `diag/max_abs_eig`, `diag/max_real_eig`, `diag/hess_x_min`, ...
(logged as `eval/diag/...`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from gan_dynamics import progress
from gan_dynamics.checks import is_int_at_least
from gan_dynamics.data import images
from gan_dynamics.diagnostics import report
from gan_dynamics.errors import UserError
from gan_dynamics.game import Game, gradients
from gan_dynamics.optimizers.cgd import ACGDState, CGDState, acgd_step_sizes
from gan_dynamics.runners.train_config import diagnostics_section
from gan_dynamics.runners.train_step import step_game

EvalHook = Callable[[int, Any, Callable[[jax.Array], jax.Array]], dict[str, float]]

# fold_in constant of the diagnostics' latents and penalty key (apart from training keys).
_DIAGNOSTICS_KEY = 0xD1A6


def fixed_batch(exp: Any, config: ml_collections.ConfigDict, batch_size: int = 0,
                batch_step: int = 0) -> jax.Array:
    """The real images of step `batch_step` of the run's data order: (batch, H, W, C)."""
    size = int(batch_size or config.data.batch_size)
    return jnp.asarray(images.batch_at(exp.source, batch_step, batch_size=size,
                                       seed=int(config.seed), process_index=0,
                                       process_count=1))


def fixed_game_fn(exp: Any, batch: jax.Array, seed: int) -> Callable[[Any], Game]:
    """`state -> Game` on `batch`, with latents and penalty key fixed by `seed`."""
    key = jax.random.fold_in(jax.random.key(seed), _DIAGNOSTICS_KEY)
    batches = batch[None]

    def game_fn(state):
        # one batch: the game without substeps (diagnostics use the step's first game)
        return step_game(exp._replace(n_sub=1), state, batches, key)

    return game_fn


def step_sizes_fn(config: ml_collections.ConfigDict, game_fn: Callable[[Any], Game]
                  ) -> Callable[[Any], tuple[Any, Any, str]] | None:
    """`state -> (η_x, η_y, system)` of the next update on `game_fn(state)` for CGD and
    ACGD runs; None for other optimizers."""
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

        @jax.jit
        def sizes(state):
            grads = gradients(game_fn(state), state.params_x, state.params_y)
            return acgd_step_sizes(state.opt_state, grads.grad_x, grads.grad_y, lr_x, lr_y,
                                   beta, eps)[:2]

        def acgd_sizes(state):
            s: ACGDState = state.opt_state
            return (*sizes(state), _next_system(s.solver, solve))

        return acgd_sizes
    return None


def _next_system(opt_state: Any, solve: str) -> str:
    if solve in ("x", "y"):
        return solve
    if isinstance(opt_state, CGDState):
        return "y" if bool(opt_state.solve_y) else "x"
    return "x"


def options_from_section(section: ml_collections.ConfigDict) -> report.Options:
    """`report.Options` from a `config.diagnostics` section; UserError on unknown keys."""
    known = diagnostics_section()
    extra = sorted(set(section.keys()) - set(known.keys()))
    if extra:
        raise UserError(f"Unknown key(s) {extra} in config.diagnostics; known keys: "
                        f"{sorted(known.keys())}.")
    s = {**known.to_dict(), **dict(section)}
    which = tuple(w.strip() for w in str(s["which"]).split(",") if w.strip())
    options = report.Options(
        k=s["k"], which=which, tol=float(s["tol"]), max_restarts=int(s["max_restarts"]),
        hessian=bool(s["hessian"]), decomposition=bool(s["decomposition"]),
        cgd_system=bool(s["cgd_system"]), dense_max=0, path_points=0)
    try:
        report.check_options(options)
    except UserError as err:
        raise UserError(f"config.diagnostics: {err}") from err
    return options


def check_section(config: ml_collections.ConfigDict) -> int:
    """`config.diagnostics.every` (0: off, or no section), after checking the section
    when it is on; UserError naming the key."""
    section = config.get("diagnostics", None)
    every = 0 if section is None else section.get("every", 0)
    if not is_int_at_least(every, 0):
        raise UserError(f"config.diagnostics.every={every!r} must be an integer >= 0 (0: off).")
    if every:
        options_from_section(section)
        size = section.get("batch_size", 0)
        if not is_int_at_least(size, 0):
            raise UserError(f"config.diagnostics.batch_size={size!r} must be an integer >= 0 "
                            "(0: config.data.batch_size).")
    return every


def make_eval_hooks(config: ml_collections.ConfigDict, exp: Any) -> list[EvalHook]:
    """The diagnostics hook of `config.diagnostics`, or none when it is off or absent."""
    every = check_section(config)
    if not every:
        return []
    section = config.diagnostics
    options = options_from_section(section)
    batch = fixed_batch(exp, config, int(section.get("batch_size", 0)))
    game_fn = fixed_game_fn(exp, batch, int(config.seed))
    diagnostics = report.PointDiagnostics(game_fn, options, step_sizes_fn(config, game_fn))

    def hook(step: int, state: Any, generate: Callable[[jax.Array], jax.Array]):
        del generate
        if step % every:
            return {}
        # Each part compiles its programs on first use: say which part the time goes to.
        with progress.step(f"Diagnostics of step {step}"):
            result = diagnostics.compute(state,
                                         progress=lambda part: progress.note(f"  {part} ..."))
        return report.scalars(result)

    return [hook]
