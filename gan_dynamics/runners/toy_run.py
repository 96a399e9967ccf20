"""Runner "toy_game": every configured optimizer on one toy game, as a results table.

`python experiments/run.py --config=experiments/bilinear.py --workdir=DIR` calls
`run(config, workdir)`. For each entry of `config.optimizers` the whole run is one
`lax.scan` over `config.steps` updates, compiled once (`simulate`). It prints a table
(final distance to equilibrium, observed per-step rate, gradient-equivalent cost, solver
iterations, divergence) and writes

- `WORKDIR/results.json`: `{"config": ..., "results": {entry name: numbers}}`;
- `WORKDIR/trajectories.npz`: per entry the distance after every step (`NAME/distance`),
  the cumulative cost (`NAME/grad_evals`) and, for games with one scalar per player,
  the path in the plane (`NAME/x`, `NAME/y`);
- `WORKDIR/distance.png` (distance to equilibrium, log scale, against the step or the
  cumulative gradient evaluations) and, with `config.plot_plane`,
  `WORKDIR/trajectories.png` (the paths in the (x, y) plane).

In both plots each optimizer has its own colour and each step size (lr_x, lr_y) its own
line style. The distance axis spans [smallest positive distance reached, 10 x the start
distance]; a run that leaves it upwards (diverges) ends there with a triangle at the
step it crossed the top.

Config fields (see experiments/bilinear.py for a complete one):
  game: ConfigDict with `name` (a key of `toy_games.PROBLEMS`) and its arguments.
  optimizers: ConfigDict, entry name -> hyperparameters for `optimizers.create`; the
    optional key `optimizer` names the optimizer (default: the entry name), so one
    optimizer can appear with several settings ("simgd_09_01", "simgd_01_09", ...);
    the optional key `game` overrides arguments of config.game for this entry only
    (the Dirac-GAN with an R1 penalty next to the one without).
  steps, seed (the start's key, used where the game's start is random), x64,
  plot_plane, plot_radius (half-width of the plane plot; 0: twice the start's norm),
  x_axis: "step" (default) or "grad_evals" (gradient-equivalents, the CGD paper's axis)
  for the distance plot.
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any, Iterable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

from gan_dynamics import optimizers, toy_games
from gan_dynamics.checks import one_of
from gan_dynamics.errors import UserError
from gan_dynamics.game import Params
from gan_dynamics.optimizers.base import GameOptimizer
from gan_dynamics.outputs import write_json

_REQUIRED = ("game", "optimizers", "steps", "seed", "x64", "plot_plane", "plot_radius")
X_AXES = ("step", "grad_evals")
# Line styles for the step sizes, in order of first appearance in config.optimizers.
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)),
               (0, (8, 2, 1, 2)))
# The distance axis ends this many start distances above the start.
_TOP_FACTOR = 10.0


def default_config() -> ml_collections.ConfigDict:
    """The fields every toy-game config sets; experiments/*.py fill `game` and `optimizers`."""
    config = ml_collections.ConfigDict()
    config.runner = "toy_game"
    config.game = ml_collections.ConfigDict()
    config.optimizers = ml_collections.ConfigDict()
    config.steps = 100
    config.seed = 0
    config.x64 = True
    config.plot_plane = False
    config.plot_radius = 0.0
    config.x_axis = "step"
    return config


def sgd_players(lr_x: float, lr_y: float) -> dict[str, dict[str, Any]]:
    """SimGD/AltGD hyperparameters: plain gradient steps with these step sizes."""
    return {"transform_x": {"name": "sgd", "lr": lr_x}, "transform_y": {"name": "sgd", "lr": lr_y}}


class Trajectory(NamedTuple):
    """One run of a game optimizer; leading axis = step (params and distance include the start)."""

    params_x: Params  # (steps + 1, ...)
    params_y: Params  # (steps + 1, ...)
    distance: jax.Array  # (steps + 1,)
    info: dict[str, jax.Array]  # (steps,) per key, the optimizer's info without aux


def simulate(
    problem: toy_games.ToyProblem,
    optimizer: GameOptimizer,
    params_x: Params,
    params_y: Params,
    steps: int,
) -> Trajectory:
    """`steps` updates of `optimizer` on `problem.game` from (x, y), as one lax.scan.

    Pure and jittable; learning rates inside `optimizer` may be traced, so vmapping this
    over seeds and hyperparameters compiles once.
    """
    game = problem.game

    def body(carry, _):
        px, py, state = carry
        px, py, state, info = optimizer.update(game, px, py, state)
        info = {k: v for k, v in info.items() if k != "aux"}
        return (px, py, state), (px, py, problem.distance(px, py), info)

    carry = (params_x, params_y, optimizer.init(params_x, params_y))
    _, (xs, ys, dist, info) = lax.scan(body, carry, None, length=steps)

    def prepend(start, path):
        return jax.tree.map(lambda s, p: jnp.concatenate([s[None], p]), start, path)

    distance = jnp.concatenate([problem.distance(params_x, params_y)[None], dist])
    return Trajectory(prepend(params_x, xs), prepend(params_y, ys), distance, info)


def summarize(trajectory: Trajectory) -> dict[str, Any]:
    """The numbers of a results table row, as Python scalars."""
    dist = np.asarray(trajectory.distance, np.float64)
    steps = dist.size - 1
    finite = np.isfinite(dist)
    half = steps // 2
    rate = float("nan")
    if finite[-1] and dist[half] > 0 and steps > half:
        # geometric mean of the per-step factor over the second half: the asymptotic rate
        # (0 when the run lands exactly on the equilibrium)
        rate = float((dist[-1] / dist[half]) ** (1.0 / (steps - half)))
    info = {k: np.asarray(v) for k, v in trajectory.info.items()}
    row = {
        "steps": steps,
        "initial_distance": float(dist[0]),
        "final_distance": float(dist[-1]),
        "min_distance": float(np.nanmin(dist)) if finite.any() else float("nan"),
        "rate_per_step": rate,
        "grad_evals": float(np.sum(info["grad_evals"])),
        "diverged": bool(not finite.all()),
        "first_nonfinite_step": int(np.argmin(finite)) if not finite.all() else None,
    }
    if "solver_iterations" in info:
        row["solver_iterations"] = int(np.sum(info["solver_iterations"]))
        row["solver_iterations_mean"] = float(np.mean(info["solver_iterations"]))
    if "solver_matvecs" in info:
        row["solver_matvecs"] = int(np.sum(info["solver_matvecs"]))
    if "solver_converged" in info:
        row["solver_converged_fraction"] = float(np.mean(info["solver_converged"]))
    return row


class Entry(NamedTuple):
    """One row of the results table: a problem and the optimizer run on it."""

    problem: toy_games.ToyProblem
    optimizer: GameOptimizer
    game_kwargs: dict[str, Any]  # config.game with this entry's overrides


def build_entries(config) -> dict[str, Entry]:
    """Every configured (problem, optimizer) pair; bad names or values fail before compiling."""
    base = _plain(config.game)
    entries = {}
    for entry, hyper in _plain(config.optimizers).items():
        name = hyper.pop("optimizer", entry)
        game_kwargs = {**base, **hyper.pop("game", {})}
        try:
            problem = toy_games.make(**game_kwargs)
            optimizer = optimizers.create(name, **hyper)
        except (ValueError, TypeError) as err:
            raise UserError(f"config.optimizers.{entry}: {err}") from err
        entries[entry] = Entry(problem, optimizer, game_kwargs)
    if not entries:
        raise UserError("config.optimizers is empty; add at least one optimizer entry.")
    return entries


def _plain(value):
    """ConfigDicts (and nested ones) to plain dicts, for optimizer factories."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def check_config(config) -> None:
    """Fail before compiling on a toy-game config that lacks fields or has bad values."""
    missing = [k for k in _REQUIRED if k not in config]
    if missing:
        raise UserError(f"Toy-game config lacks {missing}; see experiments/bilinear.py.")
    if isinstance(config.steps, bool) or not isinstance(config.steps, int) or config.steps < 1:
        raise UserError(f"config.steps={config.steps!r} must be a positive integer, e.g. 50.")
    if "name" not in config.game:
        raise UserError(f"config.game needs a `name`, one of {sorted(toy_games.PROBLEMS)}.")
    one_of("config.game.name", config.game.name, toy_games.PROBLEMS)
    if not config.plot_radius >= 0:
        raise UserError(f"config.plot_radius={config.plot_radius} must be >= 0 "
                        "(0: twice the start's distance from the equilibrium).")
    one_of("config.x_axis", config.get("x_axis", "step"), X_AXES)


def check(config, data: bool = True) -> None:
    """Runner "toy_game": schema, the game and every optimizer entry, without compiling."""
    del data  # toy games read no dataset
    try:
        check_config(config)
        build_entries(config)
    except (ValueError, TypeError) as err:
        raise err if isinstance(err, UserError) else UserError(str(err)) from err


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """A fixed-width table of the summaries, one row per optimizer entry.

    `solved` is the fraction of steps whose linear solve met its tolerance (CGD, ACGD).
    """
    header = (f"{'optimizer':<20} {'steps':>6} {'distance':>11} {'rate/step':>10} "
              f"{'grad evals':>10} {'solver it':>9} {'solved':>6} {'diverged':>8}")
    lines = [header, "-" * len(header)]
    for name, row in results.items():
        iters = row.get("solver_iterations")
        solved = row.get("solver_converged_fraction")
        lines.append(
            f"{name:<20} {row['steps']:>6d} {row['final_distance']:>11.5g} "
            f"{row['rate_per_step']:>10.6f} {row['grad_evals']:>10.0f} "
            f"{'-' if iters is None else iters:>9} "
            f"{'-' if solved is None else f'{solved:.3f}':>6} {str(row['diverged']):>8}"
        )
    return "\n".join(lines)


def _size(tree: Params) -> int:
    return sum(np.size(leaf) for leaf in jax.tree.leaves(tree))


def _is_plane(params_x: Params, params_y: Params) -> bool:
    return _size(params_x) == 1 and _size(params_y) == 1


def _path(stacked: Params) -> np.ndarray:
    """The one coordinate of a plane game's player at every step (numpy: no float32 cast)."""
    leaf = np.asarray(jax.tree.leaves(stacked)[0])
    return leaf.reshape(leaf.shape[0], -1)[:, 0]


def _step_sizes(hyper: dict[str, Any]) -> tuple[Any, Any]:
    """(lr_x, lr_y) of an optimizer entry: its `lr_*` or its optax transforms' `lr`."""

    def lr(player):
        if f"lr_{player}" in hyper:
            return hyper[f"lr_{player}"]
        transform = hyper.get(f"transform_{player}")
        return transform.get("lr") if isinstance(transform, dict) else None

    return lr("x"), lr("y")


def line_styles(config) -> dict[str, tuple[str, Any]]:
    """Entry name -> (colour, line style): a colour per optimizer, a style per step size.

    Colours follow the optimizer's place in `optimizers.NAMES`, so an optimizer has the
    same colour in every toy plot. Entries of one optimizer with equal step sizes (the
    Dirac-GAN with and without R1) take the next free style.
    """
    hypers = _plain(config.optimizers)
    sizes = list(dict.fromkeys(_step_sizes(h) for h in hypers.values()))
    styles, taken = {}, set()
    for entry, hyper in hypers.items():
        name = hyper.get("optimizer", entry)
        colour = f"C{optimizers.NAMES.index(name) % 10}" if name in optimizers.NAMES else "k"
        index = sizes.index(_step_sizes(hyper))
        while (name, index) in taken and index < len(sizes) + len(hypers):
            index += 1
        taken.add((name, index))
        styles[entry] = (colour, _LINESTYLES[index % len(_LINESTYLES)])
    return styles


def distance_limits(distances: Iterable[np.ndarray]) -> tuple[float, float]:
    """(bottom, top) of the log distance axis: the smallest positive finite distance any
    run reaches and 10 x the largest start distance, both finite and bottom < top."""
    distances = [np.asarray(d, np.float64) for d in distances]
    starts = [d[0] for d in distances if np.isfinite(d[0]) and d[0] > 0]
    top = _TOP_FACTOR * (max(starts) if starts else 1.0)
    reached = [d[np.isfinite(d) & (d > 0) & (d <= top)] for d in distances]
    reached = np.concatenate(reached) if reached else np.zeros(0)
    bottom = float(reached.min()) if reached.size else top / _TOP_FACTOR**2
    return min(bottom, top / _TOP_FACTOR) / 2, top


def exit_step(distance: np.ndarray, top: float) -> Optional[int]:
    """The first step at which a run is above `top` or not finite (None: it never is)."""
    outside = ~(np.isfinite(distance) & (distance <= top))
    return int(np.argmax(outside)) if outside.any() else None


def _x_values(trajectory: Trajectory, x_axis: str) -> np.ndarray:
    if x_axis == "grad_evals":
        evals = np.asarray(trajectory.info["grad_evals"], np.float64)
        return np.concatenate([[0.0], np.cumsum(evals)])
    return np.arange(np.asarray(trajectory.distance).shape[0])


def distance_figure(trajectories: dict[str, Trajectory], styles: dict[str, tuple[str, Any]],
                    x_axis: str = "step", title: str = ""):
    """The distance-to-equilibrium plot of `run` (a matplotlib Figure).

    A run that leaves the axis upwards is drawn to the top edge, then stops; a triangle
    marks the step (or the cumulative cost) at which it crossed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bottom, top = distance_limits(t.distance for t in trajectories.values())
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for name, traj in trajectories.items():
        colour, style = styles[name]
        dist = np.asarray(traj.distance, np.float64)
        xs = _x_values(traj, x_axis)
        leave = exit_step(dist, top)
        label = name
        if leave is not None:
            # draw the climb out of the frame (beyond `top`), then mark where it crossed
            xs, dist = xs[: leave + 1], np.where(np.arange(leave + 1) < leave,
                                                 dist[: leave + 1], _TOP_FACTOR * top)
            ax.plot([xs[-1]], [top], marker="^", ms=7, color=colour, mec="k", mew=0.5,
                    clip_on=False, zorder=5, linestyle="none")
            where = f"step {xs[-1]:.0f}" if x_axis == "step" else f"{xs[-1]:.0f} grad evals"
            label = f"{name} (left at {where})"
        ax.plot(xs, dist, color=colour, linestyle=style, lw=1.4, label=label)
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_xlabel("step" if x_axis == "step" else "gradient evaluations (gradient-equivalents)")
    ax.set_ylabel("distance to equilibrium")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def _plots(workdir: str, trajectories: dict[str, Trajectory], config) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = line_styles(config)
    written = [os.path.join(workdir, "distance.png")]
    fig = distance_figure(trajectories, styles, config.get("x_axis", "step"), config.game.name)
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    first = next(iter(trajectories.values()))
    start_x, start_y = jax.tree.map(lambda a: a[0], (first.params_x, first.params_y))
    if config.plot_plane and _is_plane(start_x, start_y):
        fig, ax = plt.subplots(figsize=(6.5, 5))
        radius = float(config.plot_radius)
        for name, traj in trajectories.items():
            colour, style = styles[name]
            ax.plot(_path(traj.params_x), _path(traj.params_y), color=colour,
                    linestyle=style, lw=1, label=name)
        ax.plot([0], [0], "k*", label="equilibrium")
        start = (float(_path(first.params_x)[0]), float(_path(first.params_y)[0]))
        ax.plot([start[0]], [start[1]], "ko", ms=4, label="start")
        if radius <= 0:
            radius = 2.0 * float(np.hypot(*start))
        ax.set_xlim(-radius, radius)
        ax.set_ylim(-radius, radius)
        ax.set_aspect("equal")
        ax.set_xlabel("x (generator)")
        ax.set_ylabel("y (discriminator)")
        ax.set_title(config.game.name)
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False)
        fig.tight_layout()
        written.append(os.path.join(workdir, "trajectories.png"))
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written


def simulate_entries(config) -> tuple[dict[str, dict[str, Any]], dict[str, Trajectory]]:
    """Every configured entry simulated: (table rows by entry, trajectories on the host)."""
    check_config(config)
    with jax.enable_x64(bool(config.x64)):
        entries = build_entries(config)
        results, trajectories = {}, {}
        for name, entry in entries.items():
            start = time.perf_counter()
            px, py = entry.problem.initial(jax.random.key(config.seed))
            sim = jax.jit(functools.partial(
                simulate, entry.problem, entry.optimizer, steps=config.steps))
            traj = jax.device_get(sim(px, py))
            row = summarize(traj)
            row["seconds"] = time.perf_counter() - start  # compile + run
            if entry.game_kwargs != _plain(config.game):
                row["game"] = entry.game_kwargs
            results[name], trajectories[name] = row, traj
    return results, trajectories


def table_title(config) -> str:
    """The line `run` prints above its table: the game, its arguments, steps and precision."""
    return (f"{config.game.name} {_plain(config.game)}: {config.steps} steps, "
            f"{'float64' if config.x64 else 'float32'}")


def run(config, workdir: str) -> dict[str, dict[str, Any]]:
    """Run every configured optimizer on the configured toy game; write and print results."""
    check_config(config)
    os.makedirs(workdir, exist_ok=True)
    results, trajectories = simulate_entries(config)
    arrays = {}
    for name, traj in trajectories.items():
        arrays[f"{name}/distance"] = np.asarray(traj.distance)
        arrays[f"{name}/grad_evals"] = np.cumsum(np.asarray(traj.info["grad_evals"]))
        start_x, start_y = jax.tree.map(lambda a: a[0], (traj.params_x, traj.params_y))
        if _is_plane(start_x, start_y):
            arrays[f"{name}/x"] = _path(traj.params_x)
            arrays[f"{name}/y"] = _path(traj.params_y)

    print(table_title(config))
    print(format_table(results))
    write_json(os.path.join(workdir, "results.json"),
               {"config": config.to_dict(), "results": _json_safe(results)}, indent=2)
    np.savez(os.path.join(workdir, "trajectories.npz"), **arrays)
    for path in _plots(workdir, trajectories, config):
        print(f"wrote {path}")
    return results


def _json_safe(value):
    """NaN and inf as strings, since JSON has neither."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
