"""The planning pipeline: load → graph → keys → observe → decide → Plan. Side effects: reads only
(plus the local cache of stat records and manifests)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.compose.options import ProjectOptions
from planner.decide import Forcing, decide
from planner.engine.daemon import close_all
from planner.graph import BuildGraph, build_graph
from planner.keys.compute import Manifest, compute_keys
from planner.keys.manifests import ManifestStore
from planner.keys.statcache import StatCache, open_store
from planner.localcache import default_cache_dir
from planner.plan_model import Plan, PlanNode, Reason, Transfer
from planner.redact import mask_plan
from planner.stack import Stack, load_stack


@dataclass
class Planned:
    graph: BuildGraph
    manifests: dict[str, Manifest]
    plan: Plan
    observation: Any = None
    registry_refs: dict[str, str] = field(default_factory=dict)


def summarize(nodes: Sequence[PlanNode]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for node in nodes:
        counts[node.action] += 1
        for transfer in node.transfers:
            if transfer.mode != "none":
                counts[f"transfer-{transfer.mode}"] += 1
    return dict(sorted(counts.items()))


def offline_nodes(graph: BuildGraph, manifests: dict[str, Manifest]) -> list[PlanNode]:
    nodes = []
    for name in graph.order():
        node = graph.nodes[name]
        reasons = [Reason(code="offline", detail="daemons and registry not queried")]
        unresolved = [ref for ref, identity in manifests[name].bases.items() if identity == "unresolved"]
        if unresolved:
            reasons.append(Reason(code="base-unresolved", detail=", ".join(unresolved)))
        transfers = [
            Transfer(destination=d, mode="unknown", reason="offline") for d in node.rules.destinations
        ]
        nodes.append(
            PlanNode(
                name=name,
                kind=node.kind,
                image=node.image,
                key=manifests[name].key,
                action="unknown",
                needs=graph.upstream(name),
                reasons=reasons,
                transfers=transfers if node.kind == "image" else [],
            )
        )
    return nodes


def make_plan(
    options: ProjectOptions,
    rules: str | None,
    selected: Sequence[str],
    offline: bool,
    forcing: Forcing | None = None,
    cache_dir: Path | None = None,
    stack: Stack | None = None,
) -> Planned:
    stack = stack or load_stack(options, rules)
    graph = build_graph(stack).select(selected)
    store = open_store(cache_dir or default_cache_dir(dict(options.environ)))
    cache = StatCache(None, store=store)
    manifest_store = ManifestStore(store)
    daemons: dict[str, Any] = {}
    registry = None
    try:
        if offline:
            manifests = compute_keys(graph, cache, dict(stack.compose.environment))
            manifest_store.put_all(manifests)
            nodes = offline_nodes(graph, manifests)
            plan = Plan(
                project=stack.compose.name,
                offline=True,
                nodes=nodes,
                levels=graph.levels(),
                summary=summarize(nodes),
            )
            return Planned(graph, manifests, mask_plan(plan, graph))
        from planner.apply.artifacts import artifact_current
        from planner.engine.daemon import LOCAL, Daemon
        from planner.observe import destinations_of, make_registry, observe

        daemons = {name: Daemon(name, url) for name, url in destinations_of(graph).items()}
        registry = make_registry(graph)
        manifests = compute_keys(
            graph, cache, dict(stack.compose.environment), resolve_base=_resolver(daemons[LOCAL])
        )
        manifest_store.put_all(manifests)
        registry_refs = {
            name: registry.ref(node.image, manifests[name].key)
            for name, node in graph.nodes.items()
            if registry is not None and node.kind == "image" and node.image
        }
        observation = observe(
            graph, manifests, daemons, registry, lambda node, key: artifact_current(store, node, key)
        )
        previous = {name: manifest_store.get(key) for name, key in observation.previous_keys.items()}
        nodes = decide(
            graph.nodes, graph.order(), {n: graph.upstream(n) for n in graph.nodes}, manifests, observation,
            registry_refs, previous, forcing or Forcing(), registry is not None,
            share=stack.rules.registry is not None and stack.rules.registry.share,
        )  # fmt: skip
        observed = {name: view.error or "ok" for name, view in observation.daemons.items()}
        if observation.registry is not None:
            registry_state = observation.registry.error or "ok"
            if not observation.registry.checked:
                registry_state = "not queried (every destination holds its keys)"
            observed[f"registry({observation.registry.host})"] = registry_state
        plan = Plan(
            project=stack.compose.name, offline=False, nodes=nodes, levels=graph.levels(),
            summary=summarize(nodes), observed=observed,
        )  # fmt: skip
        return Planned(graph, manifests, mask_plan(plan, graph), observation, registry_refs)
    finally:
        close_all(daemons.values(), registry, store)


def _resolver(daemon: Any) -> Any:
    """Base images resolve to the local daemon's image IDs; an unreachable daemon leaves them `unresolved`."""
    from planner.errors import PlannerError

    def resolve(ref: str) -> str | None:
        try:
            return daemon.image_id(ref)  # type: ignore[no-any-return]
        except PlannerError:
            return "unresolved"

    return resolve
