"""From a plan's steps to executable steps, one to one: nothing here decides what to do (decide.py does), only
how each kind of step is carried out.

Every step that puts an image somewhere verifies afterwards that the image there carries the node's key; a
push or a transfer through the registry that fails falls back to streaming `save | load` where the plan says so
(`fallback: tarball`, rules `transfer: auto`), with a warning.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.apply.executor import FellBack, Step, StepContext
from planner.apply.export import export_image, folder_inside
from planner.apply.shared_export import SharedExports
from planner.base.errors import PlannerError, RuntimeFailure
from planner.base.names import LOCAL
from planner.base.secrets import mask_text, secret_values
from planner.base.streams import close
from planner.build.buildfiles import MAIN
from planner.build.dockerfile import trigger_reads
from planner.build.dockerignore import PatternMatcher
from planner.build.graph import BuildGraph
from planner.build.stack import Node
from planner.engine.builders import Builder, BuildRequest
from planner.engine.connect import Engines
from planner.engine.context_tar import INJECTED_DOCKERFILE
from planner.engine.daemon import Daemon, onbuild_triggers
from planner.engine.labels import LABEL_KEY, LABEL_NODE, LABEL_PROJECT
from planner.keys.artifacts import record_artifact
from planner.keys.manifest import Manifest
from planner.keys.store import Store
from planner.keys.walk import Entry, walk_context
from planner.plan.decide import BuildRoute
from planner.plan.model import PlanStep

if TYPE_CHECKING:
    from planner.engine.layers import Layout

WarningSink = Callable[[str], None]


@dataclass
class ApplyContext:
    graph: BuildGraph
    manifests: dict[str, Manifest]
    engines: Engines
    builder: Builder
    store: Store
    no_cache: set[str] = field(default_factory=set)
    warn: WarningSink = lambda message: None
    push_failed: dict[str, str] = field(default_factory=dict)  # node -> why its push failed (auto mode)
    exports: SharedExports = field(default_factory=lambda: SharedExports([]))
    routes: Mapping[str, BuildRoute] = field(default_factory=dict)  # the plan's, for a pull's fallback build

    @property
    def project(self) -> str:
        return self.graph.stack.compose.name

    @property
    def local(self) -> Daemon:
        return self.engines.local

    def daemon(self, name: str) -> Daemon:
        return self.engines.daemons[name]


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


def dockerfile_source(
    context: Path, df_path: Path | str | None, entries: list[Entry], text: str | None
) -> tuple[str, bytes | None]:
    """The `dockerfile` parameter and, when the Dockerfile is not among the sent entries (excluded by
    .dockerignore, outside the context, inline), its text to inject as INJECTED_DOCKERFILE."""
    if df_path is not None:
        relative = os.path.relpath(df_path, context).replace(os.sep, "/")
        if not relative.startswith("../") and any(e.path == relative for e in entries):
            return relative, None
    return INJECTED_DOCKERFILE, (text or "").encode("utf-8", "surrogateescape")


def build_request(
    ctx: ApplyContext, node: Node, tags: list[str], labels: dict[str, str], route: BuildRoute | None = None
) -> BuildRequest:
    """What the builder gets; `route`: the plan's (decide.build_route) for the Engine API builder."""
    build = node.build
    context = Path(build.context)
    files = ctx.graph.files[node.name]
    df_path = files.dockerfile_path
    matcher = files.contexts[MAIN][1] if MAIN in files.contexts else PatternMatcher()
    entries = walk_context(context, matcher)  # generated outputs included: upstream steps made them
    dockerfile, injected = dockerfile_source(context, df_path, entries, files.dockerfile_text)
    return BuildRequest(
        node=node.name,
        context=context,
        entries=entries,
        expected=_expected_hashes(ctx.manifests[node.name]),
        dockerfile=dockerfile,
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
        classic=route is not None and route.method == "classic",
        classic_fallback=route is not None and route.fallback == "classic",
    )


def _labels(ctx: ApplyContext, node: Node) -> dict[str, str]:
    return {LABEL_KEY: ctx.manifests[node.name].key, LABEL_NODE: node.name, LABEL_PROJECT: ctx.project}


def _verify(daemon: Daemon, ref: str, key: str, what: str) -> None:
    found = daemon.image_key(ref)
    if found != key:
        raise RuntimeFailure(
            f"{what}: {daemon.name} holds {ref} with key {found or 'none'}, expected {key[:12]}"
        )


def _route(planned: PlanStep) -> BuildRoute:
    """The builder's route as the plan's build or export step states it."""
    return BuildRoute(
        method="classic" if planned.method == "classic" else None,
        fallback="classic" if planned.fallback == "classic" else None,
    )


def _check_bases(ctx: ApplyContext, node: Node, bases: Sequence[str], step: StepContext) -> None:
    """The plan's `check_bases`: read each base's ONBUILD triggers before building (pulling the base, which
    the build pulls anyway); a trigger that reads the context fails the step, nothing built or recorded, as
    the key was narrowed assuming none did. The triggers of a pinned base are remembered, so the next plan
    keys what they read. `bases` are as the plan shows them (a secret arg's value masked): each stands for the
    node's real base refs that mask to it."""
    secrets = secret_values(node.build.args, ctx.graph.stack.rules.secret_args)
    reads = ctx.graph.files[node.name].reads
    real = [ref for ref in (reads.bases if reads is not None else ()) if mask_text(ref, secrets) in bases]
    for ref in real:
        image = ctx.local.inspect(ref)
        if image is None:
            ctx.local.pull(ref, _byte_counter(step))
            image = ctx.local.inspect(ref)
        triggers = onbuild_triggers(image or {})
        ctx.store.record_base_triggers(ref, triggers)
        found = trigger_reads(triggers, ref)
        if found.fallback is not None or found.sources:
            what = found.fallback or ", ".join(s.path or "." for s in found.sources)
            raise RuntimeFailure(
                f"{node.name}: FROM {ref} has ONBUILD triggers that read the build context ({what}), unknown "
                "when this plan narrowed the key; nothing was built: run again, the next plan keys what they read"
            )


def _build_step(
    ctx: ApplyContext, node: Node, route: BuildRoute | None, check_bases: Sequence[str] = ()
) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key

    def run(step: StepContext) -> None:
        _check_bases(ctx, node, check_bases, step)
        names = node.image_names()
        request = build_request(ctx, node, names, _labels(ctx, node), route)
        image_id = ctx.builder.build(request, step.log, step)
        step.check()
        _verify(ctx.local, image_id, key, f"build {node.name}")

    return run


def _export_step(
    ctx: ApplyContext, node: Node, route: BuildRoute, check_bases: Sequence[str] = ()
) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key

    def run(step: StepContext) -> None:
        _check_bases(ctx, node, check_bases, step)
        assert node.output_dest is not None and node.output_type is not None
        tag = f"planner-artifact/{ctx.project}-{node.name}:{key[:12]}"
        request = build_request(ctx, node, [tag], _labels(ctx, node), route)
        image_id = ctx.builder.build(request, step.log, step)
        step.check()
        _verify(ctx.local, image_id, key, f"export {node.name}")
        export_image(
            ctx.local.save([tag]), node.output_type, Path(node.output_dest), ctx.graph.stack.project_dir
        )
        record_artifact(ctx.store, node, key)

    return run


def _pull_step(ctx: ApplyContext, node: Node, planned: PlanStep) -> Callable[[StepContext], None]:
    """Pull the key from the registry; where the plan allows (`fallback: build`), a registry copy that cannot be
    pulled (a lost blob, a broken manifest) is replaced: build here, then push again when builds are shared."""
    key = ctx.manifests[node.name].key
    ref = str(planned.ref)
    build = _build_step(ctx, node, ctx.routes.get(node.name), planned.check_bases)  # the route decide gave it

    def run(step: StepContext) -> None:
        try:
            ctx.local.pull(ref, _byte_counter(step))
            _verify(ctx.local, ref, key, f"pull {node.name}")
        except PlannerError as exc:
            if planned.fallback != "build" or step.cancel_event.is_set():
                raise
            ctx.warn(f"{node.name}: pull of {ref} failed ({exc.message}); building it here instead")
            build(step)
            _share_again(ctx, node, ref, step)
            return
        ctx.store.record_shared(ref)
        for name in node.image_names():
            ctx.local.tag(ref, name)

    return run


def _push(ctx: ApplyContext, node: Node, ref: str, method: str | None, step: StepContext) -> None:
    """Put the node's local image in the registry under `ref`, and record it shared only once it is there.

    `method: layers`: planner uploads the export's layers the registry lacks, uncompressed, then the manifest
    (written last: a failure leaves no ref). Otherwise dockerd's push."""
    ctx.local.tag(node.image_names()[0], ref)
    if method == "layers" and ctx.engines.registry is not None:
        from planner.engine.layers import push_uncompressed

        readings: list[Iterable[bytes]] = []

        def export(layout: Layout) -> Iterable[bytes]:
            readings.append(
                ctx.exports.chunks(step.step.id, lambda: ctx.local.save([layout.image_id]), step.cancel_event)
            )
            return readings[-1]

        try:
            push_uncompressed(
                ctx.local, ctx.engines.registry, node.image_names()[0], ref, _byte_counter(step), export
            )
        finally:
            for reading in readings:
                close(reading)
    else:
        ctx.local.push(ref, _byte_counter(step))
    ctx.store.record_shared(ref)


def _share_again(ctx: ApplyContext, node: Node, ref: str, step: StepContext) -> None:
    """After a pull fell back to a build: overwrite the registry's broken copy, so other sessions pull again."""
    registry = ctx.graph.stack.rules.registry
    if registry is None or not registry.share:
        return
    try:
        _push(ctx, node, ref, "layers" if registry.codec() == "none" else "engine", step)
    except PlannerError as exc:
        ctx.warn(f"{node.name}: push of the rebuilt image failed ({exc.message}); the next apply pushes it")


def _tag_step(ctx: ApplyContext, node: Node, planned: PlanStep) -> Callable[[StepContext], None]:
    """A skipped image keeps its names pointing at the image with the current key (a revert moves them back;
    a destination that lost a name gets it back): the image the plan observed, if it still carries the key."""
    key = ctx.manifests[node.name].key
    daemon = planned.destination or LOCAL
    image = str(planned.image)

    def run(step: StepContext) -> None:
        if ctx.daemon(daemon).image_key(image) != key:
            raise RuntimeFailure(f"{node.name}: the image with key {key[:12]} disappeared from {daemon}")
        for name in node.image_names():
            ctx.daemon(daemon).tag(image, name)

    return run


def _stamp_step(ctx: ApplyContext, name: str) -> Callable[[StepContext], None]:
    stamp = ctx.graph.stack.stamps[name]

    def run(step: StepContext) -> None:
        text = stamp.text(ctx.manifests[stamp.source].key, ctx.graph.nodes[stamp.source])
        with folder_inside(Path(stamp.path), ctx.graph.stack.project_dir) as folder:
            path = folder / Path(stamp.path).name
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            temporary.write_text(text)
            os.replace(temporary, path)

    return run


def _push_step(ctx: ApplyContext, node: Node, planned: PlanStep) -> Callable[[StepContext], None]:
    """One push per node (the plan's `method`); with a tarball fallback a failed push is not fatal: the
    deliveries stream instead."""
    ref = str(planned.ref)

    def run(step: StepContext) -> None:
        try:
            _push(ctx, node, ref, planned.method, step)
        except PlannerError as exc:
            if planned.fallback is None or step.cancel_event.is_set():
                raise
            ctx.push_failed[node.name] = exc.message
            ctx.warn(
                f"{node.name}: push to the registry failed ({exc.message}); deliveries stream save | load, "
                "and the next apply pushes again"
            )
            raise FellBack(f"push failed ({exc.message}); not shared") from None

    return run


def _deliver_step(ctx: ApplyContext, node: Node, planned: PlanStep) -> Callable[[StepContext], None]:
    key = ctx.manifests[node.name].key
    destination = str(planned.destination)
    mode = planned.mode

    def whole(step: StepContext) -> None:
        ctx.daemon(destination).load(_counted(step, ctx.local.save(node.image_names())))

    def by_tarball(step: StepContext) -> None:
        if planned.method != "partial":
            whole(step)
            return
        from planner.engine.layers import Layout, held_chains, partial_load_stream

        target = ctx.daemon(destination)
        reading: Iterable[bytes] = ()
        try:
            layout = Layout.of(ctx.local, node.image_names()[0])
            held = held_chains(target)
            reading = ctx.exports.chunks(
                step.step.id, lambda: ctx.local.save([layout.image_id]), step.cancel_event
            )
            target.load(_counted(step, partial_load_stream(reading, layout, held)))
            for name in node.image_names():
                target.tag(layout.image_id, name)
        except PlannerError as exc:
            close(reading)  # a reading shared with the push goes on without this step
            if step.cancel_event.is_set():
                raise
            ctx.warn(
                f"{node.name} -> {destination}: the stream without held layers failed ({exc.message}); "
                "sending the whole image"
            )
            whole(step)
        finally:
            close(reading)

    def by_registry(step: StepContext) -> None:
        ref = ctx.engines.ref_at(destination, str(planned.ref))
        ctx.daemon(destination).pull(ref, _byte_counter(step))
        for name in node.image_names():
            ctx.daemon(destination).tag(ref, name)

    def run(step: StepContext) -> None:
        if mode == "registry" and node.name in ctx.push_failed:
            by_tarball(step)
        elif mode == "registry":
            try:
                by_registry(step)
            except PlannerError as exc:
                if planned.fallback is None or step.cancel_event.is_set():
                    raise
                if ctx.local.image_key(node.image_names()[0]) != key:
                    raise RuntimeFailure(
                        f"{node.name} -> {destination}: registry transfer failed ({exc.message}), and the session "
                        "daemon does not hold the image yet to stream it; the next apply delivers it"
                    ) from None
                ctx.warn(
                    f"{node.name} -> {destination}: registry transfer failed ({exc.message}); streaming save | load"
                )
                by_tarball(step)
        else:
            by_tarball(step)
        _verify(ctx.daemon(destination), node.image_names()[0], key, f"deliver {node.name} to {destination}")

    return run


def _counted(step: StepContext, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A stream passed on chunk by chunk, its running byte count reported, stopping when the step is cancelled."""
    moved = 0
    for chunk in chunks:
        step.check()
        moved += len(chunk)
        step.report_bytes(moved)
        yield chunk


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


def _failing(message: str) -> Callable[[StepContext], None]:
    def run(step: StepContext) -> None:
        raise RuntimeFailure(message)

    return run


def executable(ctx: ApplyContext, planned: PlanStep) -> Step:
    """The executor step for one plan step: same id, phase, dependencies; `run` carries it out."""
    node = ctx.graph.nodes.get(planned.node)
    run: Callable[[StepContext], None]
    detail = planned.detail
    if planned.kind == "stamp":
        run, detail = _stamp_step(ctx, planned.id.split(":", 1)[1]), str(planned.path)
    elif node is None:
        raise RuntimeFailure(f"plan step {planned.id} names unknown node {planned.node}")
    elif planned.kind == "build":
        run = _build_step(ctx, node, _route(planned), planned.check_bases)
    elif planned.kind == "export":
        run, detail = _export_step(ctx, node, _route(planned), planned.check_bases), str(node.output_dest)
    elif planned.kind == "pull":
        run, detail = _pull_step(ctx, node, planned), str(planned.ref)
    elif planned.kind == "tag":
        run = _tag_step(ctx, node, planned)
    elif planned.kind == "push":
        run, detail = _push_step(ctx, node, planned), str(planned.ref)
    elif planned.mode == "unknown":
        run = _failing(f"{node.name} -> {planned.destination}: {planned.detail}")
    else:
        run = _deliver_step(ctx, node, planned)
    return Step(planned.id, planned.node, planned.kind, run, list(planned.needs), detail)


def make_steps(ctx: ApplyContext, planned: list[PlanStep]) -> list[Step]:
    return [executable(ctx, step) for step in planned]
