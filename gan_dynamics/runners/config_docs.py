"""What `experiments/run.py --help` shows: the experiment configs and what their keys mean.

- `experiment_configs(directory)`: the config files of a directory (the `.py` files that
  define `get_config()`, found without running them) with the first line of each
  docstring.
- `key_comments(config_path)`: each key's comment, read from the source of the config
  file and of the config modules it builds on (`experiments.*`, `gan_dynamics.runners.*`):
  a comment at the end of the line that sets the key, or the comment lines right above
  it. Keys are set as `config.a.b = value`, as entries of a dict or `ConfigDict` literal
  assigned to a section (`config.a = ConfigDict({"b": value})`, `config.a.update(...)`),
  or returned by a function the config assigns (`config.eval = eval_section()`).
- `format_config(config, comments)`: one line per key, `a.b = value  # comment`.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import tokenize
from typing import Any, Iterator, Mapping, Optional

# Modules whose source may set config keys: the experiment files and the runners' schemas.
_CONFIG_MODULES = ("experiments.", "gan_dynamics.runners.")


def _parse(path: str) -> Optional[ast.Module]:
    try:
        with open(path) as f:
            return ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None


def defines_get_config(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.FunctionDef) and node.name == "get_config"
               for node in tree.body)


def experiment_configs(directory: str) -> list[tuple[str, str]]:
    """(file name, first docstring line) of each config file in `directory`, sorted."""
    out = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not (name.endswith(".py") and os.path.isfile(path)):
            continue
        tree = _parse(path)
        if tree is not None and defines_get_config(tree):
            doc = (ast.get_docstring(tree) or "").strip().splitlines()
            out.append((name, doc[0] if doc else ""))
    return out


# -- comments ---------------------------------------------------------------------------

def _comments(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """(line -> comment ending a line of code, line -> comment alone on its line)."""
    trailing, alone = {}, {}
    code_lines = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                (trailing if tok.start[0] in code_lines else alone)[tok.start[0]] = text
            elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.ENCODING):
                code_lines.update(range(tok.start[0], tok.end[0] + 1))
    except (tokenize.TokenError, IndentationError):
        pass
    return trailing, alone


def _comment_at(line: int, trailing: dict[int, str], alone: dict[int, str]) -> str:
    """The comment ending `line`, else the comment lines right above it."""
    if line in trailing:
        return trailing[line]
    above = []
    while line - 1 in alone:
        line -= 1
        above.insert(0, alone[line])
    return " ".join(above)


def _attribute_path(node: ast.AST) -> Optional[list[str]]:
    """['a', 'b'] for `<name>.a.b`; None for other expressions."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    return parts if isinstance(node, ast.Name) and parts else None


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return ""


def _entries(value: ast.AST) -> Iterator[tuple[str, int, ast.AST]]:
    """(key, line, value) of a dict literal, `dict(k=v)` or `ConfigDict(<either>)`."""
    if _call_name(value) == "ConfigDict" and value.args:
        value = value.args[0]
    if isinstance(value, ast.Dict):
        for key, item in zip(value.keys, value.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield key.value, key.lineno, item
    elif _call_name(value) == "dict":
        for keyword in value.keywords:
            if keyword.arg is not None:
                yield keyword.arg, keyword.value.lineno, keyword.value


class _Collector:
    """Comments of one source file: `paths` ("a.b" -> comment), `returned` (function ->
    its returned config's comments) and `aliases` ("a" -> function assigned to it)."""

    def __init__(self, source: str):
        self.trailing, self.alone = _comments(source)
        self.paths: dict[str, str] = {}
        self.returned: dict[str, dict[str, str]] = {}
        self.aliases: dict[str, str] = {}

    def _record(self, into: dict[str, str], prefix: str, line: int, value: ast.AST) -> None:
        text = _comment_at(line, self.trailing, self.alone)
        if text and prefix:
            into.setdefault(prefix, text)
        for key, key_line, item in _entries(value):
            # An entry on its section's line shares the section's comment: not its own.
            if key_line != line:
                self._record(into, f"{prefix}.{key}" if prefix else key, key_line, item)
            else:
                self._record_entries(into, f"{prefix}.{key}" if prefix else key, line, item)

    def _record_entries(self, into: dict[str, str], prefix: str, line: int,
                        value: ast.AST) -> None:
        for key, key_line, item in _entries(value):
            if key_line != line:
                self._record(into, f"{prefix}.{key}", key_line, item)
            else:
                self._record_entries(into, f"{prefix}.{key}", line, item)

    def visit(self, tree: ast.Module) -> None:
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and node.value is not None:
                    entries: dict[str, str] = {}
                    self._record(entries, "", node.lineno, node.value)
                    if entries:
                        self.returned.setdefault(function.name, entries)
                elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                    path = _attribute_path(node.targets[0])
                    if path:
                        self._record(self.paths, ".".join(path), node.lineno, node.value)
                        if isinstance(node.value, ast.Call) and _call_name(node.value):
                            self.aliases[".".join(path)] = _call_name(node.value)
                elif (isinstance(node, ast.Expr) and _call_name(node.value) == "update"
                      and node.value.args):
                    path = _attribute_path(node.value.func.value)
                    if path:
                        self._record(self.paths, ".".join(path), node.lineno, node.value.args[0])


def _imported_files(tree: ast.Module) -> Iterator[str]:
    """Source files of the config modules `tree` imports."""
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith(_CONFIG_MODULES):
                try:
                    spec = importlib.util.find_spec(name)
                except (ImportError, ValueError):
                    continue
                if spec is not None and spec.origin and spec.origin.endswith(".py"):
                    yield spec.origin


def key_comments(config_path: str) -> dict[str, str]:
    """'a.b' -> the comment that documents key a.b of the config `config_path` builds.

    The config file's own comments come first, then those of the modules it builds on
    (breadth first); each key keeps the first comment found.
    """
    comments: dict[str, str] = {}
    returned: dict[str, dict[str, str]] = {}
    aliases: dict[str, str] = {}
    queue, seen = [os.path.abspath(config_path)], set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        tree = _parse(path)
        if tree is None:
            continue
        with open(path) as f:
            collector = _Collector(f.read())
        collector.visit(tree)
        for table, new in ((comments, collector.paths), (aliases, collector.aliases)):
            for key, value in new.items():
                table.setdefault(key, value)
        for function, entries in collector.returned.items():
            returned.setdefault(function, entries)
        queue.extend(_imported_files(tree))
    for section, function in aliases.items():
        for key, text in returned.get(function, {}).items():
            comments.setdefault(f"{section}.{key}", text)
    return comments


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def format_config(config: Mapping[str, Any], comments: Mapping[str, str]) -> str:
    """`key = value  # comment`, one line per key (a section's comment on its first key)."""
    rows = []
    shown = set()
    for path, value in _leaves(config):
        notes = []
        parts = path.split(".")
        for depth in range(1, len(parts)):  # a section's comment, once
            section = ".".join(parts[:depth])
            if section in comments and section not in shown:
                shown.add(section)
                notes.append(f"[{section}] {comments[section]}")
        if path in comments:
            notes.append(comments[path])
        rows.append((f"{path} = {value!r}", "; ".join(notes)))
    width = min(max(len(left) for left, _ in rows), 48) if rows else 0
    return "\n".join(f"{left:<{width}}  # {note}" if note else left for left, note in rows)
