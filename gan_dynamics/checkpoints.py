"""An image run's checkpoints and the config they belong to.

- `DIR/config.json` is the resolved config, written at the first start (and refreshed
  on every resume that is allowed). Other tools (evaluation, diagnostics) read it from
  there. A resume compares the new config against it and refuses any change that alters
  the trajectory (data, model, loss, optimizer and its hyperparameters, seed, global
  batch size), naming each changed field; changes that do not (logging, checkpoint and
  sample cadence, evaluation, diagnostics, `train.num_steps`, devices and processes,
  where the data lives and how it is read: `data.num_workers`, `data.prefetch`) are
  allowed.
- `DIR/checkpoints/<step>` are Orbax checkpoints of the `TrainState` after `step` steps.
  `Checkpoints.restore_latest` takes the newest readable one. One that cannot be read is
  named with the reason (damaged: a data file is unreadable; incomplete: its metadata is
  missing) and moved to `DIR/checkpoints/damaged/<step>` for inspection (not deleted,
  not counted by the keep-N cleanup), and the run falls back to the next older one. Only
  a checkpoint whose arrays do not match the model's shapes "does not fit" the config:
  `fit_problem` compares the checkpoint's stored array metadata (read without restoring
  anything) with the abstract state before any restore, and names the first parameter
  that differs with both shapes, in one line.

Orbax's failed reads leave asyncio callbacks that print "Event loop is closed"
tracebacks from its threads; `_quiet_orbax_failures` filters exactly those.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from typing import Any, Optional

import jax
import ml_collections

from gan_dynamics.errors import UserError

CONFIG_FILE = "config.json"
DAMAGED_DIR = "damaged"

# Config fields (and sections) a resume may change: they do not alter the trajectory.
# `train.num_seeds` is not one of them, but a run's kind is told by its files instead: a
# K-seed run keeps SEEDS_FILE and its seeds' checkpoints in DIR/seed_<k>/ (each with a
# config of num_seeds 1), a single run its own checkpoints (and configs saved before the
# key existed have none); each refuses the other's workdir.
RESUMABLE_CHANGES = (
    "train.num_steps", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.sample_every", "train.num_samples", "train.eval_every", "train.budget", "parallel",
    "eval", "diagnostics", "data.data_dir", "data.num_workers", "data.prefetch",
    "train.num_seeds", "train.seeds_at_once",
)
# A K-seed run's record of its seeds at each checkpoint (`runners.train_seeds`).
SEEDS_FILE = "seeds.json"


# -- the run's config -------------------------------------------------------------------

def flatten_config(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, ml_collections.ConfigDict):
        tree = tree.to_dict()
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(flatten_config(value, f"{prefix}{key}."))
        return out or {prefix[:-1]: {}}
    if isinstance(tree, tuple):
        tree = list(tree)
    return {prefix[:-1]: tree}


def _free(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in RESUMABLE_CHANGES)


def trajectory_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'field: old -> new' for every field that differs and alters the trajectory."""
    old, new = flatten_config(saved), flatten_config(current)
    missing = object()
    lines = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, missing), new.get(path, missing)
        if a == b or _free(path):
            continue
        show = lambda v: "(absent)" if v is missing else json.dumps(v)  # noqa: E731
        lines.append(f"{path}: {show(a)} -> {show(b)}")
    return lines


def config_path(workdir: str) -> str:
    return os.path.join(workdir, CONFIG_FILE)


def read_config(workdir: str) -> Optional[dict[str, Any]]:
    """The config saved in `workdir` (a plain dict), or None if there is none."""
    path = config_path(workdir)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        what = "is not valid JSON" if isinstance(err, ValueError) else "cannot be read"
        raise UserError(f"{path} {what} ({err}); restore it from the run's results.json "
                        "'config', pass the run's --config, or use a fresh --workdir.") from err


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Write `config` to `workdir/config.json` atomically (process 0 only)."""
    if jax.process_index() != 0:
        return
    path = config_path(workdir)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config.to_dict(), f, indent=1, default=str)
    os.replace(tmp, path)


def check_resume(workdir: str, config: ml_collections.ConfigDict) -> None:
    """UserError naming each trajectory-changing field if `config` differs from the saved
    one. A workdir without checkpoints has nothing to resume: any config may start there;
    one holding a K-seed run (SEEDS_FILE) takes only a K-seed config."""
    if os.path.exists(os.path.join(workdir, SEEDS_FILE)):
        raise UserError(f"--workdir={workdir} holds a run of several seeds (its seeds are in "
                        f"{workdir}/seed_<k>/); resume it with its own config "
                        f"({config_path(workdir)}), or use a fresh --workdir.")
    directory = os.path.join(workdir, "checkpoints")
    if not (os.path.isdir(directory) and any(n.isdigit() for n in os.listdir(directory))):
        return
    saved = read_config(workdir)
    if saved is None:
        return
    changes = trajectory_changes(saved, json.loads(json.dumps(config.to_dict(), default=str)))
    if changes:
        listed = "; ".join(changes)
        raise UserError(
            f"--workdir={workdir} holds a run with a different config, and resuming it "
            f"would mix two runs in one metrics file: {listed}. Use a fresh --workdir for "
            f"the new settings, or resume with the saved ones ({config_path(workdir)}).")


# -- Orbax checkpoints --------------------------------------------------------------------

_FILTER_LOCK = threading.Lock()
_FILTER_INSTALLED = False


def _quiet_orbax_failures() -> None:
    """Drop the 'Event loop is closed' tracebacks a failed Orbax read leaves behind."""
    global _FILTER_INSTALLED
    with _FILTER_LOCK:
        if _FILTER_INSTALLED:
            return
        _FILTER_INSTALLED = True
    noise = lambda exc: isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc)  # noqa: E731
    excepthook, unraisablehook, threadhook = sys.excepthook, sys.unraisablehook, threading.excepthook
    sys.excepthook = lambda t, v, tb: None if noise(v) else excepthook(t, v, tb)
    sys.unraisablehook = lambda u: None if noise(u.exc_value) else unraisablehook(u)
    threading.excepthook = lambda a: None if noise(a.exc_value) else threadhook(a)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= 240 else line[:237] + "..."


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """'params_x.linear.kernel' -> shape of every leaf (arrays or their metadata)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {".".join(_key_name(k) for k in path): tuple(getattr(leaf, "shape", ()))
            for path, leaf in leaves}


def stored_shapes(step_dir: str) -> Optional[dict[str, tuple[int, ...]]]:
    """The shape of every array of checkpoint `step_dir`, from its metadata alone; None
    when the metadata cannot be read (a damaged checkpoint: the restore says so)."""
    import orbax.checkpoint as ocp
    from etils import epath

    try:
        metadata = ocp.StandardCheckpointHandler().metadata(
            epath.Path(os.path.join(step_dir, "default")))
    except Exception:  # noqa: BLE001  (Orbax/tensorstore raise ValueError, OSError, ...)
        return None
    return _shapes(metadata.tree)


def fit_problem(step_dir: str, abstract: Any) -> Optional[str]:
    """How checkpoint `step_dir` does not fit the state `abstract` describes: the first
    array (in the state's order: parameters before optimizer state) that is missing on
    either side or has another shape; None when it fits or its metadata cannot be read."""
    stored = stored_shapes(step_dir)
    if stored is None:
        return None
    wanted = _shapes(abstract)
    for path in [*wanted, *(p for p in stored if p not in wanted)]:  # parameters first
        if path not in stored:
            return f"{path} {wanted[path]} is in this config's state but not in the checkpoint"
        if path not in wanted:
            return f"{path} {stored[path]} is in the checkpoint but not in this config's state"
        if stored[path] != wanted[path]:
            return (f"{path} has shape {stored[path]} in the checkpoint and {wanted[path]} "
                    "in this config")
    return None


def diagnose(step_dir: str, err: BaseException) -> tuple[str, str]:
    """('incompatible' | 'incomplete' | 'damaged', reason) for a failed restore."""
    item = os.path.join(step_dir, "default")
    message = str(err)
    if not os.path.exists(os.path.join(item, "_METADATA")):
        return "incomplete", "its metadata file default/_METADATA is missing"
    try:
        with open(os.path.join(item, "_METADATA")) as f:
            json.load(f)
    except (OSError, ValueError):
        return "damaged", "its metadata file default/_METADATA is unreadable"
    if "is not compatible with the stored shape" in message or "pytree structure" in message:
        return "incompatible", _first_line(err)
    return "damaged", f"a data file cannot be read ({_first_line(err)})"


class Checkpoints:
    """The Orbax checkpoints of one run in `workdir/checkpoints`, kept `keep` at a time."""

    def __init__(self, workdir: str, keep: int):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.manager = ocp.CheckpointManager(
            self.directory,
            # A save cut short (kill -9, a crashed node) leaves a temporary directory that
            # is never a checkpoint; the next start removes it.
            options=ocp.CheckpointManagerOptions(max_to_keep=int(keep), create=True,
                                                 cleanup_tmp_directories=True),
        )

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def restore_latest(self, abstract: Any) -> Optional[Any]:
        """The newest readable checkpoint restored into `abstract`'s shapes, or None.

        Unreadable ones are moved aside (and said so); one that does not fit raises.
        """
        for step in reversed(self.steps()):
            self._check_fits(step, abstract)
            try:
                return self.manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
            except Exception as err:  # Orbax/tensorstore raise ValueError, OSError, ...
                _quiet_orbax_failures()
                step_dir = os.path.join(self.directory, str(step))
                kind, reason = diagnose(step_dir, err)
                if kind == "incompatible":
                    raise UserError(
                        f"Checkpoint step {step} in {self.directory} does not fit this config "
                        f"({reason}): it was written by a different model or optimizer. "
                        "Resume with the config that wrote it, or use a fresh --workdir."
                    ) from err
                moved = self._move_aside(step)
                older = [s for s in self.steps() if s < step]
                then = (f"falling back to step {max(older)}" if older
                        else "no older checkpoint: starting from scratch")
                print(f"Checkpoint step {step} is {kind}: {reason}. Moved it to {moved}; "
                      f"{then}.", file=sys.stderr, flush=True)
        return None

    def restore(self, step: int, abstract: Any) -> Any:
        """Checkpoint `step` restored into `abstract`'s shapes; UserError in one line when
        there is none at that step, or it does not fit, or it cannot be read."""
        steps = self.steps()
        if step not in steps:
            raise UserError(f"{self.directory} has no checkpoint at step {step}; it has "
                            f"{steps or 'none'}.")
        self._check_fits(step, abstract)
        try:
            return self.manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
        except Exception as err:  # Orbax/tensorstore raise ValueError, OSError, ...
            _quiet_orbax_failures()
            kind, reason = diagnose(os.path.join(self.directory, str(step)), err)
            raise UserError(f"Checkpoint step {step} in {self.directory} is {kind} for this "
                            f"config ({reason}); pass the config the run was started with."
                            ) from err

    def _check_fits(self, step: int, abstract: Any) -> None:
        """UserError in one line naming the first array of checkpoint `step` whose shape
        differs from `abstract`'s (checked before Orbax restores anything)."""
        problem = fit_problem(os.path.join(self.directory, str(step)), abstract)
        if problem is not None:
            raise UserError(f"Checkpoint step {step} in {self.directory} does not fit this "
                            f"config: {problem}. It was written by a different model or "
                            "optimizer; pass the config that wrote it, or use a fresh "
                            "--workdir.")

    def _move_aside(self, step: int) -> str:
        target_dir = os.path.join(self.directory, DAMAGED_DIR)
        target = os.path.join(target_dir, str(step))
        if jax.process_index() == 0:
            os.makedirs(target_dir, exist_ok=True)
            if os.path.exists(target):
                shutil.rmtree(target)
            os.replace(os.path.join(self.directory, str(step)), target)
        self.manager.reload()
        return target

    def save(self, step: int, state: Any) -> None:
        self.manager.save(step, args=self._ocp.args.StandardSave(state))

    def last_good(self, before: int) -> str:
        """Where the newest checkpoint before step `before` is, in words."""
        self.manager.wait_until_finished()
        good = [s for s in self.steps() if s < before]
        if not good:
            return "none (no checkpoint precedes it; start again in a fresh --workdir)"
        return f"step {max(good)} in {self.directory}"

    def close(self) -> None:
        """Finish in-flight (async) saves and release the manager."""
        self.manager.wait_until_finished()
        self.manager.close()
