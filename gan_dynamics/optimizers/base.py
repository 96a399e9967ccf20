"""The game-optimizer interface shared by every optimizer in this package.

A game optimizer is a pair of pure functions, shaped like optax's `GradientTransformation`
but over two players (DESIGN.md Sec. 3):

    init(params_x, params_y) -> state
    update(game, params_x, params_y, state) -> (params_x, params_y, state, info)

`state` is a NamedTuple pytree; `info` a dict of arrays (diagnostics: losses, gradient,
update and parameter norms, solver iterations and residuals, gradient-equivalent cost).
Hyperparameters may be traced arrays, so that `jax.vmap` over learning rates compiles
once; factories therefore never branch in Python on a hyperparameter's value.

Cost convention (`info["grad_evals"]`): one gradient evaluation of both players' losses
counts 1, one gradient of a single player's loss also counts 1 (in a GAN it needs the same
forward and reverse pass), and each mixed second-derivative product (one JVP or its
transpose through the gradient) counts 1. It is the "gradient-equivalent" column of every results table.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gan_dynamics.game import Game, Params

Info = dict[str, Any]
InitFn = Callable[[Params, Params], Any]
UpdateFn = Callable[[Game, Params, Params, Any], tuple[Params, Params, Any, Info]]


class GameOptimizer(NamedTuple):
    """An optimizer for a two-player game: a pure (init, update) pair.

    `substeps` is how many fresh batches one update consumes: it evaluates
    `game.at_substep(i)` for i = 0 .. substeps-1 (AltGD: n_disc + 1; extragradient: 2),
    so a training loop knows how much data to hand each step.
    """

    init: InitFn
    update: UpdateFn
    substeps: int = 1


def tree_norm(tree: Any) -> jax.Array:
    """Euclidean norm of a pytree (0 for an empty tree)."""
    return optax.tree.norm(tree)


def step_info(
    f: jax.Array,
    g: jax.Array,
    grad_x: Params,
    grad_y: Params,
    delta_x: Params,
    delta_y: Params,
    params_x: Params,
    params_y: Params,
    grad_evals: jax.Array | float,
    aux: Any = None,
) -> Info:
    """The diagnostics every optimizer reports (norms are of the whole player's pytree)."""
    return {
        "f": f,
        "g": g,
        "grad_norm_x": tree_norm(grad_x),
        "grad_norm_y": tree_norm(grad_y),
        "update_norm_x": tree_norm(delta_x),
        "update_norm_y": tree_norm(delta_y),
        "param_norm_x": tree_norm(params_x),
        "param_norm_y": tree_norm(params_y),
        "grad_evals": jnp.asarray(grad_evals, jnp.float32),
        "aux": aux,
    }
