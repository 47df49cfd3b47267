"""The modules of sky_async import each other without cycles, and only at module level.

Read from the source with ``ast``, so the test sees every import statement, including those
under ``if TYPE_CHECKING:`` and those a run would never reach.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "python" / "sky_async"

# (importing module, imported module): why the import happens inside a function.
ALLOWED_IN_FUNCTIONS = {
    ("sky_async._default", "sky_async._native_backend"): (
        "the compiled module is optional: without it (or with SKY_ASYNC_BACKEND=python) the "
        "pure-Python backend is used, so the native backend is imported under an ImportError guard"
    ),
    ("sky_async.compat", "sky_async._native"): "optional compiled module, under an ImportError guard",
    ("sky_async.compat", "sky_async._system.native_exact"): (
        "imports the compiled module, so it is optional too, under the same ImportError guard"
    ),
}


# The helpers every feature shares: each imports no other sky_async module except these.
LEAVES = {
    "sky_async._batch",
    "sky_async._checks",
    "sky_async._dirs",
    "sky_async._errors",
    "sky_async._fd_budget",
    "sky_async._upload.skyignore",
    "sky_async._skypilot_ux",
    "sky_async._version",
}


def module_name(path: Path) -> str:
    parts = ["sky_async", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}
    assert "sky_async" in found and "sky_async.sync" in found
    return found


def is_package(name: str, known: dict[str, Path]) -> bool:
    return known.get(name, Path()).name == "__init__.py"


def is_module(name: str, known: dict[str, Path]) -> bool:
    # _native is compiled: it has a stub (_native.pyi) but no .py file.
    return name in known or name == "sky_async._native"


def imported_modules(node: ast.Import | ast.ImportFrom, importer: str, known: dict[str, Path]) -> list[str]:
    """The sky_async modules one import statement loads, by name."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "sky_async"]
    if node.level:
        package = importer if is_package(importer, known) else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    elif node.module and node.module.split(".")[0] == "sky_async":
        base = node.module
    else:
        return []
    # ``from . import a, b``: each name that is a submodule is a module imported; the other
    # names are attributes of *base*.
    targets = [f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}", known)]
    if len(targets) < len(node.names):
        targets.append(base)
    return targets


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, str]]:
    """(imported module, line, where) for every intra-package import; where is "module",
    "function" or "class"."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((target, child.lineno, where) for target in imported_modules(child, name, known))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, "function")
            elif isinstance(child, ast.ClassDef):
                visit(child, "function" if where == "function" else "class")
            else:
                visit(child, where)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "module")
    return [entry for entry in found if entry[0] != name]


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _, _ in imports_of(name, path, known)} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of *graph* as the list of its modules (the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the stack, "done" once fully explored
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle is not None:
                return cycle
    return None


def test_the_finder_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_the_package_imports() -> None:
    graph = import_graph()
    assert "sky_async._public" in graph["sky_async"]
    assert "sky_async.sync" in graph["sky_async.cli.check"]  # from .. import sync


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_leaves_import_only_leaves() -> None:
    graph = import_graph()
    assert set(graph) >= LEAVES
    for leaf in sorted(LEAVES):
        assert graph[leaf] <= LEAVES, f"{leaf} imports {sorted(graph[leaf] - LEAVES)}"


def test_intra_package_imports_are_at_module_level() -> None:
    known = modules()
    misplaced = [
        f"{path.relative_to(PACKAGE_DIR)}:{line}: {name} imports {target} inside a {where}"
        for name, path in known.items()
        for target, line, where in imports_of(name, path, known)
        if where != "module" and (where == "class" or (name, target) not in ALLOWED_IN_FUNCTIONS)
    ]
    assert not misplaced, "\n".join(misplaced)


def test_every_allowed_exception_is_still_needed() -> None:
    known = modules()
    in_functions = {
        (name, target)
        for name, path in known.items()
        for target, _, where in imports_of(name, path, known)
        if where == "function"
    }
    assert set(ALLOWED_IN_FUNCTIONS) <= in_functions
