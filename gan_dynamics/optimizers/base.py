"""The game-optimizer interface and what the optimizers of this package share.

A game optimizer is a pair of pure functions, shaped like optax's `GradientTransformation`
but over two players (docs/design.md Sec. 3):

    init(params_x, params_y) -> state
    update(game, params_x, params_y, state) -> (params_x, params_y, state, info)

`state` is a NamedTuple pytree; `info` a dict of arrays (diagnostics: losses, gradient,
update and parameter norms, solver iterations and residuals, gradient-equivalent cost).
Hyperparameters may be traced arrays, so that `jax.vmap` over learning rates compiles
once; factories therefore never branch in Python on a hyperparameter's value.

Projections. Every factory takes `project_x` and `project_y`: optional maps
`params -> params` applied to a player's parameters after *every* update of that player
inside a step (AltGD: after each critic step and after the generator step;
extragradient: after both half-steps; the others after their one update), so that a
constraint set holds at every point the next gradient is taken. WGAN's weight clipping
(Arjovsky et al. 2017, Alg. 1) is one: `penalties.weight_clip(c)`. The update norms in
`info` are then of the step actually taken, projection included.

This module also holds what several optimizers share: the per-player optax states and
transforms of SimGD and AltGD (`PlayerStates`, `player_transform`), the checks on scalar
hyperparameters (`scalar_hyperparameter`), the gradient field as a differentiable
function (`gradient_field`; consensus optimisation and SGA differentiate it), and the
plain step `z - η d` along a direction (`gradient_step`).

Cost convention (`info["grad_evals"]`): one gradient evaluation of both players' losses
counts 1, one gradient of a single player's loss also counts 1 (in a GAN it needs the same
forward and reverse pass), and each mixed second-derivative product (one JVP or its
transpose through the gradient) counts 1. It is the "gradient-equivalent" column of every results table.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_dynamics.game import Game, Params, gradients
from gan_dynamics.optimizers.transforms import make_transform

Info = dict[str, Any]
InitFn = Callable[[Params, Params], Any]
UpdateFn = Callable[[Game, Params, Params, Any], tuple[Params, Params, Any, Info]]
# params -> params: a player's parameters mapped onto its constraint set.
Projection = Callable[[Params], Params]

_SPEC_EXAMPLE = "{'name': 'adam', 'lr': 1e-4, 'b1': 0.5, 'b2': 0.9}"


class GameOptimizer(NamedTuple):
    """An optimizer for a two-player game: a pure (init, update) pair.

    `substeps` is how many fresh batches one update consumes: it evaluates
    `game.at_substep(i)` for i = 0 .. substeps-1 (AltGD: n_disc + 1; extragradient: 2),
    so a training loop knows how much data to hand each step.
    """

    init: InitFn
    update: UpdateFn
    substeps: int = 1


class PlayerStates(NamedTuple):
    """The optax states of the two players' transforms."""

    x: optax.OptState
    y: optax.OptState


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


# ------------------------------------------------------------------------ projections


def check_projection(optimizer: str, name: str, project: Optional[Projection]) -> None:
    """Fail early unless `project` is None or callable."""
    if project is not None and not callable(project):
        raise ValueError(
            f"{optimizer}: {name} must be None or a function params -> params (e.g. "
            f"penalties.weight_clip(0.01)), got {project!r}."
        )


def project(projection: Optional[Projection], params: Params) -> Params:
    """`projection(params)`, or `params` unchanged when there is no projection."""
    return params if projection is None else projection(params)


def projected_step(
    projection: Optional[Projection], params: Params, new_params: Params, delta: Params
) -> tuple[Params, Params]:
    """(projected new parameters, the step actually taken from `params`).

    Without a projection the step is `delta` itself (no subtraction, no rounding).
    """
    if projection is None:
        return new_params, delta
    projected = projection(new_params)
    return projected, jax.tree.map(jnp.subtract, projected, params)


# ------------------------------------------------------------------ hyperparameters


def player_transform(
    optimizer: str, argument: str, spec: Optional[Mapping[str, Any]]
) -> optax.GradientTransformation:
    """The optax transform a spec dict names; fails if the spec is missing or malformed.

    There is no default: a hidden learning rate would silently decide an experiment.
    """
    if spec is None:
        raise ValueError(
            f"{optimizer} needs {argument}, the player's optax transform spec, "
            f"e.g. {argument}={_SPEC_EXAMPLE} or {{'name': 'sgd', 'lr': 0.01}}."
        )
    # Duck-typed so that a config's ConfigDict works as well as a dict.
    if not callable(getattr(spec, "keys", None)):
        raise ValueError(
            f"{optimizer}: {argument} must be a dict spec such as {_SPEC_EXAMPLE}, "
            f"got {spec!r}."
        )
    return make_transform(spec)


def scalar_hyperparameter(optimizer: str, name: str, value: Any) -> jax.Array:
    """`value` as a real scalar array; it may be traced (vmapped learning rates).

    Only its type and shape are checked, never its value, so that a traced value passes.
    """
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        raise ValueError(f"{optimizer}: {name} must be a real scalar, got {value!r}.")
    try:
        array = jnp.asarray(value)
    except TypeError as err:
        raise ValueError(f"{optimizer}: {name} must be a real scalar, got {value!r}.") from err
    if array.ndim != 0 or not jnp.issubdtype(array.dtype, jnp.number) or jnp.iscomplexobj(
        array
    ):
        raise ValueError(
            f"{optimizer}: {name} must be a real scalar, got shape {array.shape} and dtype "
            f"{array.dtype}; to sweep several values, jax.vmap over the optimizer's use."
        )
    return array


# ------------------------------------------------------------ first-order building blocks


def gradient_field(game: Game) -> Callable[[Params, Params], tuple[tuple[Params, Params], Any]]:
    """ξ: `(x, y) -> ((∇x f, ∇y g), (f, g, aux))`, differentiable with jvp/vjp/linearize.

    The Jacobian of ξ is the game Jacobian J = [[Dxx f, Dxy f], [Dyx g, Dyy g]] of
    Balduzzi et al. 2018 (Sec. 2); aux passes through as a constant.
    """

    def field(params_x, params_y):
        grads = gradients(game, params_x, params_y)
        return (grads.grad_x, grads.grad_y), (grads.f, grads.g, grads.aux)

    return field


def gradient_step(
    params_x: Params,
    params_y: Params,
    direction_x: Params,
    direction_y: Params,
    lr_x: jax.Array,
    lr_y: jax.Array,
    project_x: Optional[Projection] = None,
    project_y: Optional[Projection] = None,
) -> tuple[Params, Params, Params, Params]:
    """`P_x(x - lr_x d_x)`, `P_y(y - lr_y d_y)`, and the two steps taken (update norms)."""
    delta_x = jax.tree.map(lambda d: (-lr_x * d).astype(d.dtype), direction_x)
    delta_y = jax.tree.map(lambda d: (-lr_y * d).astype(d.dtype), direction_y)
    new_x, delta_x = projected_step(
        project_x, params_x, optax.apply_updates(params_x, delta_x), delta_x)
    new_y, delta_y = projected_step(
        project_y, params_y, optax.apply_updates(params_y, delta_y), delta_y)
    return new_x, new_y, delta_x, delta_y


def project_players(
    project_x: Optional[Projection],
    project_y: Optional[Projection],
    params_x: Params,
    params_y: Params,
    new_x: Params,
    new_y: Params,
    info: Info,
) -> tuple[Params, Params, Info]:
    """Project both players after an update whose `info` (`step_info`) was made without
    projections; a projected player's update and parameter norms are recomputed."""
    info = dict(info)
    for name, projection, old, new in (("x", project_x, params_x, new_x),
                                       ("y", project_y, params_y, new_y)):
        if projection is None:
            continue
        projected = projection(new)
        info[f"update_norm_{name}"] = tree_norm(jax.tree.map(jnp.subtract, projected, old))
        info[f"param_norm_{name}"] = tree_norm(projected)
        if name == "x":
            new_x = projected
        else:
            new_y = projected
    return new_x, new_y, info
