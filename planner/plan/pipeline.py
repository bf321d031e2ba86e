"""The planning pipeline, run in order: load → graph → keys → observe → decide → Plan.

Side effects: reads only, plus the local cache (stat records, snapshots, manifests). An offline plan runs the
same decide with an observation of nothing, so every plan, online or not, comes from one decider.
"""

from __future__ import annotations

import functools
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.base.deferred import later
from planner.base.paths import inside
from planner.base.refs import pinned_digest
from planner.build.buildfiles import MAIN
from planner.build.graph import BuildGraph, build_graph
from planner.build.stack import Node, Stack, load_stack
from planner.compose.options import ProjectOptions
from planner.engine.http import reach
from planner.engine.observation import Observation
from planner.keys.compute import UNRESOLVED, BaseResolver, TriggerReader, compute_keys
from planner.keys.manifest import Manifest
from planner.keys.statcache import StatCache
from planner.keys.store import Store
from planner.plan.decide import (
    BuildRoute,
    Forcing,
    StampState,
    build_route,
    decide,
    decide_goldens,
    decide_steps,
    same_image,
)
from planner.plan.model import SAME_IMAGE, Plan, PlanNode
from planner.plan.redact import mask_plan

if TYPE_CHECKING:
    from planner.engine.daemon import Daemon


@dataclass
class Planned:
    """A plan and what it was made from (apply, warm and explain read these, never decide again)."""

    graph: BuildGraph
    manifests: dict[str, Manifest]
    plan: Plan
    observation: Observation = field(default_factory=Observation.nothing)
    registry_refs: dict[str, str] = field(default_factory=dict)
    routes: dict[str, BuildRoute] = field(default_factory=dict)  # how the Engine API builder builds each node
    warnings: list[str] = field(
        default_factory=list
    )  # printed once when the plan was made (a memo replays them)


def summarize(nodes: Sequence[PlanNode], graph_nodes: Mapping[str, Node] | None = None) -> dict[str, int]:
    """Counts per action and transfer mode, as apply runs them: a node with the same key and image names as an
    earlier one (compose services sharing one image and build) counts as `same-image`, not by its action, and
    only its deliveries the earlier node does not make count (decide_steps gives it no steps of its own)."""
    counts: Counter[str] = Counter()
    made_by = same_image(nodes, graph_nodes) if graph_nodes is not None else {}
    by_name = {node.name: node for node in nodes}
    for node in nodes:
        transfers = node.transfers
        first = made_by.get(node.name)
        if first is not None:
            counts[SAME_IMAGE] += 1
            reached = {t.destination for t in by_name[first].transfers}
            transfers = [t for t in transfers if t.destination not in reached]
        else:
            counts[node.action] += 1
        for transfer in transfers:
            if transfer.mode != "none":
                counts[f"transfer-{transfer.mode}"] += 1
    return dict(sorted(counts.items()))


def make_plan(
    options: ProjectOptions,
    rules: str | None,
    selected: Sequence[str],
    offline: bool,
    forcing: Forcing | None = None,
    store: Store | None = None,
    stack: Stack | None = None,
    goldens: Mapping[str, str] | None = None,
) -> Planned:
    """`goldens`: destination -> golden data root to report on, besides those the rules name."""
    stack = stack or load_stack(options, rules)
    graph = build_graph(stack).select(selected)
    owned = store is None
    store = store or Store.for_environ(options.environ)
    try:
        named = {d: c.golden for d, c in stack.rules.destinations.items() if c.golden}
        return _plan(graph, store, offline, forcing or Forcing(), {**named, **(goldens or {})})
    finally:
        if owned:
            store.close()


def _plan(
    graph: BuildGraph, store: Store, offline: bool, forcing: Forcing, goldens: Mapping[str, str]
) -> Planned:
    stack = graph.stack
    cache = StatCache(None, store=store)
    environ = dict(stack.compose.environment)
    if offline:
        manifests = compute_keys(graph, cache, environ, base_triggers=store.base_triggers)
        later(functools.partial(store.put_manifests, manifests))
        return _decided(graph, store, manifests, Observation.nothing(), {}, forcing)
    from planner.engine.connect import open_engines
    from planner.keys.artifacts import artifact_current
    from planner.plan.observe import destinations_of, observe

    with open_engines(stack.rules, destinations_of(graph)) as engines:
        resolve, triggers = _resolver(engines.local, store)
        manifests = compute_keys(graph, cache, environ, resolve_base=resolve, base_triggers=triggers)
        later(functools.partial(store.put_manifests, manifests))
        registry = engines.registry
        registry_refs = {
            name: registry.ref(node.image, manifests[name].key)
            for name, node in graph.nodes.items()
            if registry is not None and node.kind == "image" and node.image
        }
        share = stack.rules.registry is not None and stack.rules.registry.share
        observation = observe(
            graph, manifests, engines.daemons, registry, registry_refs,
            lambda node, key: artifact_current(store, node, key), share, goldens,
            store.image_platform,
        )  # fmt: skip
        for name, view in observation.daemons.items():
            for image_id, platform in view.inspected.items():
                store.record_image_platform(engines.daemons[name].where, image_id, platform)
        if observation.registry is not None:
            for ref in observation.registry.present - observation.shared:
                store.record_shared(ref)  # seen in the registry: no need to ask again
    return _decided(graph, store, manifests, observation, registry_refs, forcing)


def _decided(
    graph: BuildGraph,
    store: Store,
    manifests: dict[str, Manifest],
    observation: Observation,
    registry_refs: dict[str, str],
    forcing: Forcing,
) -> Planned:
    rules = graph.stack.rules
    previous = {name: store.manifest(key) for name, key in observation.previous_keys.items()}
    codec = rules.registry.codec() if rules.registry is not None else "gzip"
    home = reach(None)  # the builder builds on the session daemon
    routes = {
        name: build_route(
            name,
            rules.builder.kind,
            rules.builder.context,
            files.injected_dockerfile(),
            files.needs_buildkit,
            home,
        )
        for name, files in graph.files.items()
        if name in graph.nodes
    }
    nodes = decide(
        graph.nodes, graph.order(), {n: graph.upstream(n) for n in graph.nodes}, manifests, observation,
        registry_refs, previous, forcing, rules.registry is not None,
        share=rules.registry is not None and rules.registry.share, builder_kind=rules.builder.kind, codec=codec,
        routes=routes,
    )  # fmt: skip
    stamps = [
        StampState(
            spec, observation.stamps.get(name, False), tuple(sorted(graph.dag.successors(spec.source)))
        )
        for name, spec in sorted(graph.stack.stamps.items())
    ]
    checks = {name: m.unchecked_bases for name, m in manifests.items() if m.unchecked_bases}
    steps = decide_steps(nodes, graph.nodes, stamps, observation, registry_refs, codec, routes, checks)
    goldens = decide_goldens(
        nodes, graph.nodes, manifests, observation, _golden_manifests(observation, store)
    )
    plan = Plan(
        project=graph.stack.compose.name, offline=observation.offline, nodes=nodes, levels=graph.levels(),
        summary=summarize(nodes, graph.nodes), observed=_observed(observation), steps=steps,
        goldens=goldens,
    )  # fmt: skip
    warnings = keyed_config_files(graph, manifests)
    for warning in warnings:
        sys.stderr.write(f"planner: warning: {warning}\n")
    return Planned(graph, manifests, mask_plan(plan, graph), observation, registry_refs, routes, warnings)


def keyed_config_files(graph: BuildGraph, manifests: Mapping[str, Manifest]) -> list[str]:
    """A warning per planner's own file (the rules file, a compose file) that a whole-context reader sends and
    keys: every edit of it, a comment too, changes those nodes' keys (on the real helix checkout planner.yaml sits
    in the root context)."""
    found: dict[str, list[str]] = {}
    stack = graph.stack
    own = [str(stack.rules_file)] if stack.rules_file is not None else []
    own += list(stack.compose.config_files)
    for name, manifest in manifests.items():
        files = graph.files.get(name)
        if manifest.scope not in ("whole", "all") or files is None or MAIN not in files.contexts:
            continue
        root = files.contexts[MAIN][0]
        for path in own:
            if inside(path, root) and files.sees(path):
                found.setdefault(path, []).append(name)
    return [
        f"{os.path.relpath(path, stack.project_dir)} is in the build context of {', '.join(sorted(names))}, "
        "which read the whole context: each edit of it changes their keys (add it to the context's "
        ".dockerignore, or to their rules `exclude`)"
        for path, names in sorted(found.items())
    ]


def _golden_manifests(observation: Observation, store: Store) -> dict[str, Manifest | None]:
    """The input manifests of the goldens' keys: kept with the golden at promote, else from the local cache."""
    found: dict[str, Manifest | None] = {}
    for view in observation.goldens:
        for image in view.images:
            if image.key is None or image.key in found:
                continue
            kept = view.inputs.get(image.key)
            manifest = None
            # a manifest kept before base refs were masked (no `masked_bases`) may hold a secret, even an old one
            if isinstance(kept, dict) and "masked_bases" in kept:
                try:
                    manifest = Manifest(**kept)
                except TypeError:
                    manifest = None  # written by another planner version
            found[image.key] = manifest or store.manifest(image.key)
    return found


def _observed(observation: Observation) -> dict[str, str]:
    observed = {name: view.error or "ok" for name, view in observation.daemons.items()}
    if observation.registry is not None:
        state = observation.registry.error or "ok"
        if not observation.registry.checked:
            state = "not queried (every destination holds its keys)"
        observed[f"registry({observation.registry.host})"] = state
    return observed


def _resolver(daemon: Daemon, store: Store) -> tuple[BaseResolver, TriggerReader]:
    """Base images resolve to the local daemon's image IDs; an unreachable daemon leaves them `unresolved`.
    Their ONBUILD triggers (which may read the context) come from the same inspect, or for a digest-pinned base
    the daemon does not hold from what an earlier run saw (and a pinned base seen here is remembered); unknown
    otherwise."""
    from planner.base.errors import PlannerError
    from planner.engine.daemon import onbuild_triggers

    found: dict[str, dict[str, Any] | PlannerError | None] = {}

    def inspect(ref: str) -> dict[str, Any] | PlannerError | None:
        if ref not in found:
            try:
                found[ref] = daemon.inspect(ref)
            except PlannerError as exc:
                found[ref] = exc
        return found[ref]

    def resolve(ref: str) -> str | None:
        image = inspect(ref)
        if isinstance(image, PlannerError):
            return UNRESOLVED
        return str(image["Id"]) if image else None

    def triggers(ref: str) -> list[str] | None:
        image = inspect(ref)
        if image is None or isinstance(image, PlannerError):
            return store.base_triggers(ref)
        held = onbuild_triggers(image)
        if pinned_digest(ref) is not None and store.base_triggers(ref) != held:
            later(functools.partial(store.record_base_triggers, ref, held))
        return held

    return resolve, triggers
