"""The build graph: which node must be ready before which, and why.

Edges (`from` must be ready before `to`):
- `FROM`, `COPY --from`, `RUN --mount`: the Dockerfile of `to` names the image `from` produces;
- `additional_contexts`: `service:NAME` / `target:NAME`, or `docker-image://` naming a node's image;
- `artifact`: `to`'s build reads an artifact's output: it lies in an additional context of `to`, or in its main
  context where a source of the Dockerfile meets it (or the build reads the whole context, and the edge says why);
- `stamp`: `to`'s build reads a stamp carrying `from`'s identity, by the same rule;
- `depends_on`: the rules say so (compose `depends_on` is run order, not build order, and adds no edge).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from planner.base.errors import InputError, Location, UsageError
from planner.base.paths import inside
from planner.base.refs import normalize_ref
from planner.build.buildfiles import MAIN, BuildFiles, read_all
from planner.build.dockerfile import ImageRef
from planner.build.sourcepattern import source_meets
from planner.build.stack import Node, Stack

Via = Literal["FROM", "COPY --from", "RUN --mount", "additional_contexts", "artifact", "stamp", "depends_on"]


class GraphError(InputError):
    """The nodes cannot be ordered (a cycle)."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    via: Via
    detail: str = ""


class _ImageIndex:
    """Which node produces an image reference: exact name:tag first, then a tagless reference by repository."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.exact: dict[tuple[str, str], str] = {}
        self.by_repo: dict[str, set[str]] = {}
        for node in nodes:
            if node.kind != "image" or node.image is None:
                continue
            for name in (node.image, *node.build.tags):
                repo, tag = normalize_ref(name)
                self.exact.setdefault((repo, tag or "latest"), node.name)
                self.by_repo.setdefault(repo, set()).add(node.name)

    def lookup(self, ref: str) -> str | None:
        repo, tag = normalize_ref(ref)
        hit = self.exact.get((repo, tag or "latest"))
        if hit is not None or tag is not None:
            return hit
        candidates = self.by_repo.get(repo, set())
        return next(iter(candidates)) if len(candidates) == 1 else None


def find_edges(
    stack: Stack, files: Mapping[str, BuildFiles], external: dict[str, list[str]] | None = None
) -> list[Edge]:
    """All edges; `external` (when given) receives each node's image references no node produces."""
    nodes = stack.nodes
    index = _ImageIndex(nodes.values())
    edges: list[Edge] = []
    outside: dict[str, list[str]] = {name: [] for name in nodes}
    for node in nodes.values():
        info = files[node.name].info
        if info is not None:
            refs: list[ImageRef] = info.image_refs
            for ref in refs:
                if ref.ref in node.build.additional_contexts:
                    continue  # a named context, not an image
                producer = index.lookup(ref.ref)
                if producer is None:
                    outside[node.name].append(ref.ref)
                elif producer != node.name:
                    edges.append(
                        Edge(producer, node.name, ref.via, f"{ref.ref} (Dockerfile line {ref.line})")
                    )
        for context_name, value in node.build.additional_contexts.items():
            producer = None
            for prefix in ("service:", "target:"):
                if value.startswith(prefix):
                    producer = value[len(prefix) :]
                    producer = producer if producer in nodes else None
            if value.startswith("docker-image://"):
                producer = index.lookup(value[len("docker-image://") :])
                if producer is None:
                    outside[node.name].append(value[len("docker-image://") :])
            if producer is not None and producer != node.name:
                edges.append(Edge(producer, node.name, "additional_contexts", f"{context_name}={value}"))
        for dep in node.rules.depends_on:
            edges.append(Edge(dep, node.name, "depends_on", "rules"))
    for artifact in nodes.values():
        if artifact.output_dest is None:
            continue
        for consumer in nodes.values():
            why = reads_generated(consumer, files[consumer.name], artifact.output_dest)
            if consumer.name != artifact.name and why is not None:
                edges.append(
                    Edge(artifact.name, consumer.name, "artifact", f"{artifact.output_dest} ({why})")
                )
    for stamp in stack.stamps.values():
        for consumer in nodes.values():
            why = reads_generated(consumer, files[consumer.name], stamp.path)
            if consumer.name != stamp.source and why is not None:
                edges.append(Edge(stamp.source, consumer.name, "stamp", f"{stamp.path} ({why})"))
    if external is not None:
        external.update({name: sorted(set(refs)) for name, refs in outside.items()})
    return sorted(set(edges), key=lambda e: (e.source, e.target, e.via))


def reads_generated(node: Node, files: BuildFiles, path: str) -> str | None:
    """How `node`'s build reads `path` (an artifact's output or a stamp, absolute), None when it surely does
    not: the path is not sent, or it lies in the main context where no source of the Dockerfile meets it. A build
    that reads the whole context reads it; the answer says why. (What a base image's ONBUILD triggers read is
    known only to the keys stage, which refuses a plan whose triggers read a generated path with no edge.)"""
    if not files.sees(path):
        return None
    for label, (folder, _) in files.contexts.items():
        if label != MAIN and inside(path, folder):
            return f"in the additional context {label}"
    if not node.rules.narrow:
        return "the whole context counts: rules: hash.narrow is false"
    if files.reads is None:
        return "the whole context counts: no Dockerfile to analyse"
    if files.reads.fallback is not None:
        return f"the whole context counts: {files.reads.fallback}"
    folder = files.contexts[MAIN][0]
    relative = os.path.relpath(path, folder).replace(os.sep, "/")
    for source in files.reads.sources:
        if source_meets(source, relative):
            return f"line {source.line}: {source.instruction} {source.path or '.'}"
    return None


class Dag:
    """The few DAG operations planner needs (successors, predecessors, ancestors, topological generations),
    without importing networkx on every run: its import cost more than the whole graph stage. They are
    checked against networkx on random graphs (tests/unit/test_graph.py); a cycle's report is networkx's."""

    def __init__(self, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> None:
        self._succ: dict[str, dict[str, None]] = {}
        self._pred: dict[str, dict[str, None]] = {}
        self._edges: list[tuple[str, str]] = []
        for node in nodes:
            self._add_node(node)
        for source, target in edges:
            self._add_node(source)
            self._add_node(target)
            self._succ[source][target] = None
            self._pred[target][source] = None
            self._edges.append((source, target))

    def _add_node(self, node: str) -> None:
        if node not in self._succ:
            self._succ[node] = {}
            self._pred[node] = {}

    def __contains__(self, node: object) -> bool:
        return node in self._succ

    def __iter__(self) -> Iterator[str]:
        return iter(self._succ)

    def successors(self, node: str) -> Iterator[str]:
        return iter(self._succ[node])

    def predecessors(self, node: str) -> Iterator[str]:
        return iter(self._pred[node])

    def ancestors(self, node: str) -> set[str]:
        """Every node with a path to `node` (not `node` itself)."""
        seen: set[str] = set()
        todo = list(self._pred[node])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self._pred[current])
        seen.discard(node)
        return seen

    def generations(self) -> list[list[str]] | None:
        """Kahn's levels: each holds the nodes whose predecessors are all in earlier levels; None on a cycle."""
        waiting = {node: len(preds) for node, preds in self._pred.items()}
        level = [node for node, count in waiting.items() if count == 0]
        levels: list[list[str]] = []
        placed = 0
        while level:
            levels.append(level)
            placed += len(level)
            following = []
            for node in level:
                for successor in self._succ[node]:
                    waiting[successor] -= 1
                    if waiting[successor] == 0:
                        following.append(successor)
            level = following
        return levels if placed == len(self._succ) else None

    def find_cycle(self) -> list[tuple[str, str]]:
        """A cycle as networkx reports it (the error path only, so networkx is imported only then)."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self._succ)
        graph.add_edges_from(self._edges)
        return [(a, b) for a, b in nx.find_cycle(graph)]


class BuildGraph:
    """A DAG of nodes; `levels()` are the sets that can run together. `files` holds what each node's build
    reads (buildfiles.py), read once for the graph, the keys and apply."""

    def __init__(
        self,
        stack: Stack,
        edges: list[Edge],
        external: dict[str, list[str]] | None = None,
        files: Mapping[str, BuildFiles] | None = None,
    ) -> None:
        self.stack = stack
        self.files = dict(files) if files is not None else read_all(stack.nodes)
        self.external = {
            name: (external or {}).get(name, []) for name in stack.nodes
        }  # base images from outside
        self.nodes = stack.nodes
        self.edges = edges
        self.dag = Dag(sorted(self.nodes), [(edge.source, edge.target) for edge in edges])
        self._levels = self._check_acyclic()

    def _check_acyclic(self) -> list[list[str]]:
        levels = self.dag.generations()
        if levels is not None:
            return [sorted(level) for level in levels]
        cycle = self.dag.find_cycle()
        vias = {(e.source, e.target): e.via for e in self.edges}
        steps = [f"{a} -[{vias[(a, b)]}]-> {b}" for a, b in cycle]
        first: Location | None = self.nodes[cycle[0][0]].location
        raise GraphError("dependency cycle: " + ", ".join(steps), first)

    def select(self, names: Iterable[str]) -> BuildGraph:
        """The selected nodes and everything they need; unknown names are a usage error."""
        wanted = list(names)
        if not wanted:
            return self
        unknown = [n for n in wanted if n not in self.nodes]
        if unknown:
            raise UsageError(
                f"unknown node(s) {', '.join(unknown)}; buildable nodes: {', '.join(sorted(self.nodes)) or 'none'}"
            )
        keep = set(wanted)
        for name in wanted:
            keep |= self.dag.ancestors(name)
        sub = Stack(
            self.stack.compose,
            self.stack.rules,
            self.stack.rules_file,
            {n: self.nodes[n] for n in sorted(keep)},
            {k: s for k, s in self.stack.stamps.items() if s.source in keep},
        )
        return BuildGraph(
            sub,
            [e for e in self.edges if e.source in keep and e.target in keep],
            self.external,
            {n: self.files[n] for n in keep},
        )

    def levels(self) -> list[list[str]]:
        return [list(level) for level in self._levels]

    def producer(self, ref: str) -> str | None:
        """The node that produces an image reference (as FROM names it), or None: an image from outside."""
        return _ImageIndex(self.stack.nodes.values()).lookup(ref)

    def upstream(self, name: str) -> list[str]:
        """Direct predecessors, sorted."""
        return sorted(self.dag.predecessors(name))

    def order(self) -> list[str]:
        return [name for level in self.levels() for name in level]


def build_graph(stack: Stack) -> BuildGraph:
    files = read_all(stack.nodes)
    external: dict[str, list[str]] = {}
    edges = find_edges(stack, files, external)
    return BuildGraph(stack, edges, external, files)
