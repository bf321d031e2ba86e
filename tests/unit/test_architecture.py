"""The package layout is the pipeline: no module imports a later stage (or commands/, cli), the engine adapters
are reached only from the stages that talk to daemons, and there is no import circle, lazy imports included.

Imports under `if TYPE_CHECKING:` are left out: they name types, they run nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[2] / "planner"

# Stage of each module (the longest match wins). A module may import its own stage or earlier ones.
STAGES: list[tuple[str, float]] = [
    # foundation: data types and helpers every stage may use
    ("planner", 0),
    ("planner.errors", 0), ("planner.inputs", 0), ("planner.localcache", 0), ("planner.signatures", 0),
    ("planner.refs", 0), ("planner.secrets", 0), ("planner.deferred", 0), ("planner.streams", 0), ("planner.layer_chain", 0), ("planner.plan_model", 0),
    ("planner.rules.model", 0), ("planner.schemas", 0), ("planner.keys.manifest", 0), ("planner.keys", 0),
    ("planner.dockerfile", 0), ("planner.observation", 0), ("planner.engine.labels", 0), ("planner.apply.lock", 0), ("planner.rules", 0),
    ("planner.compose", 0), ("planner.engine", 0), ("planner.apply", 0), ("planner.commands", 0),
    # load: compose + rules -> Stack, and what each build reads
    ("planner.compose.", 1), ("planner.rules.load", 1), ("planner.stack", 1), ("planner.dockerignore", 1),
    ("planner.buildfiles", 1), ("planner.keys.walk", 1), ("planner.redact", 1),
    # engine adapters (side effects), below the stages that use them
    ("planner.engine.", 1.5),
    ("planner.graph", 2),
    ("planner.keys.", 3), ("planner.store", 3),
    ("planner.observe", 4), ("planner.artifacts", 4),
    ("planner.decide", 5), ("planner.manifest_diff", 5),
    ("planner.pipeline", 6),
    ("planner.apply.", 7),
    ("planner.render", 8),
    ("planner.commands.", 9), ("planner.memo", 9),
    ("planner.cli", 10), ("planner.commandline", 10), ("planner.main", 10), ("planner.shim", 10), ("planner.__main__", 10),
    # the resident server: its client half is reached from commands/server.py, its server half runs main
    ("planner.resident", 9), ("planner.resident.", 9), ("planner.resident.server", 10), ("planner.resident.child", 10),
]  # fmt: skip
# Stages that must not talk to a daemon or registry, even indirectly through an import.
NO_ENGINE = ("planner.graph", "planner.keys.", "planner.decide", "planner.manifest_diff", "planner.stack")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage(module: str) -> float:
    """A name ending in `.` is a prefix (every module below it); any other name is one module exactly."""
    hits = [
        (len(name), rank)
        for name, rank in STAGES
        if (module.startswith(name) if name.endswith(".") else module == name)
    ]
    assert hits, f"{module} has no stage in STAGES"
    return max(hits)[1]


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
    backwards = sorted(
        f"{a} ({stage(a)}) imports {b} ({stage(b)})" for a, b in graph.edges if stage(b) > stage(a)
    )
    assert backwards == []


def test_the_pure_stages_never_reach_the_engine() -> None:
    graph = import_graph()
    reached = sorted(
        f"{module} reaches {target}"
        for module in graph.nodes
        if module.startswith(NO_ENGINE)
        for target in nx.descendants(graph, module)
        if target.startswith("planner.engine.") and target != "planner.engine.labels"
    )
    assert reached == []


def test_there_is_no_import_circle() -> None:
    cycles = [c for c in nx.simple_cycles(import_graph()) if len(c) > 1]
    assert cycles == []


def test_the_stage_table_knows_every_module() -> None:
    for path in PACKAGE.rglob("*.py"):
        stage(module_name(path))  # raises for a module nobody placed


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
