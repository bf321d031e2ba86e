"""The decision (pure): per node skip | build | pull, per destination none | tag | registry | tarball, with
reasons, and the steps that carry them out.

This is the only place planner decides anything: `apply` maps the steps one to one onto executor steps and
`warm` runs the subset that only pulls, so `planner plan` tells the whole truth about both. Judged at each
destination, never at the source: an image present locally still travels to a sandbox that lacks it, and a
sandbox that holds the key gets nothing even when the local daemon lost it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from planner.base.layer_chain import chain_ids
from planner.base.names import LOCAL
from planner.build.stack import Node, StampSpec
from planner.engine.labels import LABEL_KEY
from planner.engine.observation import DaemonView, Observation, Reach
from planner.keys.compute import UNRESOLVED
from planner.keys.manifest import Manifest
from planner.plan.manifest_diff import diff_manifests, reasons_from
from planner.plan.model import (
    SHARE,
    Action,
    GoldenChange,
    GoldenNode,
    GoldenReport,
    PlanNode,
    PlanStep,
    Reason,
    Transfer,
    TransferMode,
)


@dataclass(frozen=True)
class Forcing:
    """Builds the user forces: `--no-cache` for all nodes (`everything`) or some."""

    everything: bool = False
    nodes: frozenset[str] = frozenset()

    def forces(self, name: str) -> bool:
        return self.everything or name in self.nodes


def _change_reasons(
    node: Node, previous: Manifest | None, current: Manifest, had_previous_key: bool
) -> list[Reason]:
    if previous is not None:
        reasons = reasons_from(diff_manifests(previous, current))
        return reasons or [
            Reason(code="key-changed", detail="inputs hash differently (planner version change?)")
        ]
    if had_previous_key:
        return [
            Reason(
                code="inputs-changed", detail="the previous build's manifest is not in this machine's cache"
            )
        ]
    if node.kind == "artifact":
        return [Reason(code="new", detail="no output on disk for this key")]
    return [Reason(code="new", detail="no image with this key here or in the registry")]


@dataclass(frozen=True)
class BuildRoute:
    """How the Engine API builder must build a node, as the plan states it and apply's builder follows.

    BuildKit gets the context through a BuildKit session (the docker CLI's way: exact, the Dockerfile from a
    source of its own), or as a tar it fetches from this host's loopback (`builder: {context: tar}`, or when the
    daemon opens no session; only a daemon on a local socket shares that loopback). Over a tar, dockerd 20.10's
    BuildKit applies no ignore file, so a Dockerfile that is not among the sent entries (inline, outside the
    context, excluded by the ignore file) and must be injected would reach `COPY .`; the classic builder
    (`version=1`) drops it as the docker CLI makes it do. So where neither a session nor a loopback tar will do,
    the build takes the classic builder, unless the Dockerfile uses what only BuildKit builds alike: then it is
    refused (`problem`) before anything is sent."""

    method: Literal["classic"] | None = None  # the build step's: the classic builder from the start
    fallback: Literal["classic"] | None = None  # without a BuildKit session: the classic builder, not a tar
    detail: str = ""
    problem: str | None = None  # builder-unsupported


def build_route(
    name: str,
    builder_kind: str,
    context: str,
    injected: str | None,
    needs_buildkit: str | None,
    reach: Reach = "unix",
) -> BuildRoute:
    """`context`: the rules' `builder.context` (session | tar); `injected`: why the Dockerfile is not sent (None:
    it is); `needs_buildkit`: the first construct the classic builder would build differently; `reach`: how
    planner reaches the building daemon (engine.http.reach)."""
    if builder_kind != "docker":
        return BuildRoute()
    if reach == "other":
        why = "the daemon is reached over TLS or ssh, where planner opens no BuildKit session"
        if needs_buildkit is None:
            return BuildRoute(method="classic", detail=f"classic builder: {why}")
        return BuildRoute(
            problem=f"{name}: needs BuildKit ({needs_buildkit}), and {why}; the classic builder would not build "
            "it alike; reach the daemon over its unix socket or plain TCP"
        )
    # without a session: a tar over loopback where the daemon shares it and sees no injected Dockerfile
    tar_will_do = reach == "unix" and injected is None
    if context == "session":
        # no session at apply time: the classic builder where it builds alike, else the build is refused
        if tar_will_do or needs_buildkit is not None:
            return BuildRoute()
        return BuildRoute(fallback="classic")
    if tar_will_do:
        return BuildRoute()
    why = (
        f"the Dockerfile is not sent ({injected}), and BuildKit over a context tar would show it to COPY"
        if reach == "unix"
        else "the daemon is reached over TCP and cannot fetch a context tar from this host's loopback"
    )
    if needs_buildkit is None:
        return BuildRoute(method="classic", detail=f"classic builder: {why}")
    return BuildRoute(
        problem=f"{name}: needs BuildKit ({needs_buildkit}), but {why} (`builder: {{context: tar}}`); the classic "
        "builder cannot build it alike; use `builder: {context: session}`"
    )


def builder_problem(node: Node, builder_kind: str, route: BuildRoute | None = None) -> Reason | None:
    """What the Engine API builder (BuildKit inside dockerd, `POST /build`) cannot drive: reported by the plan,
    and apply refuses to start (exit 2) rather than failing halfway."""
    if builder_kind != "docker":
        return None
    if route is not None and route.problem is not None:
        return Reason(code="builder-unsupported", detail=route.problem)
    build = node.build
    needs = [
        what
        for what, used in (
            ("additional_contexts", build.additional_contexts), ("build secrets", build.secrets),
            ("ssh", build.ssh), ("cache_to", build.cache_to), ("several platforms", len(build.platforms) > 1),
        )
        if used
    ]  # fmt: skip
    if not needs:
        return None
    detail = f"{node.name}: {', '.join(needs)} need BuildKit through buildx, which the Engine API builder cannot drive"
    return Reason(code="builder-unsupported", detail=detail)


def decide_action(
    node: Node,
    manifest: Manifest,
    observation: Observation,
    registry_ref: str | None,
    previous: Manifest | None,
    forcing: Forcing,
) -> tuple[Action, list[Reason]]:
    """What to do at the home daemon (local) for one node."""
    if observation.offline:
        reasons = [Reason(code="offline", detail="daemons and registry not queried")]
        unresolved = [ref for ref, identity in manifest.bases.items() if identity == UNRESOLVED]
        if unresolved:
            reasons.append(Reason(code="base-unresolved", detail=", ".join(unresolved)))
        return "unknown", reasons
    if node.rules.skip:
        return "skip", [Reason(code="rules-skip", detail="rules say never build this node")]
    if node.rules.always:
        return "build", [Reason(code="forced", detail="rules: always")]
    if forcing.forces(node.name):
        return "build", [Reason(code="forced", detail="--no-cache")]
    had_previous = node.name in observation.previous_keys
    if node.kind == "artifact":
        if observation.artifacts.get(node.name):
            return "skip", [Reason(code="present", detail="output on disk holds this key")]
        return "build", _change_reasons(node, previous, manifest, had_previous)
    local = observation.daemons[LOCAL]
    if not local.reachable:
        return "unknown", [Reason(code="daemon-unreachable", detail=f"{LOCAL}: {local.error}")]
    if local.has(manifest.key):
        return "skip", [Reason(code="present", detail=f"{LOCAL} holds an image with this key")]
    wrong = local.wrong_platform.get(manifest.key)
    registry = observation.registry
    if (
        registry_ref is not None
        and registry is not None
        and registry.reachable
        and registry_ref in registry.present
    ):
        return "pull", [Reason(code="in-registry", detail=registry_ref)]
    reasons = _change_reasons(node, previous, manifest, had_previous)
    if wrong is not None:
        reasons = [Reason(code="wrong-platform", detail=f"{LOCAL} holds this key built for {wrong}")]
    if registry is not None and not registry.reachable:
        reasons.append(Reason(code="registry-unreachable"))
    return "build", reasons


def decide_transfers(
    node: Node,
    key: str,
    action: Action,
    observation: Observation,
    registry_configured: bool,
    share: bool = False,
    ref: str | None = None,
    codec: Literal["none", "gzip"] = "none",
) -> list[Transfer]:
    """How the image reaches each of its destinations (and, with `share`, the registry: after a build, or
    when an image built here earlier was never shared, e.g. because its push failed). `codec`: the registry's
    (`none`: planner's push reads the session daemon's export; `gzip`: dockerd pushes, without an export)."""
    if node.kind != "image":
        return []
    if observation.offline:
        return [Transfer(destination=d, mode="unknown", reason="offline") for d in node.rules.destinations]
    transfers = []
    registry = observation.registry
    usable = registry is not None and registry.reachable
    if share and action == "build" and registry_configured:
        transfers.append(
            Transfer(destination=SHARE, mode="registry" if usable else "unknown",
                     reason="push the build for other sessions" if usable else "registry unreachable: not shared")
        )  # fmt: skip
    elif (
        share
        and action == "skip"
        and ref is not None
        and registry is not None
        and ref not in observation.shared
    ):
        if not usable:
            transfers.append(
                Transfer(destination=SHARE, mode="unknown", reason="registry unreachable: not shared")
            )
        elif registry.checked and ref not in registry.present:
            transfers.append(
                Transfer(
                    destination=SHARE,
                    mode="registry",
                    reason="the registry lacks this build (never shared, or deleted there): push it",
                )
            )
    registry_ok = registry_configured and registry is not None and registry.reachable
    for destination in node.rules.destinations:
        if destination == LOCAL:
            if action == "pull":
                transfers.append(
                    Transfer(destination=LOCAL, mode="registry", reason="pulled from the registry")
                )
            elif action == "skip":
                transfers.append(_named(node, LOCAL, observation, key))
            else:
                transfers.append(Transfer(destination=LOCAL, mode="none", reason="built here"))
            continue
        view = observation.daemons.get(destination)
        if view is None or not view.reachable:
            error = view.error if view is not None else "not queried"
            transfers.append(
                Transfer(destination=destination, mode="unknown", reason=f"unreachable: {error}")
            )
            continue
        if view.has(key):
            transfers.append(_named(node, destination, observation, key))
            continue
        served = action == "pull" or (
            ref is not None and registry_ok and registry is not None and ref in registry.present
        )
        # dockerd's own push (gzip) needs no export and skips the layers it pushed before, and a destination that
        # pulled the earlier builds skips the layers it pulled before (a daemon knows a registry blob by the
        # digest it pulled or pushed it under; a streamed delivery teaches it nothing): through the registry
        served = served or (codec == "gzip" and registry_ok and share and action == "build")
        mode, reason = _transfer_mode(node.rules.transfer, registry_configured, registry_ok, served)
        layers, size = _moves(observation, key, view) if mode in ("tarball", "registry") else (None, None)
        transfers.append(
            Transfer(destination=destination, mode=mode, reason=reason, layers=layers, size=size)
        )
    return transfers


def _moves(observation: Observation, key: str, view: DaemonView) -> tuple[int | None, int | None]:
    """What a delivery moves, predicted: the layers of the session daemon's image whose chain the destination
    lacks (a load or a pull skips the others), and their bytes where every size is known."""
    layers = observation.layers.get(key)
    if not layers or view.chains is None:
        return None, None
    chains = chain_ids([diff for diff, _ in layers])
    missing = [size for (_, size), chain in zip(layers, chains, strict=True) if chain not in view.chains]
    known = [size for size in missing if size is not None]
    return len(missing), sum(known) if len(known) == len(missing) else None


def _named(node: Node, destination: str, observation: Observation, key: str) -> Transfer:
    """Present by key; compose there runs it by name, so a name that is missing (or points at another build)
    is put back: mode `tag`, nothing moves."""
    view = observation.daemons[destination]
    unnamed = sorted(set(node.image_names()) - set(view.images[key].tags))
    if unnamed:
        return Transfer(
            destination=destination, mode="tag", reason=f"present, not named {', '.join(unnamed)}"
        )
    return Transfer(destination=destination, mode="none", reason="present")


def _transfer_mode(rule: str, configured: bool, reachable: bool, served: bool) -> tuple[TransferMode, str]:
    """`served`: the registry holds the key, or will without an export (the session daemon pulls it from there
    in this apply, or dockerd pushes the build to a gzip registry).

    `auto` goes through the registry only where it can serve the key so: the destination then pulls the layers
    it lacks and nothing is exported. Otherwise the image is exported from the session daemon anyway, and
    streaming the export into the destination (only the layers it lacks) beats a registry round trip, which
    writes every layer to the registry's disk and reads it back (bench/transfer.py: 13.3 s against 29.5 s for
    a 1 GB image); an uncompressed push that shares the build reads the same export."""
    if rule == "tarball":
        return "tarball", "missing; rules: transfer tarball"
    if rule == "registry":
        if not configured:
            return "unknown", "missing; rules ask for the registry but none is configured"
        if not reachable:
            return "unknown", "missing; rules ask for the registry, which is unreachable"
        return "registry", "missing; only layers the destination lacks move"
    if served:
        return "registry", "missing; pulled through the registry: only layers the destination lacks move"
    if reachable:
        return "tarball", "missing; streamed from the session daemon: only layers the destination lacks move"
    if configured:
        return "tarball", "missing; registry unreachable, streaming save | load"
    return "tarball", "missing; no registry configured, streaming save | load"


def decide(
    nodes: Mapping[str, Node],
    order: Collection[str],
    needs: Mapping[str, list[str]],
    manifests: Mapping[str, Manifest],
    observation: Observation,
    registry_refs: Mapping[str, str],
    previous: Mapping[str, Manifest | None],
    forcing: Forcing,
    registry_configured: bool,
    share: bool = False,
    builder_kind: str = "docker",
    codec: Literal["none", "gzip"] = "none",
    routes: Mapping[str, BuildRoute] | None = None,
) -> list[PlanNode]:
    """`routes`: per node, how the Engine API builder builds it (`build_route`); none given: the default."""
    planned = []
    for name in order:
        node = nodes[name]
        key = manifests[name].key
        action, reasons = decide_action(
            node, manifests[name], observation, registry_refs.get(name), previous.get(name), forcing
        )
        route = (routes or {}).get(name)
        problem = builder_problem(node, builder_kind, route) if action == "build" else None
        if problem is not None:
            reasons = [*reasons, problem]
        if manifests[name].unchecked_bases and action in ("build", "unknown"):
            bases = ", ".join(manifests[name].unchecked_bases)
            reasons = [*reasons, Reason(code="onbuild-unchecked", detail=(
                f"narrowed assuming FROM {bases} has no ONBUILD trigger that reads the context (not known "
                "here: apply reads the triggers before it builds)"
            ))]  # fmt: skip
        if manifests[name].scope == "whole" and manifests[name].scope_reason:
            # the key covers the whole context: every edit in it changes the key; say why
            reasons = [*reasons, Reason(code="whole-context", detail=manifests[name].scope_reason)]
        planned.append(
            PlanNode(
                name=name,
                kind=node.kind,
                image=node.image,
                key=key,
                action=action,
                needs=list(needs[name]),
                reasons=reasons,
                transfers=decide_transfers(
                    node, key, action, observation, registry_configured, share, registry_refs.get(name), codec
                ),
            )
        )
    return planned


@dataclass(frozen=True)
class StampState:
    """A stamp, whether the file already holds the text for the current key, and the nodes that read it."""

    spec: StampSpec
    current: bool
    consumers: tuple[str, ...]


def decide_steps(
    planned: Sequence[PlanNode],
    nodes: Mapping[str, Node],
    stamps: Sequence[StampState],
    observation: Observation,
    registry_refs: Mapping[str, str],
    codec: Literal["none", "gzip"] = "gzip",
    routes: Mapping[str, BuildRoute] | None = None,
    checks: Mapping[str, Sequence[str]] | None = None,
) -> list[PlanStep]:
    """Every step apply runs, in order: per node its main step (build, export, pull, or a local name restore),
    the stamps that carry its identity (after it: a stamp never names a key whose build failed), the push it
    needs, and one step per destination that must change. A build or export step carries its node's route
    (`method: classic`, `fallback: classic`), which apply's builder follows, and the bases whose ONBUILD
    triggers apply reads before it builds (`checks`: per node, unknown when its key was made)."""
    if observation.offline:
        return []
    steps: list[PlanStep] = []
    ready: dict[str, str] = {}  # node -> the step after which its image/output is ready locally
    stamp_steps: dict[str, list[str]] = {}  # consumer node -> stamp steps it needs
    made_by = same_image(planned, nodes)
    checks = checks or {}
    for plan_node in planned:
        node = nodes[plan_node.name]
        name = node.name
        needs = [ready[n] for n in plan_node.needs if n in ready] + stamp_steps.get(name, [])
        first = made_by.get(name)
        if first is not None:
            steps = _same_image(steps, name, first, ready, plan_node, node, observation, registry_refs, codec)
            continue
        if node.kind == "artifact":
            if plan_node.action == "build":
                route = (routes or {}).get(name, BuildRoute())
                steps.append(
                    PlanStep(id=f"export:{name}", node=name, kind="export", needs=needs, destination=LOCAL,
                             path=node.output_dest, method=route.method, fallback=route.fallback,
                             check_bases=list(checks.get(name, ())),
                             detail="; ".join(filter(None, [f"{node.output_type} output", route.detail])))
                )  # fmt: skip
                ready[name] = f"export:{name}"
            steps += _stamp_steps(name, stamps, ready, stamp_steps)
            continue
        main: PlanStep | None = None
        if plan_node.action == "build":
            route = (routes or {}).get(name, BuildRoute())
            main = PlanStep(
                id=f"build:{name}", node=name, kind="build", needs=needs, destination=LOCAL,
                method=route.method, fallback=route.fallback, detail=route.detail,
                check_bases=list(checks.get(name, ())),
            )  # fmt: skip
        elif plan_node.action == "pull":
            # after what its build would need: a pull that finds the registry's copy broken builds instead
            main = PlanStep(
                id=f"pull:{name}", node=name, kind="pull", needs=needs, destination=LOCAL,
                ref=registry_refs[name], fallback="build", check_bases=list(checks.get(name, ())),
            )  # fmt: skip
        elif plan_node.action == "skip":
            local = next((t for t in plan_node.transfers if t.destination == LOCAL), None)
            if local is not None and local.mode == "tag":
                # the image is there already: naming it waits for nothing
                main = PlanStep(
                    id=f"tag:{name}",
                    node=name,
                    kind="tag",
                    destination=LOCAL,
                    image=observation.daemons[LOCAL].images[plan_node.key].image_id,
                    detail=local.reason,
                )
        if main is not None:
            steps.append(main)
            ready[name] = main.id
        steps += _stamp_steps(name, stamps, ready, stamp_steps)
        steps += _transfer_steps(
            node, plan_node, [main.id] if main else [], observation, registry_refs.get(name), codec
        )
    return steps


def same_image(planned: Sequence[PlanNode], nodes: Mapping[str, Node]) -> dict[str, str]:
    """Image nodes whose image an earlier node makes (same key, same image names: compose services sharing one
    image and build) -> that node. They get no build of their own."""
    first_of: dict[tuple[str, tuple[str, ...]], str] = {}
    made_by: dict[str, str] = {}
    for plan_node in planned:
        node = nodes[plan_node.name]
        if node.kind == "image":
            first = first_of.setdefault((plan_node.key, tuple(node.image_names())), node.name)
            if first != node.name:
                made_by[node.name] = first
    return made_by


def _same_image(
    steps: list[PlanStep],
    name: str,
    first: str,
    ready: dict[str, str],
    planned: PlanNode,
    node: Node,
    observation: Observation,
    registry_refs: Mapping[str, str],
    codec: Literal["none", "gzip"] = "gzip",
) -> list[PlanStep]:
    """A node with the same key and image names as an earlier one (compose services sharing one image and
    build) gets no build, pull or push of its own: the earlier node's steps make the image, and list it in
    `serves`; only deliveries to destinations the earlier node does not reach are added."""
    if first in ready:
        ready[name] = ready[first]
        steps = [
            s.model_copy(update={"serves": [*s.serves, name]}) if s.id == ready[first] else s for s in steps
        ]
    covered = {(s.kind, s.destination): s.id for s in steps if s.node == first}
    after = [ready[first]] if first in ready else []
    renamed: dict[str, str] = {}
    for step in _transfer_steps(node, planned, after, observation, registry_refs.get(name), codec):
        if (step.kind, step.destination) in covered:
            renamed[step.id] = covered[(step.kind, step.destination)]
            continue
        steps.append(step.model_copy(update={"needs": [renamed.get(n, n) for n in step.needs]}))
    return steps


def _stamp_steps(
    source: str, stamps: Sequence[StampState], ready: Mapping[str, str], stamp_steps: dict[str, list[str]]
) -> list[PlanStep]:
    """The stamps carrying `source`'s identity that are not current yet, after `source`'s own step."""
    steps = []
    for state in stamps:
        if state.current or state.spec.source != source:
            continue
        step_id = f"stamp:{state.spec.name}"
        steps.append(
            PlanStep(id=step_id, node=source, kind="stamp", needs=[ready[source]] if source in ready else [],
                     path=state.spec.path, detail=f"write {source}'s identity")
        )  # fmt: skip
        for consumer in state.consumers:
            stamp_steps.setdefault(consumer, []).append(step_id)
    return steps


def _transfer_steps(
    node: Node,
    planned: PlanNode,
    after: list[str],
    observation: Observation,
    ref: str | None,
    codec: Literal["none", "gzip"] = "gzip",
) -> list[PlanStep]:
    """One push when the build is shared or a destination pulls a ref the registry lacks; one step per
    destination that lacks the image or its name.

    The push moves the layers itself, uncompressed (`method: layers`), when the registry's codec is `none`
    (the default on loopback: dockerd's push gzips every layer on one thread, pure cost there), else it is
    dockerd's push (`engine`). A streamed delivery sends only the layers the destination lacks (`partial`)."""
    steps: list[PlanStep] = []
    fallback = "tarball" if node.rules.transfer == "auto" else None
    name = node.name
    registry = observation.registry
    in_registry = ref is not None and registry is not None and ref in registry.present

    def push() -> list[str]:
        if in_registry or planned.action == "pull":
            # the registry holds this key already: nothing to push, and a destination pulls it while the
            # session daemon does (its fallback, a stream of the session daemon's copy, needs that copy first)
            return []
        step_id = f"push:{name}"
        if not any(step.id == step_id for step in steps):
            steps.append(
                PlanStep(id=step_id, node=name, kind="push", needs=after, destination=SHARE, ref=ref,
                         fallback=fallback, method="layers" if codec == "none" else "engine")
            )  # fmt: skip
        return [step_id]

    for transfer in planned.transfers:
        destination = transfer.destination
        if destination == SHARE:
            if transfer.mode == "registry":
                push()
            continue  # an unshared build is no failure
        if destination == LOCAL or transfer.mode == "none":
            continue
        if transfer.mode == "unknown":
            steps.append(
                PlanStep(id=f"transfer:{name}:{destination}", node=name, kind="transfer",
                         destination=destination, mode="unknown", detail=transfer.reason)
            )  # fmt: skip
            continue
        if transfer.mode == "tag":
            steps.append(
                PlanStep(id=f"tag:{name}:{destination}", node=name, kind="tag", needs=after,
                         destination=destination, detail=transfer.reason,
                         image=observation.daemons[destination].images[planned.key].image_id)
            )  # fmt: skip
            continue
        registry_mode = transfer.mode == "registry"
        steps.append(
            PlanStep(
                id=f"transfer:{name}:{destination}", node=name, kind="transfer",
                needs=push() if registry_mode else after, destination=destination, mode=transfer.mode,
                fallback=fallback if registry_mode else None, ref=ref if registry_mode else None,
                method=None if registry_mode else "partial", detail=f"{transfer.mode} -> {destination}",
            )
        )  # fmt: skip
    return _one_export(steps)


def _one_export(steps: list[PlanStep]) -> list[PlanStep]:
    """An uncompressed push and the streamed deliveries of one node that become ready together read one
    export: on Engine 20.10 `docker save` writes the whole image before it streams, so a second reading costs
    as much as the first."""
    readers = [
        s
        for s in steps
        if (s.kind == "push" and s.method == "layers") or (s.kind == "transfer" and s.method == "partial")
    ]
    if len(readers) < 2 or len({tuple(s.needs) for s in readers}) != 1:
        return steps
    ids = [s.id for s in readers]
    return [
        s.model_copy(update={"export_with": [i for i in ids if i != s.id]}) if s.id in ids else s
        for s in steps
    ]


def decide_goldens(
    nodes: Sequence[PlanNode],
    graph_nodes: Mapping[str, Node],
    manifests: Mapping[str, Manifest],
    observation: Observation,
    golden_manifests: Mapping[str, Manifest | None],
) -> list[GoldenReport]:
    """Per golden data root, per image node that reaches its destination: present (the golden holds the current
    key: a daemon started on a clone needs nothing for it), stale (it holds the node's image under another key:
    the first apply delivers it; the changed inputs as `explain` gives them) or absent. Images are matched by the
    key label alone; an unlabelled image carrying a node's name is not trusted to be that node."""
    reports = []
    for view in observation.goldens:
        if view.error is not None:
            reports.append(GoldenReport(destination=view.destination, path=view.path, error=view.error))
            continue
        keys = {image.key for image in view.images if image.key}
        by_node: dict[str, str] = {}
        named_unlabelled: dict[str, str] = {}
        for image in view.images:
            if image.key and image.node:
                by_node.setdefault(image.node, image.key)
            elif not image.key:
                for name in image.names:
                    named_unlabelled.setdefault(name, image.id)
        serves = view.destination in observation.daemons  # a golden named by path alone serves every node
        out = []
        for node in nodes:
            spec = graph_nodes.get(node.name)
            if node.kind != "image" or spec is None:
                continue
            if serves and view.destination != LOCAL and view.destination not in spec.rules.destinations:
                continue  # the destination never receives this node
            if node.key in keys:
                out.append(
                    GoldenNode(
                        name=node.name, state="present", image=node.image, key=node.key, golden_key=node.key
                    )
                )
                continue
            golden_key = by_node.get(node.name)
            if golden_key is None:
                unlabelled = next(
                    (named_unlabelled[n] for n in spec.image_names() if n in named_unlabelled), None
                )
                note = (
                    f"the golden has {unlabelled[:19]} under the node's name but no {LABEL_KEY} label: not trusted"
                    if unlabelled
                    else "not in the golden"
                )
                out.append(
                    GoldenNode(name=node.name, state="absent", image=node.image, key=node.key, note=note)
                )
                continue
            old = golden_manifests.get(golden_key)
            changes = [] if old is None else diff_manifests(old, manifests[node.name])
            note = (
                f"{len(changes)} input(s) differ from the golden's build (key {golden_key[:12]})"
                if old is not None
                else f"the golden's build (key {golden_key[:12]}) has no input manifest here: changes unknown"
            )
            out.append(
                GoldenNode(
                    name=node.name,
                    state="stale",
                    image=node.image,
                    key=node.key,
                    golden_key=golden_key,
                    note=note,
                    changes=[GoldenChange(change=c.kind, input=c.what, name=c.name) for c in changes],
                )
            )
        reports.append(
            GoldenReport(
                destination=view.destination,
                path=view.path,
                version=view.version,
                created=view.created,
                nodes=out,
            )
        )
    return reports
