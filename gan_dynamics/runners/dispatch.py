"""Which runner runs a config, and everything checked before it runs.

`RUNNERS` maps `config.runner` to the function that runs it; `check(config)` rejects NaN
and inf anywhere, then runs the runner's own `check` (each runner owns its schema,
defaults and checks), so a bad value fails in a second with a message naming the key
and a fix instead of minutes later as a diverged run. `resolve_quick(config,
overridden)` applies a config's `quick_settings` (when `quick` is set) only to the keys
the command line did not set, so `--config.quick=True --config.steps=1000` runs 1000
steps.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any, Callable, Iterable, Mapping

import ml_collections

from gan_dynamics import checks, errors
from gan_dynamics.errors import UserError

# config.runner -> the module whose `run(config, workdir)` runs it and whose
# `check(config, data)` checks it; modules load lazily.
RUNNERS = {
    "toy_game": "gan_dynamics.runners.toy_run",
    "synthetic": "gan_dynamics.runners.synthetic_run",
    "sweep": "gan_dynamics.runners.sweep",
    "image": "gan_dynamics.runners.train",
    "mix_gaussians": "gan_dynamics.runners.mix_gaussians_run",
    # run.py hands a study to `study_run.execute` (its flags choose what it does)
    "study": "gan_dynamics.runners.study_run",
}


def runner_module(name: str):
    """The module of the runner registered under `name`; UserError if there is none."""
    checks.one_of("config.runner", name, RUNNERS)
    return importlib.import_module(RUNNERS[name])


def resolve_runner(name: str) -> Callable[[ml_collections.ConfigDict, str], Any]:
    """The `run(config, workdir)` function registered under `name`."""
    return runner_module(name).run


def check(config: ml_collections.ConfigDict, data: bool = True,
          what: str = "The config") -> None:
    """Everything a run of `config` needs, checked without compiling; UserError if not.

    `data=False` skips opening an image dataset (the README test builds configs whose
    data is not prepared on every machine). This is the one place where any exception of
    the checks (a value a model, an optimizer or a library rejects that no check was
    taught) becomes the one-line UserError, naming `what` (the caller's words for the
    input: the keys a command line set).
    """
    with errors.rejected_input(what):
        bad = checks.non_finite(config)
        if bad:
            raise UserError(f"{', '.join(bad)}: NaN and inf are not valid settings; give "
                            "a finite number.")
        runner_module(config.get("runner")).check(config, data)


# -- quick ------------------------------------------------------------------------------

def _leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, path + "."))
        else:
            out[path] = value
    return out


def _nest(leaves: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in leaves.items():
        node = tree
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return tree


def resolve_quick(config: ml_collections.ConfigDict,
                  overridden: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """An unlocked copy of `config` whose `quick_settings` leave the `overridden` keys alone.

    The runner applies `quick_settings` when `quick` is set; keys the command line set
    (and everything below or above them) are dropped from it first.
    """
    resolved = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    if not resolved.get("quick", False) or "quick_settings" not in resolved:
        return resolved
    overridden = tuple(overridden)

    def touched(path: str) -> bool:
        return any(o == path or path.startswith(o + ".") or o.startswith(path + ".")
                   for o in overridden)

    kept = {p: v for p, v in _leaves(resolved.quick_settings.to_dict()).items()
            if not touched(p)}
    resolved.quick_settings = ml_collections.ConfigDict(_nest(kept))
    return resolved
