"""The package layout is the pipeline: no module imports a package above its own in ORDER (cli at the top, base
at the bottom), the engine adapters are reached only from the stages that talk to daemons, there is no import
circle (lazy imports included), and no module is left at planner/'s top.

Imports under `if TYPE_CHECKING:` are left out: they name types, they run nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[2] / "planner"

# The package order, top to bottom: a module may import its own package or one below it, never one above.
# cli -> commands -> apply/resident -> plan -> engine -> keys -> build -> rules -> compose -> base
ORDER: list[tuple[str, ...]] = [
    ("planner.cli", "planner.__main__"),
    ("planner.commands",),
    ("planner.apply", "planner.resident"),
    ("planner.plan",),
    ("planner.engine",),
    ("planner.keys",),
    ("planner.build",),
    ("planner.rules",),
    ("planner.compose",),
    ("planner.base", "planner._lstat", "planner"),
]
# Modules that sit elsewhere than their package says, and why:
PLACED = {
    # the resident server's process entry and the child it forks run `planner` itself (cli.main): they are the
    # top of their own process, as __main__ is of a one-shot run
    "planner.resident.server": "planner.cli",
    "planner.resident.child": "planner.cli",
    # the plan's data model is a leaf: engine/ and apply/ read plans without importing a decider
    "planner.plan.model": "planner.base",
}
# Packages that must not talk to a daemon or registry, even indirectly through an import.
NO_ENGINE = ("planner.build.", "planner.keys.", "planner.plan.decide", "planner.plan.manifest_diff")
# engine modules that are data only (what a daemon holds, the label names): any stage may read them
ENGINE_DATA = ("planner.engine.labels", "planner.engine.observation")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank(module: str) -> int:
    """The module's place in ORDER (0: the top); a package's own `__init__` counts as the package."""
    placed = PLACED.get(module)
    for index, names in enumerate(ORDER):
        for name in names:
            if placed == name or (placed is None and (module == name or module.startswith(name + "."))):
                return index
    raise AssertionError(f"{module} has no place in ORDER")


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.module.split(".")[0] == "planner":
                found.add(node.module)
                if node.module == "planner":
                    found.update(f"planner.{alias.name}" for alias in node.names)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names if a.name.split(".")[0] == "planner")

    Visitor().visit(ast.parse(path.read_text()))
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules}


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        source = module_name(path)
        graph.add_node(source)
        for target in imports_of(path):
            if target != source:
                graph.add_edge(source, target)
    return graph


def test_no_module_imports_a_later_stage() -> None:
    graph = import_graph()
    upward = sorted(f"{a} imports {b}, which sits above it" for a, b in graph.edges if rank(b) < rank(a))
    assert upward == []


def test_the_pure_stages_never_reach_the_engine() -> None:
    graph = import_graph()
    reached = sorted(
        f"{module} reaches {target}"
        for module in graph.nodes
        if module.startswith(NO_ENGINE)
        for target in nx.descendants(graph, module)
        if target.startswith("planner.engine.") and target not in ENGINE_DATA
    )
    assert reached == []


def test_there_is_no_import_circle() -> None:
    cycles = [c for c in nx.simple_cycles(import_graph()) if len(c) > 1]
    assert cycles == []


def test_every_module_has_a_place() -> None:
    for path in PACKAGE.rglob("*.py"):
        rank(module_name(path))  # raises for a module nobody placed


def test_the_top_holds_only_the_entry_and_the_c_extension() -> None:
    """Every module lives in the package of its stage; the top keeps `__init__`, `__main__` and the C reader."""
    top = sorted(p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix in (".py", ".pyi", ".c"))
    assert top == ["__init__.py", "__main__.py", "_lstat.c", "_lstat.pyi"]


def test_no_module_re_exports_an_imported_name() -> None:
    """`__all__` may list only what the module itself defines: a name imported to be re-exported is a second
    address for it, and goes stale when its users import it from where it lives."""
    re_exported = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            (alias.asname or alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                listed = ast.literal_eval(node.value)  # type: ignore[union-attr]
                re_exported += [f"{module_name(path)}: {name}" for name in listed if name in imported]
    assert re_exported == []
