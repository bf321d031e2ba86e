"""The planning pipeline: load → graph → keys → (observe → decide) → Plan. Pure data in, data out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from planner.compose.options import ProjectOptions
from planner.graph import BuildGraph, build_graph
from planner.keys.compute import Manifest, compute_keys
from planner.keys.statcache import StatCache, default_cache_dir
from planner.plan_model import Plan, PlanNode, Reason, Transfer
from planner.stack import load_stack


@dataclass
class Planned:
    graph: BuildGraph
    manifests: dict[str, Manifest]
    plan: Plan


def summarize(nodes: Sequence[PlanNode]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for node in nodes:
        counts[node.action] += 1
        for transfer in node.transfers:
            counts[f"transfer-{transfer.mode}"] += 1
    return dict(sorted(counts.items()))


def offline_plan(graph: BuildGraph, manifests: dict[str, Manifest]) -> Plan:
    nodes = [
        PlanNode(
            name=name,
            kind=graph.nodes[name].kind,
            image=graph.nodes[name].image,
            key=manifests[name].key,
            action="unknown",
            needs=graph.upstream(name),
            reasons=[Reason(code="offline", detail="daemons and registry not queried")],
            transfers=[Transfer(destination=d, mode="unknown", reason="offline") for d in graph.nodes[name].rules.destinations]
            if graph.nodes[name].kind == "image"
            else [],
        )
        for name in graph.order()
    ]
    return Plan(project=graph.stack.compose.name, offline=True, nodes=nodes, levels=graph.levels(), summary=summarize(nodes))


def make_plan(
    options: ProjectOptions, rules: str | None, selected: Sequence[str], offline: bool
) -> Planned:
    stack = load_stack(options, rules)
    graph = build_graph(stack).select(selected)
    cache = StatCache(default_cache_dir(dict(options.environ)))
    try:
        manifests = compute_keys(graph, cache, dict(stack.compose.environment))
    finally:
        cache.close()
    del offline  # online observation arrives with the engine adapters; until then every plan is offline
    return Planned(graph, manifests, offline_plan(graph, manifests))
