"""The one entry point of gan-dynamics: run the experiment a config file describes.

    python experiments/run.py --config=experiments/bilinear.py --workdir=runs/bilinear
    python experiments/run.py --config=experiments/cifar_wgan_cgd.py --config.optimizer.lr_x=2e-4

Every config file defines `get_config()` and names its `runner`, the function that runs
it (table below). Overrides use `--config.a.b=value`; a whole section is replaced by a
Python dict literal, e.g. `--config.optimizer='{"name": "acgd", "lr_x": 2e-4}'`. Unknown
keys and bad values fail before anything is compiled. `--workdir` defaults to
`runs/<config file name>`.

A run holds its workdir (`DIR/run.lock`, `gan_dynamics.workdir_lock`): a second command
on the same workdir is refused while the first runs.

Exit status: 0 done; 2 a user error (bad config, missing data, unusable checkpoint or
workdir, a workdir another command holds: the message says what to change; `--debug`
adds the traceback); 3 training diverged (non-finite loss or parameters); 128 + N
stopped by signal N after saving a checkpoint (143 for SIGTERM, 130 for Ctrl-C); run the
same command again to resume.

A study config (runner "study", experiments/studies/*.py; docs/studies.md) runs its
base experiment over a grid of settings and seeds: without flags it runs every unfinished
task, `--list` prints its tasks, `--task=N` runs task N alone (what a SLURM array or
another launcher calls), `--summarize` prints progress and the summary so far.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import sys
from typing import Any, NamedTuple, Optional, Sequence

# Allow `python experiments/run.py` from a checkout without installing experiments/.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402
from ml_collections.config_flags import config_flags as _config_flags  # noqa: E402

from gan_dynamics import errors, signals, workdir_lock  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.runners import config_docs, dispatch  # noqa: E402
from gan_dynamics.runners.dispatch import RUNNERS, resolve_runner  # noqa: E402,F401

EXPERIMENTS = os.path.dirname(os.path.abspath(__file__))


class Invocation(NamedTuple):
    """What a command line asks for."""

    config: Any  # ml_collections.ConfigDict, overrides applied (quick not yet resolved)
    config_path: str
    overridden: dict[str, Any]  # override path ("train.num_steps") -> value
    workdir: str
    debug: bool
    verbosity: Optional[int]  # None: absl/Orbax INFO stays off
    task: Optional[int] = None  # --task=N of a study
    list_tasks: bool = False  # --list of a study
    summarize: bool = False  # --summarize of a study
    override_args: tuple[str, ...] = ()  # the --config.a.b=v arguments, as given


def default_workdir(config_path: str) -> str:
    stem = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
    return os.path.join("runs", stem)


def _define_flags(argv: Sequence[str]) -> flags.FlagValues:
    # A fresh FlagValues per parse: main(argv) can run many times in one process (tests).
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                    flag_values=fv, lock_config=True, sys_argv=list(argv))
    flags.DEFINE_string("workdir", None, "Output directory (default runs/<config>).",
                        flag_values=fv)
    flags.DEFINE_bool("debug", False, "Show tracebacks of user errors.", flag_values=fv)
    flags.DEFINE_integer("verbosity", None, "absl logging verbosity; default WARNING. "
                         "0: INFO (Orbax's checkpoint lines included); 1: DEBUG and the "
                         "tracebacks of user errors.",
                         flag_values=fv, short_name="v")
    flags.DEFINE_bool("help", False, "Show this help.", flag_values=fv, short_name="h")
    flags.DEFINE_integer("task", None, "Study configs: run only task N (see --list).",
                         flag_values=fv)
    flags.DEFINE_bool("list", False, "Study configs: print the tasks and their states.",
                      flag_values=fv)
    flags.DEFINE_bool("summarize", False, "Study configs: print progress and write the "
                      "summary of the finished tasks.", flag_values=fv)
    return fv


def _override_args(argv: Sequence[str]) -> list[tuple[str, str]]:
    """(path, raw value) of each `--config.path=value` in order."""
    out = []
    for arg in argv:
        if arg.startswith("--config.") and "=" in arg:
            name, value = arg[len("--config."):].split("=", 1)
            out.append((name, value))
        elif arg.startswith("--config."):
            out.append((arg[len("--config."):], "True"))
    return out


def _unknown_override(config_path: str, argv: Sequence[str]) -> Optional[str]:
    """Why an override's key does not exist, with the keys nearby; None if all exist."""
    base = _config_flags.ConfigFileFlagParser("config", lock_config=False).parse(config_path)
    tree = base.to_dict()
    for path, raw in _override_args(argv):
        node, walked = tree, []
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                where = "config" + "".join(f".{k}" for k in walked)
                if not isinstance(node, dict):
                    return (f"--config.{path}: {where} is a value, not a section; set it "
                            f"as a whole: --config.{'.'.join(walked)}=VALUE.")
                known = ", ".join(sorted(node)) or "none"
                hint = errors.did_you_mean(key, node)
                whole = ""
                if walked and not hint:
                    section = ".".join(walked)
                    whole = (f" Keys of another kind (e.g. another optimizer's) need the "
                             f"whole section as one Python dict: --config.{section}="
                             f"'{_short_dict(node, key)}'.")
                return (f"Unknown config key {key!r} in --config.{path}: {where} has no "
                        f"{key!r}.{hint} Its keys: {known}.{whole}")
            node, walked = node[key], walked + [key]
        # A whole-section override replaces what later overrides can reach.
        if isinstance(node, dict):
            try:
                value = ast.literal_eval(raw)
            except (SyntaxError, ValueError):
                continue
            if isinstance(value, dict):
                parent = tree
                for key in path.split(".")[:-1]:
                    parent = parent[key]
                parent[path.split(".")[-1]] = value
    return None


def _short_dict(section: dict[str, Any], new_key: str) -> str:
    """'{"name": "altgd", "lr_x": ...}': the section's name (if any) and the new key."""
    items = [f'"name": {json.dumps(section["name"])}'] if "name" in section else []
    items.append(f'"{new_key}": ...')
    return "{" + ", ".join(items) + "}"


def parse(argv: Sequence[str]) -> Invocation:
    """Parse a command line (argv[0] is the program) into an `Invocation`; UserError if bad."""
    argv = list(argv)
    fv = _define_flags(argv)
    config_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if config_arg is not None:
        path = config_arg.split(":")[0]
        if os.path.isdir(path):
            raise UserError(_directory_message(path))
        if not os.path.isfile(path):
            here = os.path.dirname(path) or "."
            options = ([os.path.join(os.path.dirname(path), name)
                        for name, _ in config_docs.experiment_configs(here)]
                       if os.path.isdir(here) else [])
            raise UserError(f"Config file {path} does not exist.{errors.did_you_mean(path, options)}"
                            " Pass --config=experiments/<experiment>.py (python "
                            "experiments/run.py --help lists them).")
    try:
        rest = fv(argv)
    except (AttributeError, KeyError) as err:
        reason = _unknown_override(config_arg, argv) if config_arg else None
        raise UserError(reason or f"Bad config override: {err}") from err
    except flags.Error as err:
        raise UserError(f"{err}. Check the flag's spelling and value type "
                        "(python experiments/run.py --help lists the flags).") from err
    if fv["help"].value:
        print(config_help(config_arg, fv["config"].value,
                          dict(config_flags.get_override_values(fv["config"])))
              if config_arg else general_help(fv))
        sys.exit(0)
    if len(rest) > 1:
        raise UserError(f"Unexpected arguments {rest[1:]}: flags are --name=value, "
                        "e.g. --config.train.num_steps=100.")
    if config_arg is None:
        raise UserError("No config given: pass --config=experiments/<experiment>.py.")
    try:
        config = fv["config"].value
        "runner" in config  # noqa: B015  (an unloadable file raises here)
    except Exception as err:  # the config file's own error: user-fixable
        raise UserError(f"Could not load config file {config_arg}: "
                        f"{type(err).__name__}: {err}") from err
    if "runner" not in config:
        raise UserError(f"{config_arg} sets no `runner` (one of {sorted(RUNNERS)}); "
                        "add config.runner to its get_config().")
    overridden = dict(config_flags.get_override_values(fv["config"]))
    workdir = fv["workdir"].value or default_workdir(config_arg)
    study_flags = [f"--{name}" for name in ("task", "list", "summarize")
                   if fv[name].present]
    if study_flags and config.runner != "study":
        raise UserError(f"{', '.join(study_flags)} apply to study configs (runner \"study\", "
                        f"experiments/studies/); {config_arg} is a {config.runner!r} run.")
    return Invocation(config, config_arg, overridden, workdir, bool(fv["debug"].value),
                      fv["verbosity"].value, fv["task"].value, bool(fv["list"].value),
                      bool(fv["summarize"].value),
                      tuple(a for a in argv if a.startswith("--config.")))


def _config_list(directory: str) -> str:
    """One line per experiment config of `directory`: its path and docstring's first line."""
    found = config_docs.experiment_configs(directory)
    width = max((len(name) for name, _ in found), default=0)
    prefix = os.path.relpath(directory)
    return "\n".join(f"  {os.path.join(prefix, name):<{width + len(prefix) + 1}}  {doc}"
                     for name, doc in found)


def _directory_message(path: str) -> str:
    listed = _config_list(path)
    if not listed:
        return (f"--config={path} is a directory with no experiment config in it (a .py file "
                "defining get_config()); pass a config file, e.g. "
                "--config=experiments/bilinear.py.")
    return (f"--config={path} is a directory, not a config file; pass one of its "
            f"experiment configs:\n{listed}")


def general_help(fv: flags.FlagValues) -> str:
    """The module docstring, the flags and the experiment configs."""
    return (f"{__doc__}\n{fv.get_help()}\n\nExperiment configs "
            f"({os.path.relpath(EXPERIMENTS)}/):\n{_config_list(EXPERIMENTS)}\n\n"
            "python experiments/run.py --config=FILE --help prints a config's keys with "
            "their values and comments.")


def config_help(config_path: str, config: Any, overridden: dict[str, Any]) -> str:
    """A config's keys as the command line resolves them (overrides and `quick` applied),
    each with the comment of the source line that sets it."""
    resolved = dispatch.resolve_quick(config, overridden)
    if resolved.get("quick", False) and "quick_settings" in resolved:
        resolved.update(resolved.quick_settings.to_dict())
    path = config_path.split(":")[0]
    tree = ast.parse(open(path).read())
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    header = f"{path}: {doc[0]}" if doc else path
    return (f"{header}\nRunner {resolved.get('runner')!r}; keys as this command line resolves "
            "them (set one with --config.KEY=VALUE):\n\n"
            + config_docs.format_config(resolved.to_dict(), config_docs.key_comments(path)))


def quiet_logs(verbosity: Optional[int]) -> None:
    """absl (and Orbax, which logs through it) at WARNING unless --verbosity asks for more."""
    flags.FLAGS.mark_as_parsed()  # absl logging outside app.run: no "before flag parsing"
    logging.set_verbosity(logging.WARNING if verbosity is None else verbosity)
    logging.use_absl_handler()
    if verbosity is None or verbosity < 1:
        # JAX's INFO line "Unable to initialize backend 'tpu'" on every machine without
        # TPUs says nothing about the run; --verbosity=1 keeps it.
        import logging as pylogging

        pylogging.getLogger("jax._src.xla_bridge").setLevel(pylogging.WARNING)


def prepare_workdir(workdir: str) -> bool:
    """Create `workdir` if needed; True when it did not exist before. UserError if unusable.

    Every process of a multi-process run calls this on the same path at about the same
    time, so creating a directory another process has just created is not an error.
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise UserError(f"--workdir={workdir} is a file, not a directory; pass a "
                        "directory (it is created if missing).")
    parent = os.path.dirname(os.path.abspath(workdir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"--workdir={workdir} lies under {parent}, which is a file; pass a "
                        "directory path.")
    existed = os.path.isdir(workdir)
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as err:
        raise UserError(f"Cannot create --workdir={workdir}: {err.strerror}; pass a "
                        "writable directory.") from err
    return not existed


def _remove_if_empty(workdir: str) -> None:
    """Remove a workdir this run created if nothing was written to it."""
    for _, _, files in os.walk(workdir):
        if files:
            return
    shutil.rmtree(workdir, ignore_errors=True)


def _holds_the_lock(config: Any) -> bool:
    """Process 0 of a multi-process run holds the workdir's lock; the others write nothing."""
    if not config.get("parallel", {}).get("distributed", False):
        return True
    import jax

    return jax.process_index() == 0


def what_was_set(config_path: str, overridden: dict[str, Any]) -> str:
    """The input a failed check blames: the key the command line set, if it set one."""
    if len(overridden) == 1:
        (key, value), = overridden.items()
        return f"config.{key}={value!r}"
    if overridden:
        keys = ", ".join(f"config.{key}" for key in overridden)
        return f"The config of {config_path} with {keys} set on the command line"
    return f"The config of {config_path}"


def execute(inv: Invocation) -> Any:
    """Validate the config, prepare the workdir and run; the runner's result (a study:
    what its flags ask, `gan_dynamics.runners.study_run.execute`)."""
    config = dispatch.resolve_quick(inv.config, inv.overridden)
    if config.get("runner") == "study":
        from gan_dynamics.runners import study, study_run

        command = study.python_command(__file__, inv.config_path, inv.override_args,
                                       inv.workdir, inv.debug)
        request = study.Request(inv.task, inv.list_tasks, inv.summarize, command,
                                tuple(inv.overridden))
        return study_run.execute(config, inv.workdir, request, run_config,
                                 what_was_set(inv.config_path, inv.overridden))
    return run_config(config, inv.workdir, what_was_set(inv.config_path, inv.overridden))


def run_config(config: Any, workdir: str, what: str = "The config") -> Any:
    """Validate one run's resolved config, prepare and lock its workdir and run it;
    `what` names the input in the message of a check that fails (`dispatch.check`)."""
    if config.get("runner") in ("image", "sweep") and "parallel" in config:
        # Before anything starts JAX's backend (the checks build models abstractly).
        from gan_dynamics import parallel

        with errors.rejected_input(what):
            parallel.initialize_distributed(config.parallel)
    dispatch.check(config, data=False, what=what)
    run = resolve_runner(config.runner)
    # Only a single process removes an empty workdir it created on failure: in a
    # multi-process run another process may be about to write there.
    created = prepare_workdir(workdir) and not config.get("parallel", {}).get(
        "distributed", False)
    try:
        lock = (workdir_lock.hold(workdir) if _holds_the_lock(config)
                else contextlib.nullcontext())
        with lock:  # released before an empty workdir is removed
            return run(config, workdir)
    except BaseException:
        if created:
            _remove_if_empty(workdir)
        raise


def main(argv: Sequence[str]) -> int:
    """The command line `argv` (argv[0]: the program) run; returns the exit status."""
    debug = "--debug" in argv or any(a.startswith(("--verbosity=", "-v=")) and
                                     a.split("=", 1)[1].lstrip("-").isdigit() and
                                     int(a.split("=", 1)[1]) >= 1 for a in argv)
    try:
        inv = parse(argv)
        debug = inv.debug or (inv.verbosity or 0) >= 1
        quiet_logs(inv.verbosity)
        execute(inv)
    except UserError as err:
        return errors.report(err, debug)
    except signals.Stopped as stop:
        if _AS_SCRIPT:
            # Saved and stopping: a scheduler's later SIGTERM (sent to every process of
            # a multi-process run) must not kill the shutdown of JAX's distributed runtime.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stderr.write(f"{stop}\n")
        return stop.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("Stopped without saving.\n")
        return 130
    return 0


_AS_SCRIPT = False  # main() called from the command line, not from a test

if __name__ == "__main__":
    _AS_SCRIPT = True
    status = main(sys.argv)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: shutting down
    sys.exit(status)
