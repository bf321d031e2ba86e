"""From a plan to executable steps: stamp, build / export / pull / tag, push, and one delivery per destination.

Every step that puts an image somewhere verifies afterwards that the image there carries the node's key; a
transfer through the registry that fails falls back to streaming `save | load` (auto mode), with a warning.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.apply.artifacts import record_artifact
from planner.apply.executor import Step, StepContext
from planner.apply.export import export_image
from planner.decide import SHARE
from planner.engine.builders import INJECTED_DOCKERFILE, Builder, BuildRequest
from planner.engine.daemon import LOCAL, Daemon
from planner.engine.labels import LABEL_KEY, LABEL_NODE, LABEL_PROJECT
from planner.engine.registry import Registry
from planner.errors import PlannerError, RuntimeFailure
from planner.graph import BuildGraph, dockerfile_path, dockerfile_text
from planner.keys.compute import Manifest
from planner.keys.ignore import load_matcher
from planner.keys.walk import walk_context
from planner.observe import ref_at
from planner.plan_model import PlanNode
from planner.stack import Node, StampSpec

WarningSink = Callable[[str], None]


@dataclass
class ApplyContext:
    graph: BuildGraph
    manifests: dict[str, Manifest]
    daemons: dict[str, Daemon]
    registry: Registry | None
    builder: Builder
    store: Any
    registry_refs: dict[str, str]
    local_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> names the local image has
    no_cache: set[str] = field(default_factory=set)
    warn: WarningSink = lambda message: None
    push_failed: dict[str, str] = field(default_factory=dict)  # node -> why its push failed (auto mode)

    @property
    def project(self) -> str:
        return self.graph.stack.compose.name

    @property
    def local(self) -> Daemon:
        return self.daemons[LOCAL]


def _expected_hashes(manifest: Manifest) -> dict[str, str]:
    """Main-context file hashes the key was computed from (`f MODE HASH` lines)."""
    expected = {}
    for path, line in manifest.files.items():
        if ":" in path.split("/", 1)[0]:
            continue  # an additional context's or extra input's file
        kind, _, rest = line.partition(" ")
        if kind == "f":
            expected[path] = rest.split(" ", 1)[1]
    return expected


def build_request(ctx: ApplyContext, node: Node, tags: list[str], labels: dict[str, str]) -> BuildRequest:
    build = node.build
    context = Path(build.context)
    df_path = dockerfile_path(node)
    matcher = load_matcher(context, df_path)
    entries = walk_context(context, matcher)  # generated outputs included: upstream steps made them
    sent = {e.path for e in entries}
    relative_df = None
    if df_path is not None:
        relative = os.path.relpath(df_path, context).replace(os.sep, "/")
        if not relative.startswith("../") and relative in sent:
            relative_df = relative
    injected = None
    if relative_df is None:
        text = dockerfile_text(node)
        injected = (text or "").encode("utf-8", "surrogateescape")
    return BuildRequest(
        node=node.name,
        context=context,
        entries=entries,
        expected=_expected_hashes(ctx.manifests[node.name]),
        dockerfile=relative_df or INJECTED_DOCKERFILE,
        dockerfile_text=injected,
        args=dict(build.args),
        target=build.target,
        labels={**build.labels, **labels},
        tags=tags,
        platforms=list(build.platforms),
        network=build.network,
        shm_size=build.shm_size,
        no_cache=build.no_cache or node.name in ctx.no_cache,
        pull=build.pull,
        extra_hosts=list(build.extensions.get("extra_hosts") or []),
        additional_contexts=dict(build.additional_contexts),
        secrets=list(build.secrets),
        ssh=list(build.ssh),
        cache_from=list(build.cache_from),
        cache_to=list(build.cache_to),
    )


def _labels(ctx: ApplyContext, node: Node) -> dict[str, str]:
    return {LABEL_KEY: ctx.manifests[node.name].key, LABEL_NODE: node.name, LABEL_PROJECT: ctx.project}


def _verify(daemon: Daemon, ref: str, key: str, what: str) -> None:
    found = daemon.image_key(ref)
    if found != key:
        raise RuntimeFailure(
            f"{what}: {daemon.name} holds {ref} with key {found or 'none'}, expected {key[:12]}"
        )


def _build_step(ctx: ApplyContext, node: Node) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key

    def run(step: StepContext) -> None:
        names = node.image_names()
        request = build_request(ctx, node, names, _labels(ctx, node))
        image_id = ctx.builder.build(request, step.log, step)
        step.check()
        _verify(ctx.local, image_id, key, f"build {node.name}")

    return run


def _export_step(ctx: ApplyContext, node: Node) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key

    def run(step: StepContext) -> None:
        assert node.output_dest is not None and node.output_type is not None
        tag = f"planner-artifact/{ctx.project}-{node.name}:{key[:12]}"
        request = build_request(ctx, node, [tag], _labels(ctx, node))
        image_id = ctx.builder.build(request, step.log, step)
        step.check()
        _verify(ctx.local, image_id, key, f"export {node.name}")
        export_image(ctx.local.save([tag]), node.output_type, Path(node.output_dest))
        record_artifact(ctx.store, node, key)

    return run


def _pull_step(ctx: ApplyContext, node: Node) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key

    def run(step: StepContext) -> None:
        ref = ctx.registry_refs[node.name]
        ctx.local.pull(ref, _byte_counter(step))
        _verify(ctx.local, ref, key, f"pull {node.name}")
        for name in node.image_names():
            ctx.local.tag(ref, name)

    return run


def _tag_step(ctx: ApplyContext, node: Node, daemon: str = LOCAL) -> Callable[[StepContext], None]:
    """A skipped image keeps its names pointing at the image with the current key (a revert moves them back;
    a destination that lost a name gets it back)."""
    key = ctx.manifests[node.name].key

    def run(step: StepContext) -> None:
        images = ctx.daemons[daemon].keyed_images()
        if key not in images:
            raise RuntimeFailure(f"{node.name}: the image with key {key[:12]} disappeared from {daemon}")
        for name in node.image_names():
            ctx.daemons[daemon].tag(images[key].image_id, name)

    return run


def stamp_text(ctx: ApplyContext, stamp: StampSpec) -> str:
    source = ctx.graph.nodes[stamp.source]
    key = ctx.manifests[stamp.source].key
    return stamp.template.format(key=key, short_key=key[:12], image=source.image or "", name=source.name)


def _stamp_current(ctx: ApplyContext, stamp: StampSpec) -> bool:
    try:
        return Path(stamp.path).read_text() == stamp_text(ctx, stamp)
    except OSError:
        return False


def _stamp_step(ctx: ApplyContext, stamp: StampSpec) -> Callable[[StepContext], None]:
    def run(step: StepContext) -> None:
        text = stamp_text(ctx, stamp)
        path = Path(stamp.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        temporary.write_text(text)
        os.replace(temporary, path)

    return run


def _push_step(ctx: ApplyContext, node: Node) -> Callable[[StepContext], None]:
    """One push per node; in auto mode a failed push is not fatal: the deliveries stream instead."""

    def run(step: StepContext) -> None:
        ref = ctx.registry_refs[node.name]
        try:
            ctx.local.tag(node.image_names()[0], ref)
            ctx.local.push(ref, _byte_counter(step))
        except PlannerError as exc:
            if node.rules.transfer != "auto" or step.cancel_event.is_set():
                raise
            ctx.push_failed[node.name] = exc.message
            ctx.warn(
                f"{node.name}: push to the registry failed ({exc.message}); deliveries stream save | load"
            )

    return run


def _deliver_step(
    ctx: ApplyContext, node: Node, destination: str, mode: str, auto: bool
) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key

    def by_tarball(step: StepContext) -> None:
        names = node.image_names()
        target = ctx.daemons[destination]
        counter = _byte_counter(step)
        moved = [0]

        def counted() -> Any:
            for chunk in ctx.local.save(names):
                step.check()
                moved[0] += len(chunk)
                counter({"bytes": moved[0]})
                yield chunk

        target.load(counted())

    def by_registry(step: StepContext) -> None:
        ref = ref_at(ctx.graph, ctx.registry, destination, ctx.registry_refs[node.name])
        ctx.daemons[destination].pull(ref, _byte_counter(step))
        for name in node.image_names():
            ctx.daemons[destination].tag(ref, name)

    def run(step: StepContext) -> None:
        if mode == "registry" and node.name in ctx.push_failed:
            by_tarball(step)
        elif mode == "registry":
            try:
                by_registry(step)
            except PlannerError as exc:
                if not auto or step.cancel_event.is_set():
                    raise
                ctx.warn(
                    f"{node.name} -> {destination}: registry transfer failed ({exc.message}); streaming save | load"
                )
                by_tarball(step)
        else:
            by_tarball(step)
        _verify(ctx.daemons[destination], node.image_names()[0], key, f"deliver {node.name} to {destination}")

    return run


def _byte_counter(step: StepContext) -> Callable[[dict[str, Any]], None]:
    """Turns push/pull/load progress events into a running byte count for the step."""
    per_layer: dict[str, int] = {}

    def on_event(event: dict[str, Any]) -> None:
        step.check()
        if "bytes" in event:
            step.report_bytes(int(event["bytes"]))
            return
        detail = event.get("progressDetail") or {}
        if "current" in detail and event.get("id"):
            per_layer[str(event["id"])] = int(detail["current"])
            step.report_bytes(sum(per_layer.values()))

    return on_event


def _transfer_steps(ctx: ApplyContext, node: Node, planned: PlanNode, main: str) -> list[Step]:
    """One push when some transfer needs the registry (or the build is shared), one delivery per destination."""
    steps: list[Step] = []
    push_id = f"push:{node.name}"

    def push() -> str:
        if not any(step.id == push_id for step in steps):
            ref = ctx.registry_refs[node.name]
            steps.append(Step(push_id, node.name, "push", _push_step(ctx, node), [main], ref))
        return push_id

    for transfer in planned.transfers:
        if transfer.destination == SHARE and transfer.mode == "registry":
            push()
            continue
        if transfer.destination in (LOCAL, SHARE) or transfer.mode in ("none", "unknown"):
            continue
        if transfer.mode == "tag":
            tag = _tag_step(ctx, node, transfer.destination)
            steps.append(Step(f"tag:{node.name}:{transfer.destination}", node.name, "tag", tag, [main]))
            continue
        deps = [push()] if transfer.mode == "registry" and planned.action != "pull" else [main]
        deliver = _deliver_step(ctx, node, transfer.destination, transfer.mode, node.rules.transfer == "auto")
        step_id = f"transfer:{node.name}:{transfer.destination}"
        steps.append(
            Step(step_id, node.name, "transfer", deliver, deps, f"{transfer.mode} -> {transfer.destination}")
        )
    return steps


def make_steps(ctx: ApplyContext, plan_nodes: list[PlanNode]) -> list[Step]:
    steps: list[Step] = []
    ready: dict[str, str] = {}  # node -> the step after which its image/output is ready locally
    stamp_steps: dict[str, list[str]] = {}  # consumer node -> stamp steps it needs
    for stamp in ctx.graph.stack.stamps.values():
        if _stamp_current(ctx, stamp):
            continue
        step_id = f"stamp:{stamp.name}"
        steps.append(Step(step_id, stamp.source, "stamp", _stamp_step(ctx, stamp), [], stamp.path))
        for consumer in ctx.graph.dag.successors(stamp.source):
            stamp_steps.setdefault(consumer, []).append(step_id)
    for planned in plan_nodes:
        node = ctx.graph.nodes[planned.name]
        needs = [ready[n] for n in planned.needs if n in ready] + stamp_steps.get(node.name, [])
        if node.kind == "artifact":
            if planned.action == "build":
                steps.append(
                    Step(
                        f"export:{node.name}",
                        node.name,
                        "export",
                        _export_step(ctx, node),
                        needs,
                        str(node.output_dest),
                    )
                )
                ready[node.name] = f"export:{node.name}"
            continue
        if planned.action == "build":
            main = Step(f"build:{node.name}", node.name, "build", _build_step(ctx, node), needs)
        elif planned.action == "pull":
            main = Step(
                f"pull:{node.name}",
                node.name,
                "pull",
                _pull_step(ctx, node),
                needs,
                ctx.registry_refs[node.name],
            )
        elif planned.action == "skip" and not node.rules.skip:
            missing_names = set(node.image_names()) - set(ctx.local_tags.get(planned.key, ()))
            if not missing_names and not [t for t in planned.transfers if t.mode not in ("none", "unknown")]:
                continue  # present and named as it should be: nothing at all to do
            main = Step(f"tag:{node.name}", node.name, "tag", _tag_step(ctx, node), needs)
        else:
            continue
        steps.append(main)
        ready[node.name] = main.id
        steps += _transfer_steps(ctx, node, planned, main.id)
    return steps
