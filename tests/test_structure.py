"""The code's shape: no import loops between the project's modules, every module named in
docs/code-map.md, and comments that cite only what a clone of the repository has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

# The top-level packages and where they live (pyproject.toml's package-dir).
PACKAGES = {"components": REPO / "components", "stacks": REPO / "stacks",
            "platformctl": REPO / "platformctl", "platform_facts": REPO / "platform_facts",
            "platform_guard": REPO / "policy-packs" / "platform-guard" / "platform_guard"}


def modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in it (top level, inside functions,
    under TYPE_CHECKING: a loop is a loop wherever the import sits)."""
    def resolve(name: str) -> str | None:
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, text in sources.items():
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update(resolve(f"{node.module}.{alias.name}") or resolve(node.module)
                             for alias in node.names)
        graph[module] = {m for m in found if m and m != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_project_has_no_import_loop():
    sources = {name: path.read_text(encoding="utf-8") for name, path in modules().items()}
    graph = import_graph(sources)
    assert len(graph) > 60 and graph["platformctl.pipeline"], "the walk found the modules"
    loops = cycles(graph)
    assert loops == [], "\n".join(
        " <-> ".join(loop) + ": " + "; ".join(f"{m} imports {', '.join(sorted(graph[m] & set(loop)))}"
                                              for m in loop) for loop in loops)


def test_an_import_loop_is_found_wherever_the_import_sits():
    sources = {"pkg.a": "from pkg import b\n",
               "pkg.b": "def late():\n    from pkg.c import thing\n",
               "pkg.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
               "pkg.d": "import pkg.a\n"}
    assert cycles(import_graph(sources)) == [["pkg.a", "pkg.b", "pkg.c"]]
    del sources["pkg.c"]
    assert cycles(import_graph(sources)) == []


def test_the_code_map_names_every_module():
    """Each module appears in docs/code-map.md by its path (the pack's from `platform_guard/`), or
    by its file name on the line of its directory (`platformctl/harness.py, mocks.py`)."""
    lines = (REPO / "docs" / "code-map.md").read_text(encoding="utf-8").splitlines()
    missing = []
    for path in modules().values():
        relative = path.relative_to(REPO).as_posix().removeprefix("policy-packs/platform-guard/")
        if path.name == "__init__.py" and not ast.parse(path.read_text()).body[1:]:
            continue  # a package marker with at most a docstring
        directory = relative.rpartition("/")[0] + "/"
        if not any(relative in line or (directory in line and re.search(
                rf"(^|[\s,/]){re.escape(path.name)}\b", line)) for line in lines):
            missing.append(relative)
    assert missing == []


CITES_OUTSIDE = re.compile(r"PLATFORM\.md|STYLE\.md|\.\./shared|\bseeds/|\bissues? #?\d+", re.I)


def test_code_cites_only_what_the_repository_has():
    """No docstring or comment points at a file a clone does not have, or at an issue number:
    the fact belongs in docs/, which the code may cite. The docs and the README neither."""
    roots = [*PACKAGES.values(), REPO / "tests", REPO / "policy-packs", REPO / "bench",
             REPO / ".ci", REPO / "docs"]
    found = []
    for root in roots:
        for path in [*root.rglob("*.py"), *root.rglob("*.md"), *root.glob("run"),
                     *([REPO / "README.md"] if root == REPO / "docs" else [])]:
            if path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if CITES_OUTSIDE.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []
