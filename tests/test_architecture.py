"""The shape of the package, read from its source with ``ast`` (nothing is imported).

- the imports among muss_builder modules form no cycle (imports inside functions count: they
  run too; only ``if TYPE_CHECKING:`` blocks, which never run, are left out), nor do those
  among its subpackages (``bench`` imports ``train``, so ``train`` may not import ``bench``);
- no module but those of ``runtime`` and ``cli`` imports ``muss_builder.runtime``: the stages
  and the tools on top of them use ``muss_builder.core`` instead;
- no module imports a private name (``_x``) from another subpackage;
- no module is over 500 lines and no function over 80;
- exactly one module names the H.264 encoder (``libx264``).
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "muss_builder"
MAX_LINES = 500
MAX_FUNCTION_LINES = 80  # a function reads on one screen


@dataclass(frozen=True)
class Import:
    importer: str  # module name, e.g. muss_builder.shards.writer
    target: str  # the muss_builder module the import loads
    names: tuple[str, ...]  # names taken from it (``from x import a, b``); () for ``import x``
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth, outside ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)  # the else branch does run
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of the dotted ``name`` that is a muss_builder module."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    found.append(Import(module, target, (), node.lineno))
            continue
        base = node.module or ""
        if node.level:  # relative: from the package, up level - 1 packages
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            # ``from pkg import mod`` loads the module pkg.mod; ``from mod import name`` mod
            target = _resolve(f"{base}.{alias.name}", modules) or _resolve(base, modules)
            if target:
                found.append(Import(module, target, (alias.name,), node.lineno))
    return found


def import_graph() -> list[Import]:
    modules = all_modules()
    return [i for m, p in modules.items() for i in imports_of(m, p, modules) if i.target != m]


def find_cycle(edges: list[Import]) -> list[str] | None:
    """One cycle of the module graph (its modules in import order, the first repeated at the
    end), or None."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, []).append(edge.target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(set(graph.get(node, []))):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def all_cycles(edges: list[Import]) -> list[list[str]]:
    """One cycle per independent tangle: a cycle is found, its edges are set aside, and the
    search goes on, so every knot is named, not just the first."""
    remaining = list(edges)
    cycles = []
    while cycle := find_cycle(remaining):
        cycles.append(cycle)
        knot = set(itertools.pairwise(cycle))
        remaining = [e for e in remaining if (e.importer, e.target) not in knot]
    return cycles


def subpackage(module: str) -> str:
    """The top-level part of muss_builder a module belongs to (``shards``, ``config``, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_import_graph_has_no_cycle() -> None:
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_subpackages_import_each_other_in_one_direction() -> None:
    """Layers, not a web: e.g. bench imports train (it scores the generator), never back."""
    between = [
        Import(subpackage(i.importer), subpackage(i.target), (), i.line)
        for i in import_graph()
        if subpackage(i.importer) != subpackage(i.target)
    ]
    cycles = all_cycles(between)
    assert not cycles, "subpackage cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_one() -> None:
    edges = [Import("a", "b", (), 1), Import("b", "c", (), 1), Import("c", "a", (), 1)]
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle(edges[:2]) is None
    other = [Import("x", "y", (), 1), Import("y", "x", (), 1)]
    assert all_cycles(edges + other) == [["a", "b", "c", "a"], ["x", "y", "x"]]


def test_only_runtime_and_cli_import_runtime() -> None:
    offenders = [
        f"{i.importer} (line {i.line}) imports {i.target}"
        for i in import_graph()
        if subpackage(i.target) == "runtime" and subpackage(i.importer) not in ("runtime", "cli")
    ]
    assert not offenders, "\n".join(offenders)


def test_no_private_name_crosses_a_subpackage() -> None:
    offenders = [
        f"{i.importer} (line {i.line}) imports {name} from {i.target}"
        for i in import_graph()
        if subpackage(i.importer) != subpackage(i.target)
        for name in i.names or (i.target.rpartition(".")[2],)
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not offenders, "\n".join(offenders)


def test_no_module_is_over_500_lines() -> None:
    long = {
        name: n
        for name, path in all_modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_function_is_over_80_lines() -> None:
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, path in all_modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_one_module_names_the_h264_encoder() -> None:
    naming = [name for name, path in all_modules().items() if "libx264" in path.read_text()]
    assert len(naming) == 1, f"modules naming libx264: {naming}"
