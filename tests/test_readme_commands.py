"""Every README command and override builds its config, so the README cannot drift.

Each `python experiments/run.py ...` line of README.md is parsed exactly as the command
line parses it (`run.parse`: the config file, then its `--config.*` overrides as
ml_collections' config_flags applies them), `quick` is resolved, and the runner's
validation and builders run without training (`runners.dispatch.check`): models, optimizers,
penalties, games and sweep cells. Image configs whose dataset is not prepared on this
machine build everything but the data. Every `--config.*` override the README mentions
in its prose must build with at least one experiment config.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shlex

import pytest

from gan_dynamics.runners import dispatch
from gan_dynamics.data import images
from gan_dynamics.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def _load_run():
    spec = importlib.util.spec_from_file_location("gd_run_readme",
                                                  os.path.join(ROOT, "experiments", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _load_run()
# Placeholders the README writes for values a user picks.
_PLACEHOLDERS = {"N": "2", "i": "0", "host:port": "localhost:1234"}


def readme_commands() -> list[tuple[list[str], str]]:
    """(argv after the program, the error the README shows for it or "") of every
    `python experiments/run.py` in README.md; a shown error is the next line's `Error: ...`."""
    commands = []
    with open(README) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        start = line.find("python experiments/run.py")
        if start < 0 or "experiments/X.py" in line:
            continue
        text = line[start + len("python experiments/run.py"):].split(" #")[0]
        text = text.split("&&")[0].strip().rstrip("`")
        shown = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("Error: ") else ""
        commands.append((shlex.split(text), shown))
    return commands


def readme_overrides() -> list[str]:
    """Every `--config.key=value` the README's prose mentions (outside run.py lines),
    including spans that wrap onto the next line."""
    with open(README) as f:
        prose = "".join(line for line in f if "python experiments/run.py" not in line)
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)  # code blocks: commands and output
    found = []
    for match in re.finditer(r"`([^`]*--config\.[^`]*)`", prose):
        found.extend(a for a in shlex.split(match.group(1)) if a.startswith("--config."))
    return [_fill(a) for a in found]


def _fill(arg: str) -> str:
    name, _, value = arg.partition("=")
    return f"{name}={_PLACEHOLDERS.get(value, value)}" if value else arg


def build(argv: list[str]) -> str:
    """Parse and build the config of `argv` without training; what the data check did."""
    inv = RUN.parse(["run.py", *argv])
    config = dispatch.resolve_quick(inv.config, inv.overridden)
    try:
        dispatch.check(config, data=True)
        return "built with data"
    except images.DatasetNotPreparedError:
        dispatch.check(config, data=False)
        return "built without data (not prepared here)"


COMMANDS = readme_commands()
OVERRIDES = readme_overrides()


def test_the_readme_has_commands_and_overrides():
    assert len(COMMANDS) >= 15, COMMANDS
    assert len(OVERRIDES) >= 5, OVERRIDES
    assert any(a.startswith("--config.optimizer.") for a in OVERRIDES)


@pytest.mark.parametrize("argv,shown", COMMANDS,
                         ids=[" ".join(c)[:80] for c, _ in COMMANDS])
def test_readme_command_builds(argv, shown):
    os.chdir(ROOT)
    if not shown:
        assert build(argv).startswith("built")
        return
    # An error the README shows: the same message, up to its "...".
    with pytest.raises(UserError) as err:
        build(argv)
    assert f"Error: {err.value}".startswith(shown.split("...")[0].rstrip())


@pytest.mark.parametrize("override", OVERRIDES)
def test_readme_override_builds_with_some_config(override):
    os.chdir(ROOT)
    errors = {}
    for path in sorted(glob.glob("experiments/*.py")):
        name = os.path.basename(path)
        if name in ("run.py", "plots.py"):
            continue
        try:
            build([f"--config={path}", override])
            return
        except Exception as err:  # noqa: BLE001  (collected for the failure message)
            errors[name] = str(err).splitlines()[0][:160]
    pytest.fail(f"{override} builds with no experiment config: {errors}")
