"""The package's layering, read from the source (ast, nothing imported or executed).

Libraries (every module of `gan_dynamics` outside `gan_dynamics.runners`) never import a
runner, an experiment, a benchmark or a test, and no module imports itself back through
others: the import graph of `gan_dynamics` (imports inside functions included) has no
cycle. docs/design.md Sec. 2 describes the layers.
"""

from __future__ import annotations

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "gan_dynamics"
UPPER = ("gan_dynamics.runners", "experiments", "benchmarks", "tests")


def modules(root: str = REPO) -> dict[str, str]:
    """Dotted module name -> file path, for every module of the package."""
    found = {}
    for directory, _, files in os.walk(os.path.join(root, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def imports(module: str, path: str, known: dict[str, str]) -> set[str]:
    """The modules `module` imports (at any depth of its code), resolved to known modules
    where `from package import name` names a submodule."""
    is_package = path.endswith("__init__.py")
    package = module if is_package else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def graph(root: str = REPO) -> dict[str, set[str]]:
    known = modules(root)
    return {m: imports(m, p, known) for m, p in known.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """'library -> upper module' for each library that imports a runner or above."""
    bad = []
    for module, targets in sorted(edges.items()):
        if module == "gan_dynamics.runners" or module.startswith("gan_dynamics.runners."):
            continue
        for target in sorted(targets):
            if any(target == u or target.startswith(u + ".") for u in UPPER):
                bad.append(f"{module} -> {target}")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), and modules
    that import themselves: each is an import circle."""
    inside = {m: {t for t in ts if t in edges} for m, ts in edges.items()}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(inside[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in inside[v]:
                found.append(sorted(component))

    for v in sorted(inside):
        if v not in index:
            visit(v)
    return found


def test_libraries_never_import_runners_or_experiments():
    bad = upward_imports(graph())
    assert not bad, "libraries importing upward:\n" + "\n".join(bad)


def test_no_import_circle():
    found = cycles(graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_find_a_circle_and_an_upward_import():
    edges = {"gan_dynamics.a": {"gan_dynamics.b"}, "gan_dynamics.b": {"gan_dynamics.a"},
             "gan_dynamics.c": {"gan_dynamics.runners.train", "numpy"},
             "gan_dynamics.runners.train": {"gan_dynamics.c"}}
    assert cycles(edges) == [["gan_dynamics.a", "gan_dynamics.b"],
                             ["gan_dynamics.c", "gan_dynamics.runners.train"]]
    assert upward_imports(edges) == ["gan_dynamics.c -> gan_dynamics.runners.train"]
