"""All diagnostics of an image run's state, jitted once and reported as plain numbers.

`PointDiagnostics(game_fn, options)` builds the jitted computations of `analysis.py` and
`path_angle.py` for states of one run (`runners.train_step.TrainState`): `game_fn(state)`
is the run's game on a fixed batch with the state's batch statistics, so every
checkpoint is measured on the same data and nothing recompiles between checkpoints.
`compute(state)` returns a JSON-ready dict (eigenvalues as `{"re": [...], "im": [...]}`);
`scalars(result)` the few numbers a training log wants (`diag/max_abs_eig`, ...).

Criteria of the field's eigenvalues (`options.which`): "LM" largest |λ|, "LR" largest
Re λ, "SR" smallest Re λ, "LI" largest |Im λ| (`spectrum.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gan_dynamics.diagnostics import analysis, path_angle, spectrum
from gan_dynamics.errors import UserError
from gan_dynamics.game import Game

WHICH_NAMES = {"LM": "largest_magnitude", "LR": "largest_real", "SR": "smallest_real",
               "LI": "largest_imag"}


class Options(NamedTuple):
    """What to compute and how precisely.

    Attributes:
      k: eigenvalues of the field's Jacobian per criterion.
      which: criteria (subset of "LM", "LR", "SR", "LI").
      ncv: Krylov basis size (0: max(2k + 1, 20)).
      tol: relative residual tolerance of every eigenvalue.
      max_restarts: restarts per eigenvalue problem.
      hessian: each player's extreme Hessian eigenvalues (Lanczos).
      decomposition: norms of J's symmetric and antisymmetric parts.
      hutchinson_samples: probes of the Frobenius-norm estimates.
      cgd_system: the CGD/ACGD system's condition number (when step sizes are known).
      dense_max: models with at most this many parameters also get the whole spectrum
        (dense `eig` of `jax.jacfwd`) and exact norms.
      path_points: α grid size of the path-angle on [-0.5, 1.5] (0: no path-angle).
    """

    k: int = 20
    which: tuple[str, ...] = ("LM", "LR", "SR", "LI")
    ncv: int = 0
    tol: float = 1e-4
    max_restarts: int = 100
    hessian: bool = True
    decomposition: bool = True
    hutchinson_samples: int = 16
    cgd_system: bool = True
    dense_max: int = 2000
    path_points: int = 41


def check_options(options: Options) -> None:
    """UserError on values that cannot work."""
    if not (isinstance(options.k, int) and options.k >= 1):
        raise UserError(f"k={options.k!r} must be a positive integer (eigenvalues per criterion).")
    bad = [w for w in options.which if w not in WHICH_NAMES]
    if bad or not options.which:
        raise UserError(f"which={options.which!r}: choose criteria among {list(WHICH_NAMES)}.")
    if options.ncv and options.ncv <= options.k:
        raise UserError(f"ncv={options.ncv} must exceed k={options.k} (or be 0: automatic).")
    if not 0 < options.tol < 1:
        raise UserError(f"tol={options.tol!r} must lie in (0, 1).")
    if options.max_restarts < 0 or options.hutchinson_samples < 1 or options.path_points < 0:
        raise UserError("max_restarts and path_points must be >= 0 and hutchinson_samples "
                        ">= 1.")


def complex_list(values) -> dict[str, list[float]]:
    """{"re": [...], "im": [...]} of an array of (complex) numbers."""
    values = np.asarray(values)
    return {"re": [float(v) for v in values.real], "im": [float(v) for v in values.imag]}


def _float(x) -> float:
    return float(np.asarray(x))


class PointDiagnostics:
    """Jitted diagnostics of one run's states (see the module docstring).

    Args:
      game_fn: `state -> Game`, traceable (called inside jit).
      options: `Options`.
      step_sizes: optional `state -> (η_x, η_y, system)` giving the step sizes CGD/ACGD
        uses at that state (scalars or per-coordinate pytrees) and which system ("x" or
        "y") it solves next; None skips the CGD system.
    """

    def __init__(self, game_fn: Callable[[Any], Game], options: Options,
                 step_sizes: Callable[[Any], tuple[Any, Any, str]] | None = None):
        check_options(options)
        self.options = options
        self.game_fn = game_fn
        self.step_sizes = step_sizes
        o = options
        ncv = o.ncv or None

        def eig(state, which):
            game = game_fn(state)
            n = ravel_pytree((state.params_x, state.params_y))[0].shape[0]
            k = min(o.k, n - 1)
            return analysis.field_spectrum(game, state.params_x, state.params_y, k=k,
                                           which=which, ncv=None if ncv is None else min(ncv, n),
                                           tol=o.tol, max_restarts=o.max_restarts)

        def losses(state):
            game = game_fn(state)
            (f, g), _ = game.losses(state.params_x, state.params_y)
            return f, g, analysis.field_norm(game, state.params_x, state.params_y)

        # the criterion is a traced index: one compiled program for all of them
        self._eig = jax.jit(eig)
        self._losses = jax.jit(losses)
        self._hessian = jax.jit(lambda s: analysis.player_curvature(
            game_fn(s), s.params_x, s.params_y, k=2, ncv=ncv, tol=o.tol,
            max_restarts=o.max_restarts))
        self._decomposition = jax.jit(lambda s: analysis.decomposition_norms(
            game_fn(s), s.params_x, s.params_y, num_samples=o.hutchinson_samples, ncv=ncv,
            tol=o.tol, max_restarts=o.max_restarts))
        self._dense = jax.jit(lambda s: analysis.dense_spectrum_matrix(
            game_fn(s), s.params_x, s.params_y))
        self._cgd = jax.jit(lambda s, eta_x, eta_y, system: analysis.cgd_system_spectrum(
            game_fn(s), s.params_x, s.params_y, eta_x, eta_y, system=system, ncv=ncv,
            tol=o.tol, max_restarts=o.max_restarts), static_argnums=3)
        alphas = path_angle.default_alphas(max(o.path_points, 2))
        self._path = jax.jit(lambda start, end: path_angle.path_angle(
            game_fn(end), (start.params_x, start.params_y), (end.params_x, end.params_y),
            alphas))

    def compute(self, state: Any, start: Any = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Every diagnostic at `state`; the path-angle from `start` when given.

        `progress(name)` is called before each part (e.g. `print`).
        """
        o = self.options
        out: dict[str, Any] = {}
        timings: dict[str, float] = {}
        say = progress or (lambda name: None)
        n_x = int(ravel_pytree(state.params_x)[0].shape[0])
        n_y = int(ravel_pytree(state.params_y)[0].shape[0])
        f, g, vnorm = self._losses(state)
        out.update(n_x=n_x, n_y=n_y, f=_float(f), g=_float(g), field_norm=_float(vnorm))
        jvps = 0
        eigs: dict[str, Any] = {}
        for which in o.which:
            say(f"eigenvalues ({which})")
            t0 = time.perf_counter()
            r = jax.device_get(self._eig(state, spectrum.criterion_index(which)))
            timings[f"eig_{which}"] = time.perf_counter() - t0
            eigs[WHICH_NAMES[which]] = {
                **complex_list(r.eigenvalues), "residuals": [float(x) for x in r.residuals],
                "converged": bool(r.converged), "jvps": int(r.matvecs),
                "restarts": int(r.restarts)}
            jvps += int(r.matvecs)
        out["eigenvalues"] = eigs
        if o.hessian:
            say("player Hessians")
            t0 = time.perf_counter()
            h = jax.device_get(self._hessian(state))
            timings["hessian"] = time.perf_counter() - t0
            hess = {k: _float(h[k]) for k in ("hess_x_min", "hess_x_max", "hess_y_min",
                                              "hess_y_max")}
            out["hessian"] = {**hess, "point": analysis.classify_point(**hess),
                              "converged": bool(h["converged"]), "jvps": int(h["jvps"])}
            jvps += int(h["jvps"])
        if o.decomposition:
            say("symmetric/antisymmetric parts")
            t0 = time.perf_counter()
            d = jax.device_get(self._decomposition(state))
            timings["decomposition"] = time.perf_counter() - t0
            out["decomposition"] = {k: (bool(v) if k == "converged" else
                                        int(v) if k == "jvps" else _float(v))
                                    for k, v in d.items()}
            out["decomposition"]["method"] = f"hutchinson({o.hutchinson_samples}) + krylov"
            jvps += int(d["jvps"])
        if n_x + n_y <= o.dense_max:
            t0 = time.perf_counter()
            jac = np.asarray(jax.device_get(self._dense(state)), np.float64)
            eig_all = np.linalg.eigvals(jac)
            timings["dense"] = time.perf_counter() - t0
            exact = {k: _float(v) for k, v in
                     analysis.dense_decomposition_norms(jnp.asarray(jac)).items()}
            out["dense"] = {"eigenvalues": complex_list(eig_all),
                            "rotation_dominated": complex_list(
                                spectrum.rotation_dominated(eig_all, o.k)),
                            **exact}
        if o.cgd_system and self.step_sizes is not None:
            eta_x, eta_y, system = self.step_sizes(state)
            say("CGD system")
            t0 = time.perf_counter()
            c = jax.device_get(self._cgd(state, eta_x, eta_y, system))
            timings["cgd_system"] = time.perf_counter() - t0
            out["cgd_system"] = {
                "system": system, "kind": "eigenvalues" if bool(c["symmetric"]) else
                "singular_values", "min": _float(c["cgd_min"]), "max": _float(c["cgd_max"]),
                "cond": _float(c["cgd_cond"]), "converged": bool(c["converged"]),
                "mixed_products": int(c["jvps"])}
        if start is not None and o.path_points:
            say("path-angle")
            t0 = time.perf_counter()
            p = jax.device_get(self._path(start, state))
            timings["path_angle"] = time.perf_counter() - t0
            out["path_angle"] = {name: [float(v) for v in np.asarray(getattr(p, name))]
                                 for name in p._fields}
        out["jvps"] = jvps
        out["seconds"] = timings
        return out


def scalars(result: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of a `compute` result, named `diag/...` for a metrics log."""
    out = {"diag/field_norm": result["field_norm"], "diag/jvps": float(result["jvps"])}
    eigs = result["eigenvalues"]

    def values(name):
        e = eigs[name]
        return np.asarray(e["re"]) + 1j * np.asarray(e["im"])

    if "largest_magnitude" in eigs:
        out["diag/max_abs_eig"] = float(np.max(np.abs(values("largest_magnitude"))))
    if "largest_real" in eigs:
        out["diag/max_real_eig"] = float(np.max(values("largest_real").real))
    if "smallest_real" in eigs:
        out["diag/min_real_eig"] = float(np.min(values("smallest_real").real))
    if "largest_imag" in eigs:
        out["diag/max_imag_eig"] = float(np.max(np.abs(values("largest_imag").imag)))
    for section, keys in (("hessian", ("hess_x_min", "hess_x_max", "hess_y_min",
                                       "hess_y_max")),
                          ("decomposition", ("sym_fro", "antisym_fro", "sym_spectral",
                                             "antisym_spectral"))):
        for key in keys:
            if key in result.get(section, {}):
                out[f"diag/{key}"] = result[section][key]
    if "cgd_system" in result:
        cond = result["cgd_system"]["cond"]
        out["diag/cgd_cond"] = cond if math.isfinite(cond) else float("nan")
    return out
