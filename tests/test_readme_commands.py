"""Every documented command and override builds its config, so the pages cannot drift.

The pages are README.md and every docs/*.md. Each `python experiments/run.py ...` command
in them (a line of its own, joined with the lines a trailing backslash continues it onto,
or an inline-code span) is parsed exactly as the command line parses it (`run.parse`: the
config file, then its `--config.*` overrides as ml_collections' config_flags applies
them), `quick` is resolved, and the runner's validation and builders run without training
(`runners.dispatch.check`): models, optimizers, penalties, games and sweep cells. Image
configs whose dataset is not prepared on this machine build everything but the data.
Every `--config.*` override the pages mention in their prose must build with at least
one experiment config.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shlex

import pytest

from gan_dynamics.data import images
from gan_dynamics.errors import UserError
from gan_dynamics.runners import dispatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
PROGRAM = "python experiments/run.py"


def pages() -> list[str]:
    """README.md and every page of docs/, in a fixed order."""
    return [README, *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]


def _lines(path: str) -> list[str]:
    """The page's lines, each line that ends in a backslash joined with the next."""
    with open(path) as f:
        raw = f.read().splitlines()
    lines, pending = [], ""
    for line in raw:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        lines.append(pending + (line.strip() if pending else line))
        pending = ""
    if pending:
        lines.append(pending.rstrip())
    return lines


def _load_run():
    spec = importlib.util.spec_from_file_location("gd_run_readme",
                                                  os.path.join(ROOT, "experiments", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _load_run()
# Placeholders the pages write for values a user picks.
_PLACEHOLDERS = {"N": "2", "i": "0", "host:port": "localhost:1234"}


def page_commands(path: str) -> list[tuple[list[str], str]]:
    """(argv after the program, the error the page shows for it or "") of every
    `python experiments/run.py` command in the page at `path`; a shown error is the next
    line's `Error: ...`. A mention of the program without arguments is not a command."""
    commands = []
    lines = _lines(path)
    for i, line in enumerate(lines):
        start = line.find(PROGRAM)
        if start < 0 or "experiments/X.py" in line:
            continue
        text = line[start + len(PROGRAM):]
        if start > 0 and line[start - 1] == "`":  # inline code: the command ends at its `
            text = text.split("`")[0]
        text = text.split(" #")[0].split("&&")[0].strip().rstrip("`")
        argv = shlex.split(text)
        if not argv:
            continue
        shown = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("Error: ") else ""
        commands.append((argv, shown))
    return commands


def readme_commands() -> list[tuple[list[str], str, str]]:
    """(argv, shown error, page) of every command of README.md and docs/*.md, each once."""
    seen, commands = set(), []
    for path in pages():
        for argv, shown in page_commands(path):
            if (tuple(argv), shown) not in seen:
                seen.add((tuple(argv), shown))
                commands.append((argv, shown, os.path.relpath(path, ROOT)))
    return commands


def page_overrides(path: str) -> list[str]:
    """Every `--config.key=value` the page's prose mentions (outside run.py commands),
    including spans that wrap onto the next line."""
    prose = "\n".join(line for line in _lines(path) if PROGRAM + " --" not in line)
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)  # code blocks: commands and output
    found = []
    for match in re.finditer(r"`([^`]*--config\.[^`]*)`", prose):
        found.extend(a for a in shlex.split(match.group(1)) if a.startswith("--config."))
    return [_fill(a) for a in found]


def readme_overrides() -> list[str]:
    """Every override of README.md and docs/*.md, each once."""
    found = [a for path in pages() for a in page_overrides(path)]
    return list(dict.fromkeys(found))


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


def test_the_pages_have_commands_and_overrides():
    assert len(COMMANDS) >= 15, COMMANDS
    assert len(OVERRIDES) >= 5, OVERRIDES
    assert any(a.startswith("--config.optimizer.") for a in OVERRIDES)
    assert any(shown for _, shown, _ in COMMANDS)  # at least one shown error is checked
    assert any(page == "README.md" for _, _, page in COMMANDS)


def test_continued_and_inline_commands_are_read(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("What `python experiments/run.py` does.\n"
                    "python experiments/run.py --config=experiments/a.py \\\n"
                    "    --config.steps=3   # a comment\n"
                    "Run `python experiments/run.py --config=experiments/b.py` here.\n")
    assert page_commands(str(page)) == [
        (["--config=experiments/a.py", "--config.steps=3"], ""),
        (["--config=experiments/b.py"], "")]


@pytest.mark.parametrize("argv,shown,page", COMMANDS,
                         ids=[f"{p}: {' '.join(c)}"[:100] for c, _, p in COMMANDS])
def test_readme_command_builds(argv, shown, page):
    os.chdir(ROOT)
    if not shown:
        assert build(argv).startswith("built")
        return
    # An error the page shows: the same message, up to its "...".
    with pytest.raises(UserError) as err:
        build(argv)
    assert f"Error: {err.value}".startswith(shown.split("...")[0].rstrip())


@pytest.mark.parametrize("override", OVERRIDES)
def test_readme_override_builds_with_some_config(override):
    os.chdir(ROOT)
    errors = {}
    for path in sorted(glob.glob("experiments/*.py") + glob.glob("experiments/studies/*.py")):
        name = os.path.basename(path)
        if name in ("run.py", "plots.py"):
            continue
        try:
            build([f"--config={path}", override])
            return
        except Exception as err:  # noqa: BLE001  (collected for the failure message)
            errors[name] = str(err).splitlines()[0][:160]
    pytest.fail(f"{override} builds with no experiment config: {errors}")
