"""The build graph: which node must be ready before which, and why.

Edges (`from` must be ready before `to`):
- `FROM`, `COPY --from`, `RUN --mount`: the Dockerfile of `to` names the image `from` produces;
- `additional_contexts`: `service:NAME` / `target:NAME`, or `docker-image://` naming a node's image;
- `artifact`: an artifact's output lies inside `to`'s context or one of its additional contexts;
- `stamp`: a stamp carrying `from`'s identity is written inside `to`'s context;
- `depends_on`: the rules say so (compose `depends_on` is run order, not build order, and adds no edge).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from planner.dockerfile import ImageRef, parse_dockerfile
from planner.errors import InputError, Location, UsageError
from planner.keys.ignore import PatternMatcher, load_matcher
from planner.refs import normalize_ref
from planner.stack import Node, Stack

Via = Literal["FROM", "COPY --from", "RUN --mount", "additional_contexts", "artifact", "stamp", "depends_on"]


class GraphError(InputError):
    """The nodes cannot be ordered (a cycle) or a Dockerfile cannot be read."""


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


def dockerfile_text(node: Node) -> str | None:
    """The node's Dockerfile text; None for remote contexts. A missing file is an input error."""
    build = node.build
    if build.dockerfile_inline is not None:
        return build.dockerfile_inline
    if "://" in build.context or build.context.startswith(("git@", "github.com/")):
        return None
    path = Path(build.context) / (build.dockerfile or "Dockerfile")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise GraphError(f"{node.name}: Dockerfile not found: {path}", node.location) from None
    except OSError as exc:
        raise GraphError(f"{node.name}: cannot read Dockerfile {path}: {exc}", node.location) from None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def dockerfile_path(node: Node) -> Path | None:
    if node.build.dockerfile_inline is not None or not os.path.isabs(node.build.context):
        return None
    return Path(node.build.context) / (node.build.dockerfile or "Dockerfile")


class _ContextView:
    """Whether a path would be sent in a node's build contexts (main and additional), .dockerignore applied."""

    def __init__(self, node: Node) -> None:
        self.contexts: list[tuple[str, PatternMatcher]] = []
        main = node.build.context
        if os.path.isabs(main):
            self.contexts.append((main, load_matcher(Path(main), dockerfile_path(node))))
        for value in node.build.additional_contexts.values():
            if os.path.isabs(value):
                self.contexts.append((value, load_matcher(Path(value), None)))

    def sees(self, path: str) -> bool:
        for folder, matcher in self.contexts:
            if not _inside(path, folder):
                continue
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            # An excluded folder may still have re-included entries under it: keep the edge then.
            if relative == "." or matcher.would_send(relative) or matcher.descend_into(relative):
                return True
        return False


def find_edges(stack: Stack, external: dict[str, list[str]] | None = None) -> list[Edge]:
    """All edges; `external` (when given) receives each node's image references no node produces."""
    nodes = stack.nodes
    index = _ImageIndex(nodes.values())
    edges: list[Edge] = []
    outside: dict[str, list[str]] = {name: [] for name in nodes}
    for node in nodes.values():
        text = dockerfile_text(node)
        if text is not None:
            refs: list[ImageRef] = parse_dockerfile(text, node.build.args).image_refs
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
    views = {name: _ContextView(node) for name, node in nodes.items()}
    for artifact in nodes.values():
        if artifact.output_dest is None:
            continue
        for consumer in nodes.values():
            if consumer.name != artifact.name and views[consumer.name].sees(artifact.output_dest):
                edges.append(Edge(artifact.name, consumer.name, "artifact", artifact.output_dest))
    for stamp in stack.stamps.values():
        for consumer in nodes.values():
            if consumer.name != stamp.source and views[consumer.name].sees(stamp.path):
                edges.append(Edge(stamp.source, consumer.name, "stamp", stamp.path))
    if external is not None:
        external.update({name: sorted(set(refs)) for name, refs in outside.items()})
    return sorted(set(edges), key=lambda e: (e.source, e.target, e.via))


class BuildGraph:
    """A DAG of nodes; `levels()` are the sets that can run together."""

    def __init__(self, stack: Stack, edges: list[Edge], external: dict[str, list[str]] | None = None) -> None:
        self.stack = stack
        self.external = {
            name: (external or {}).get(name, []) for name in stack.nodes
        }  # base images from outside
        self.nodes = stack.nodes
        self.edges = edges
        self.dag: Any = nx.DiGraph()
        self.dag.add_nodes_from(sorted(self.nodes))
        for edge in edges:
            self.dag.add_edge(edge.source, edge.target)
        self._check_acyclic()

    def _check_acyclic(self) -> None:
        try:
            cycle = nx.find_cycle(self.dag)
        except nx.NetworkXNoCycle:
            return
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
            keep |= nx.ancestors(self.dag, name)
        sub = Stack(
            self.stack.compose,
            self.stack.rules,
            self.stack.rules_file,
            {n: self.nodes[n] for n in sorted(keep)},
            {k: s for k, s in self.stack.stamps.items() if s.source in keep},
        )
        return BuildGraph(
            sub, [e for e in self.edges if e.source in keep and e.target in keep], self.external
        )

    def levels(self) -> list[list[str]]:
        return [sorted(level) for level in nx.topological_generations(self.dag)]

    def upstream(self, name: str) -> list[str]:
        """Direct predecessors, sorted."""
        return sorted(self.dag.predecessors(name))

    def order(self) -> list[str]:
        return [name for level in self.levels() for name in level]


def build_graph(stack: Stack) -> BuildGraph:
    external: dict[str, list[str]] = {}
    edges = find_edges(stack, external)
    return BuildGraph(stack, edges, external)
