"""The state and jitted step of a K-seed image run (`train.num_seeds = K`, `train_seeds`).

K independent GANs of one setting are one `SeedsState`: the `TrainState`s of the seeds
stacked along a leading seed axis (seed k initialised from `config.seed + k`), each
seed's first non-finite step, and its gradient evaluations. One step is the image
runner's step (`train_step.make_train_step`) vmapped over the seed axis, so seed k
computes what it computes alone (its own key, data and step count), to float rounding.

- Placement (`seeds_split`): with D devices and K a multiple of D, the seed axis is split
  over the mesh's 'data' axis and every array of a seed lives on one device: the seeds
  never communicate. Otherwise the state is replicated and each seed's batch is split
  over 'data', as in a run alone.
- A seed whose update k has a non-finite loss or leaves a non-finite state
  (`train_report.track_first_bad`, the single run's test) is frozen at the state before update
  k: its later updates are computed (lanes of one vmapped program) and discarded, so its
  row stays finite and the other seeds train on.
- Solvers with a `while_loop` (CGD, ACGD) run under vmap until the slowest seed has
  converged; a converged seed's carry is held by the loop's select, so its result is
  its own. The extra iterations are measured in docs/scaling.md.
- The optimizer state's flags (boolean leaves: CGD's and ACGD's alternating choice of
  system) enter the vmapped step once when the live seeds agree (`share_flags`): a
  `lax.cond` on a flag with a seed axis would run both branches.
"""

from __future__ import annotations

from typing import Sequence

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_dynamics import parallel
from gan_dynamics.runners.train_config import Experiment
from gan_dynamics.runners.train_report import track_first_bad
from gan_dynamics.runners.train_step import TrainState, init_state, make_train_step


@flax.struct.dataclass
class SeedsState:
    """K runs of one setting, each array with a leading seed axis of size K."""

    runs: TrainState  # the seeds' states, stacked
    bad: jax.Array  # (K, 2) int32: [first non-finite step or -1, train_report._LOSS | _STATE]
    grad_evals: jax.Array  # (K,) int32: gradient evaluations of this session, live updates


def seeds_split(num_seeds: int, mesh: Mesh) -> bool:
    """Whether the seed axis is split over the devices (K a multiple of their number);
    otherwise each seed's batch is."""
    return num_seeds % mesh.shape[parallel.DATA_AXIS] == 0


def state_sharding(num_seeds: int, mesh: Mesh) -> NamedSharding:
    """Where every array of the `SeedsState` lives."""
    if seeds_split(num_seeds, mesh):
        return NamedSharding(mesh, P(parallel.DATA_AXIS))
    return parallel.replicated(mesh)


def batch_split_axis(num_seeds: int, mesh: Mesh) -> int:
    """The axis of the stacked batches (K, n, B, H, W, C) split over 'data'."""
    return 0 if seeds_split(num_seeds, mesh) else 2


def _fresh(runs: TrainState, bad: jax.Array | None = None) -> SeedsState:
    k = runs.step.shape[0]
    if bad is None:
        bad = jnp.tile(jnp.asarray([[-1, 0]], jnp.int32), (k, 1))
    return SeedsState(runs=runs, bad=bad, grad_evals=jnp.zeros((k,), jnp.int32))


def create_seeds(exp: Experiment, seeds: Sequence[int], mesh: Mesh
                 ) -> tuple[SeedsState, TrainState]:
    """The initial state of `seeds` (seed k's row is `init_state(key(seeds[k]))`), placed
    with `state_sharding`, and the abstract state of one seed alone (replicated on `mesh`:
    what a seed's checkpoint restores into)."""
    keys = jnp.stack([jax.random.key_data(jax.random.key(int(s))) for s in seeds])
    sharding = state_sharding(len(seeds), mesh)

    def init(raw_keys):
        return _fresh(jax.vmap(lambda r: init_state(exp, jax.random.wrap_key_data(r)))(raw_keys))

    state = jax.jit(init, out_shardings=sharding)(keys)
    one = jax.eval_shape(lambda: init_state(exp, jax.random.key(0)))
    replicated = parallel.replicated(mesh)
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
                            one)
    return state, abstract


def stack_runs(runs: Sequence[TrainState], bad: np.ndarray, mesh: Mesh) -> SeedsState:
    """The `SeedsState` of the seeds' states (e.g. restored from their checkpoints) with
    `bad` (K, 2) the seeds' first non-finite steps, and no gradient evaluations yet."""
    chex.assert_shape(bad, (len(runs), 2))
    host = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *runs)
    return jax.jit(_fresh, out_shardings=state_sharding(len(runs), mesh))(
        host, np.asarray(bad, np.int32))


def host_runs(state: SeedsState) -> list[TrainState]:
    """Every seed's `TrainState` as numpy arrays (what its checkpoint saves)."""
    runs = jax.device_get(state.runs)
    return [jax.tree.map(lambda a, k=k: a[k], runs) for k in range(runs.step.shape[0])]


def run_of(state: SeedsState, k: int) -> TrainState:
    """Seed k's `TrainState`, on the devices (for its evaluation and sample grid)."""
    return jax.tree.map(lambda a: a[k], state.runs)


def _is_flag(leaf: jax.Array) -> bool:
    return leaf.dtype == jnp.bool_


def flags_agree(state: SeedsState) -> bool:
    """Whether every live seed holds the same optimizer-state flags (boolean leaves, e.g.
    ACGD's alternating choice of system); waits for the device."""
    live = np.asarray(jax.device_get(state.bad))[:, 0] < 0
    flags = [np.asarray(jax.device_get(a))[live]
             for a in jax.tree.leaves(state.runs.opt_state) if _is_flag(a)]
    return all((f == f[:1]).all() for f in flags)


def seeds_at_once(setting: int, num_seeds: int, backend: str) -> int:
    """How many of `num_seeds` seeds one vmapped call steps (`train.seeds_at_once`).

    0 (auto): all of them on an accelerator, which one small GAN leaves mostly idle; one
    on a CPU, where one seed's step already fills the cores and a vmapped step of
    several ran at 0.8x the rate of the same steps one after another (docs/scaling.md).
    """
    if setting:
        return min(setting, num_seeds)
    return 1 if backend == "cpu" else num_seeds


def make_seeds_step(exp: Experiment, mesh: Mesh | None = None, share_flags: bool = False,
                    at_once: int | None = None):
    """`step(state, batches) -> (state, metrics)`: one update of every live seed.

    `batches`: (K, n_sub, B, H, W, C), seed k's batches in row k. `mesh`: the mesh each
    seed's batch is split over (`train_step.step_game`); None when the seeds are split.
    Metrics are the single step's, each with a leading seed axis.

    `at_once` (`seeds_at_once`; None: all K): the seeds are stepped in groups of that
    many, one vmapped call per group and the groups one after another in the same
    program (`lax.map`); with 1, each seed runs the step alone, unvmapped.

    `share_flags` (when `flags_agree`): the optimizer state's flags enter the vmapped step
    once, from the first live seed, instead of per seed. A `lax.cond` on a flag with a
    seed axis runs both branches under vmap (ACGD's alternating solve would solve both
    systems every step); a flag the step computes from shared inputs alone is the same
    for every seed, so the live seeds keep agreeing. Where a flag depends on a seed's own
    data the step falls back to a flag per seed (found while tracing).
    """
    one = make_train_step(exp, mesh)

    def with_shared_flags(state: SeedsState, batches: jax.Array):
        """The per-seed step with the first live seed's flags closed over (unbatched under
        vmap), or `one` when a flag depends on a seed's own data."""
        first = jnp.argmax(state.bad[:, 0] < 0)  # the first live seed (0 if none)
        flags = jax.tree.map(lambda a: a[first] if _is_flag(a) else None,
                             state.runs.opt_state)

        def shared(run: TrainState, batch: jax.Array):
            return one(run.replace(opt_state=jax.tree.map(
                lambda a, f: a if f is None else f, run.opt_state, flags,
                is_leaf=lambda x: x is None)), batch)

        # A flag computed from a seed's own data comes out of vmap with a seed axis:
        # `out_axes=None` for the flags refuses it while tracing.
        out_axes = jax.tree.map(lambda a: 0, state.runs).replace(
            opt_state=jax.tree.map(lambda a: None if _is_flag(a) else 0, state.runs.opt_state))
        try:
            jax.eval_shape(jax.vmap(shared, out_axes=(out_axes, 0)), state.runs, batches)
        except ValueError:
            return one
        return shared

    def stepped(state: SeedsState, batches: jax.Array):
        if at_once == 1:  # unvmapped: a flag's cond is a cond
            return jax.lax.map(lambda args: one(*args), (state.runs, batches))
        fn = with_shared_flags(state, batches) if share_flags else one
        if at_once is None or at_once >= state.bad.shape[0]:
            return jax.vmap(fn)(state.runs, batches)
        return jax.lax.map(lambda args: fn(*args), (state.runs, batches), batch_size=at_once)

    def step(state: SeedsState, batches: jax.Array):
        chex.assert_rank(batches, 3 + len(exp.image_shape))
        chex.assert_equal(batches.shape[0], state.bad.shape[0])
        runs, metrics = stepped(state, batches)
        was_live = state.bad[:, 0] < 0
        bad = jax.vmap(track_first_bad)(state.bad, metrics["f"], metrics["g"], runs, runs.step)
        live = bad[:, 0] < 0

        def keep(new, old):
            return jnp.where(live.reshape(-1, *([1] * (new.ndim - 1))), new, old)

        grad_evals = state.grad_evals + jnp.where(
            was_live, metrics["grad_evals"].astype(jnp.int32), 0)
        return SeedsState(jax.tree.map(keep, runs, state.runs), bad, grad_evals), metrics

    return step


def jit_seeds_step(exp: Experiment, num_seeds: int, mesh: Mesh, share_flags: bool = False,
                   at_once: int | None = None):
    """The K-seed step jitted once: state placed by `state_sharding` and donated, batches
    split on `batch_split_axis`, metrics replicated; `share_flags` and `at_once` as in
    `make_seeds_step`.

    With the seeds split over several devices and stepped in groups, each device steps
    its own seeds (`shard_map`): a sequential map over a split axis would gather it.
    """
    split = seeds_split(num_seeds, mesh)
    sharding = state_sharding(num_seeds, mesh)
    step = make_seeds_step(exp, None if split else mesh, share_flags, at_once)
    devices = mesh.shape[parallel.DATA_AXIS]
    if split and devices > 1 and at_once is not None and at_once < num_seeds:
        seeds = P(parallel.DATA_AXIS)
        step = jax.shard_map(step, mesh=mesh, in_specs=(seeds, seeds), out_specs=(seeds, seeds))
    return jax.jit(
        step,
        in_shardings=(sharding, parallel.batch_sharding(mesh, batch_split_axis(num_seeds, mesh))),
        out_shardings=(sharding, parallel.replicated(mesh)),
        donate_argnums=(0,),
    )
