"""A sweep's cells and parts, its checks, and the settings fingerprints that guard resumes.

A (model, optimizer) cell is one part (lr sweep: every (seed, lr) pair is a run, the lr
traced) or one part per d (shapes change). `cell_fingerprint` names the settings a cell's
results depend on; `cell_status` compares them with a finished cell's or an interrupted
one's saved settings, so a rerun skips, resumes or refuses, naming what differs.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, NamedTuple

import ml_collections

from gan_dynamics.checkpoints import flatten_config
from gan_dynamics.errors import UserError
from gan_dynamics.runners import synthetic_train

SWEEPS = ("lr", "dim")


# Default chunks per part when config.chunk_steps is 0: a progress line, a possible
# checkpoint and a stop check after each.
TARGET_CHUNKS = 100


def cell_config(config: ml_collections.ConfigDict, model: str,
                optimizer: str) -> ml_collections.ConfigDict:
    """The single-run config of one (model, optimizer) cell of a sweep config."""
    if optimizer not in config.optimizers:
        raise ValueError(f"config.run_optimizers names {optimizer!r} but config.optimizers "
                         f"only sets {sorted(config.optimizers)}.")
    cell = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    cell.model = model
    settings = config.optimizers[optimizer].to_dict()
    cell.optimizer = ml_collections.ConfigDict(dict(
        name=optimizer, lr=settings.get("lr", 0.0), n_disc=settings.get("n_disc", 1),
        transform=settings.get("transform", {}), options=settings.get("options", {})))
    return cell


class Part(NamedTuple):
    """One compiled program of a cell: the lr sweep's single part (every lr of the grid)
    or one dimension of the d sweep (at the optimizer's fixed lr)."""

    name: str
    cell: ml_collections.ConfigDict
    lrs: tuple[float, ...]


def cell_parts(config: ml_collections.ConfigDict, model: str, optimizer: str) -> list[Part]:
    cell = cell_config(config, model, optimizer)
    name = f"{model}__{optimizer}"
    if config.sweep == "lr":
        return [Part(name, cell, tuple(float(lr) for lr in config.optimizers[optimizer].lrs))]
    parts = []
    for dim in config.dims:
        part = ml_collections.ConfigDict(copy.deepcopy(cell.to_dict()))
        part.dim = int(dim)
        parts.append(Part(f"{name}__d{int(dim)}", part, (float(cell.optimizer.lr),)))
    return parts


def names(value: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)


def validate(config: ml_collections.ConfigDict) -> None:
    """Fail before compiling anything on a sweep config that cannot run."""
    if config.sweep not in SWEEPS:
        raise ValueError(f"config.sweep={config.sweep!r}; choose one of {SWEEPS}.")
    if config.num_seeds < 1 or config.chunk_seeds < 1:
        raise ValueError("config.num_seeds and config.chunk_seeds must be >= 1.")
    for model in names(config.models):
        for optimizer in names(config.run_optimizers):
            cell = cell_config(config, model, optimizer)
            if config.sweep == "lr" and not len(config.optimizers[optimizer].get("lrs", ())):
                raise ValueError(f"config.optimizers.{optimizer}.lrs is empty.")
            synthetic_train.validate(cell)
            synthetic_train.chunk_blocks(cell, TARGET_CHUNKS)


# Fields that do not change a cell's results: which cells a command runs, and how.
NOT_RESULTS = ("models", "run_optimizers", "optimizers", "quick", "quick_settings", "runner",
               "num_devices", "checkpoint_every", "parallel")


# Fields that change how the runs are split into programs and chunks: results agree to
# rounding, but a checkpoint resumes only under the same values (bit-for-bit results).
EXECUTION = ("chunk_seeds", "chunk_steps")


def cell_fingerprint(config: ml_collections.ConfigDict, model: str, optimizer: str
                     ) -> dict[str, Any]:
    """The settings a cell's results depend on (dotted names), execution fields included."""
    cell = cell_config(config, model, optimizer).to_dict()
    cell = {k: v for k, v in cell.items() if k not in NOT_RESULTS}
    if config.sweep == "lr":
        cell["lrs"] = [float(lr) for lr in config.optimizers[optimizer].lrs]
        cell.pop("dims", None)
    cell["chunk_steps"] = int(config.get("chunk_steps", 0) or 0)
    flat = {k: v for k, v in flatten_config(cell).items() if v != {}}  # as first saved
    return json.loads(json.dumps(flat))  # tuples -> lists, as saved


def changed_fields(saved: dict[str, Any], current: dict[str, Any],
                   ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted names whose values differ (or exist on one side only)."""
    names = sorted(set(saved) | set(current))
    return [n for n in names if n not in ignore and saved.get(n, "<unset>") != current.get(
        n, "<unset>")]


def _mismatch(what: str, path: str, saved: dict[str, Any], current: dict[str, Any],
              fields: list[str]) -> UserError:
    shown = "; ".join(f"{f}: saved {saved.get(f, '<unset>')!r}, now {current.get(f, '<unset>')!r}"
                      for f in fields[:8])
    more = f" (and {len(fields) - 8} more)" if len(fields) > 8 else ""
    return UserError(f"{what} in {path} was made with different settings: {shown}{more}. "
                     "Rerun with the saved settings to reuse it, or use another --workdir.")


def cell_status(workdir: str, name: str, fingerprint: dict[str, Any]) -> str:
    """"done" (finished with these settings), "resume" (a checkpoint with these settings),
    or "new"; a finished cell or checkpoint with other settings raises UserError."""
    cell_path = os.path.join(workdir, f"{name}.json")
    if os.path.exists(cell_path):
        with open(cell_path) as f:
            saved = json.load(f).get("config")
        if saved is None:
            raise UserError(f"{cell_path} records no settings (an older sweep); move it out "
                            "of the workdir or use another --workdir.")
        fields = changed_fields(saved, fingerprint, EXECUTION)
        if fields:
            raise _mismatch(f"The finished cell {name}", cell_path, saved, fingerprint, fields)
        return "done"
    started_path = os.path.join(workdir, "checkpoints", f"{name}.config.json")
    if os.path.exists(started_path):
        with open(started_path) as f:
            saved = json.load(f)
        fields = changed_fields(saved, fingerprint)
        if fields:
            raise _mismatch(f"The interrupted cell {name}", started_path, saved, fingerprint,
                            fields)
        return "resume"
    return "new"
