"""Read-only queries: which keys each destination daemon and the registry hold, which artifacts are current.

Batched (one image listing per daemon, concurrent manifest HEADs) and tolerant: an unreachable daemon or
registry is recorded with its error for the plan to report, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from planner.base.errors import PlannerError
from planner.base.names import LOCAL
from planner.build.graph import BuildGraph
from planner.engine.daemon import Daemon, DaemonError
from planner.engine.labels import LABEL_NODE, LABEL_PROJECT
from planner.engine.observation import DaemonView, GoldenImage, GoldenView, Observation, RegistryView
from planner.engine.registry import Registry
from planner.keys.manifest import Manifest


def destinations_of(graph: BuildGraph) -> list[str]:
    """Every daemon the nodes use: `local` and each image node's destinations."""
    wanted = {LOCAL}
    for node in graph.nodes.values():
        if node.kind == "image":
            wanted.update(node.rules.destinations)
    return sorted(wanted)


def platform_matches(wanted: str, found: str) -> bool:
    """`linux/arm64` matches an image of `linux/arm64/v8`; a wanted variant must match exactly."""
    want = wanted.split("/")
    got = found.split("/")
    return want[:2] == got[:2] and (len(want) < 3 or want[2:3] == got[2:3])


KnownPlatform = Callable[[str, str], "str | None"]  # (daemon address, image ID) -> platform seen before


def _daemon_view(daemon: Daemon, wanted: dict[str, str | None], known: KnownPlatform | None) -> DaemonView:
    """What `daemon` holds, by key; an image built for another platform than its node's (declared, or the
    daemon's own) is left out: a key says what went in, the platform is checked on the image itself. An image
    ID names its config, platform included, so a platform seen before (`known`) is not asked again."""
    try:
        candidates = daemon.images_by_key()
        images = {key: found[0] for key, found in candidates.items()}
        wrong: dict[str, str] = {}
        inspected: dict[str, str] = {}
        default: str | None = None
        for key in sorted(set(images) & set(wanted)):
            want = wanted[key]
            if want is None:
                default = default or daemon.platform()
                want = default
            del images[key]
            for image in candidates[key]:  # the newest one built for the wanted platform
                found = known(daemon.where, image.image_id) if known is not None else None
                if found is None:
                    found = daemon.image_platform(image.image_id)
                    if found is not None:
                        inspected[image.image_id] = found
                if found is None or platform_matches(want, found):
                    images[key] = image
                    break
                wrong.setdefault(key, found)
            if key in images:
                wrong.pop(key, None)
        return DaemonView(daemon.name, images=images, wrong_platform=wrong, inspected=inspected)
    except PlannerError as exc:
        return DaemonView(daemon.name, error=exc.message)


def wanted_platforms(graph: BuildGraph, manifests: dict[str, Manifest]) -> dict[str, str | None]:
    """Per image key, the platform its build targets: the one declared, or None for the daemon's own."""
    wanted: dict[str, str | None] = {}
    for name, node in graph.nodes.items():
        if node.kind == "image":
            platforms = node.build.platforms
            wanted[manifests[name].key] = platforms[0] if len(platforms) == 1 else None
    return wanted


def _registry_view(registry: Registry, refs: list[str]) -> RegistryView:
    try:
        present = registry.has_many(refs)  # an unreachable registry fails the first HEAD
    except PlannerError as exc:
        return RegistryView(registry.host, error=exc.message)
    return RegistryView(registry.host, present=frozenset(r for r, ok in present.items() if ok))


def previous_keys(graph: BuildGraph, local: DaemonView, manifests: dict[str, Manifest]) -> dict[str, str]:
    """Per node, the key of the build present at home when it is not the current one: the image carrying the
    node's name (what `compose up` runs), else the newest image labelled with the node. (Creation times alone
    mislead: BuildKit stamps an image with when its build began, not when it finished.)"""
    project = graph.stack.compose.name
    found: dict[str, tuple[bool, int, str]] = {}
    for image in local.images.values():
        labels: dict[str, Any] = image.labels
        node = labels.get(LABEL_NODE)
        if node not in manifests or image.key == manifests[node].key:
            continue
        named = bool(set(graph.nodes[node].image_names()) & set(image.tags)) if node in graph.nodes else False
        if not named and labels.get(LABEL_PROJECT) != project:
            continue
        rank = (named, image.created, image.key)
        if node not in found or rank > found[node]:
            found[node] = rank
    return {node: key for node, (_, _, key) in found.items()}


def _needs_registry(
    graph: BuildGraph, manifests: dict[str, Manifest], views: dict[str, DaemonView]
) -> list[str]:
    """Image nodes missing at some destination (or at home): only those can use the registry."""
    wanted = []
    for name, node in graph.nodes.items():
        if node.kind != "image" or not node.image:
            continue
        key = manifests[name].key
        homes = [LOCAL, *node.rules.destinations]
        if any(not views[d].reachable or not views[d].has(key) for d in homes if d in views):
            wanted.append(name)
    return wanted


def observe(
    graph: BuildGraph,
    manifests: dict[str, Manifest],
    daemons: dict[str, Daemon],
    registry: Registry | None,
    refs: dict[str, str] | None = None,
    artifact_check: Any = None,
    share: bool = False,
    goldens: Mapping[str, str] | None = None,
    known_platform: KnownPlatform | None = None,
) -> Observation:
    """Daemons first (concurrently); the registry for the images some destination lacks and, where the rules
    share builds, for every ref: a HEAD per manifest, in parallel, which a memo replays (issue 32: a record of
    past pushes let a manifest deleted from the registry stay missing, while the plan said it was shared)."""
    platforms = wanted_platforms(graph, manifests)
    with ThreadPoolExecutor(max_workers=len(daemons)) as pool:
        views = {
            name: pool.submit(_daemon_view, daemon, platforms, known_platform)
            for name, daemon in daemons.items()
        }
        daemon_views = {name: future.result() for name, future in views.items()}
    registry_view = None
    if registry is not None:
        refs = refs or {}
        wanted = {refs[n] for n in _needs_registry(graph, manifests, daemon_views) if n in refs}
        if share:
            wanted |= set(refs.values())  # observed, never remembered: a deleted manifest is pushed again
        registry_view = (
            _registry_view(registry, sorted(wanted)) if wanted else RegistryView(registry.host, checked=False)
        )
    artifacts = {}
    if artifact_check is not None:
        for name, node in graph.nodes.items():
            if node.kind == "artifact":
                artifacts[name] = bool(artifact_check(node, manifests[name].key))
    local = daemon_views.get(LOCAL, DaemonView(LOCAL, error="not queried"))
    stamps = {
        name: _holds(stamp.path, stamp.text(manifests[stamp.source].key, graph.nodes[stamp.source]))
        for name, stamp in graph.stack.stamps.items()
    }
    daemon_views, layers = _delivery_layers(graph, manifests, daemons, daemon_views)
    return Observation(
        daemon_views, registry_view, artifacts, previous_keys(graph, local, manifests), stamps,
        shared=frozenset(), goldens=tuple(golden_view(d, p) for d, p in sorted((goldens or {}).items())),
        layers=layers,
    )  # fmt: skip


def _delivery_layers(
    graph: BuildGraph,
    manifests: dict[str, Manifest],
    daemons: dict[str, Daemon],
    views: dict[str, DaemonView],
) -> tuple[dict[str, DaemonView], dict[str, tuple[tuple[str, int | None], ...]]]:
    """For each image the session daemon holds and a destination lacks: its layers with their sizes, and the
    layer chains each such destination holds, so the plan can say what a delivery moves. Read only on that
    path (a no-op plan asks nothing more); a daemon that cannot answer leaves the figure out, nothing else."""
    local = views.get(LOCAL)
    if local is None or not local.reachable or LOCAL not in daemons:
        return views, {}
    images: dict[str, str] = {}
    lacking: set[str] = set()
    for name, node in graph.nodes.items():
        key = manifests[name].key
        if node.kind != "image" or not local.has(key):
            continue
        missing = [
            d for d in node.rules.destinations
            if d != LOCAL and d in views and d in daemons and views[d].reachable and not views[d].has(key)
        ]  # fmt: skip
        if missing:
            images[key] = local.images[key].image_id
            lacking.update(missing)
    from planner.engine.layers import held_chains  # only on the delivery path

    layers: dict[str, tuple[tuple[str, int | None], ...]] = {}
    try:
        for key, image_id in images.items():
            layers[key] = tuple(daemons[LOCAL].layers(image_id) or ())
        views = dict(views)
        for destination in sorted(lacking):
            held = held_chains(daemons[destination])
            views[destination] = replace(views[destination], chains=frozenset(held))
    except DaemonError:
        return views, layers
    return views, layers


def _holds(path: str, text: str) -> bool:
    """Whether a stamp file already holds `text` (read-only)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text
    except (OSError, UnicodeDecodeError):
        return False


def golden_view(destination: str, path: str) -> GoldenView:
    """The current version of the golden data root at `path`, from its manifest; an unreadable one is an error
    the plan reports."""
    from pathlib import Path

    from planner.engine.golden import current

    try:
        version = current(Path(path))
    except PlannerError as exc:
        return GoldenView(destination, path, error=exc.message)
    images = tuple(GoldenImage(i.id, i.key, i.node, i.names) for i in version.images())
    inputs = version.manifest.get("inputs") or {}
    return GoldenView(
        destination, path, version.id, version.created, images=images,
        inputs=dict(inputs) if isinstance(inputs, dict) else {},
    )  # fmt: skip
