"""Periodic diagnostics inside image training: `make_eval_hooks(config, exp)`.

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
import ml_collections

from gan_dynamics.diagnostics import image_run, report
from gan_dynamics.errors import UserError

EvalHook = Callable[[int, Any, Callable[[jax.Array], jax.Array]], dict[str, float]]


def default_section() -> ml_collections.ConfigDict:
    """`config.diagnostics` of the image runner's default config (off)."""
    return ml_collections.ConfigDict({
        "every": 0,  # diagnose at eval steps that are multiples of this; 0: off
        "k": 6,  # eigenvalues of the field's Jacobian per criterion
        "which": "LM,LR",  # criteria: LM |λ|, LR max Re, SR min Re, LI max |Im|
        "tol": 1e-3,  # relative residual of each eigenvalue
        "max_restarts": 30,
        "hessian": True,  # each player's extreme Hessian eigenvalues
        "decomposition": False,  # norms of J's symmetric/antisymmetric parts
        "cgd_system": True,  # CGD/ACGD system's condition number (those optimizers only)
        "batch_size": 0,  # the fixed batch's size; 0: config.data.batch_size
    })


def options_from_section(section: ml_collections.ConfigDict) -> report.Options:
    """`report.Options` from a `config.diagnostics` section; UserError on unknown keys."""
    known = default_section()
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


def make_eval_hooks(config: ml_collections.ConfigDict, exp: Any) -> list[EvalHook]:
    """The diagnostics hook of `config.diagnostics`, or none when it is off or absent."""
    section = config.get("diagnostics", None)
    if section is None or not int(section.get("every", 0)):
        return []
    every = int(section.every)
    if every < 0:
        raise UserError(f"config.diagnostics.every={every} must be >= 0 (0: off).")
    options = options_from_section(section)
    batch = image_run.fixed_batch(exp, config, int(section.get("batch_size", 0)))
    diagnostics = report.PointDiagnostics(image_run.fixed_game_fn(exp, batch, int(config.seed)),
                                          options, image_run.step_sizes_fn(config))

    def hook(step: int, state: Any, generate: Callable[[jax.Array], jax.Array]):
        del generate
        if step % every:
            return {}
        return report.scalars(diagnostics.compute(state))

    return [hook]
