"""What the docker shim needs besides `planner apply` (hidden commands, see planner/cli/shim.py):

- `planner build-image CONTEXT --tag T [...]` (`docker build -t`): a one-node stack built in memory
  (stack.image_stack) and run through the same make_plan / execute as apply: an image whose key is present is
  not built again, a changed one is built and carries every tag.
- `planner push-images [compose options] [SERVICE...]` (`docker compose build --push`, after the apply): push
  the services' compose image names from the local daemon.
- `planner pull-bases [compose options] [SERVICE...]` (`--pull`, before the apply or build): pull the base
  images the selected nodes name by tag again, so the keys see the registry's current images.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.base.errors import UsageError
from planner.build.stack import Stack, load_stack
from planner.compose.model import BuildConfig
from planner.compose.options import ProjectOptions

if TYPE_CHECKING:
    from planner.apply.run import ApplyResult


@dataclass(frozen=True)
class ImageBuild:
    context: str
    tags: tuple[str, ...]
    dockerfile: str | None = None
    build_args: tuple[tuple[str, str | None], ...] = ()
    labels: tuple[str, ...] = ()
    target: str | None = None
    platform: str | None = None


def node_name(tag: str) -> str:
    """A node name from an image name: its last path part without the tag (`r/helix-ubuntu:1` → helix-ubuntu)."""
    last = tag.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return re.sub(r"[^a-zA-Z0-9._-]", "-", last) or "image"


def build_stack(request: ImageBuild, cwd: str, environ: dict[str, str]) -> Stack:
    """The one-node stack of a `docker build`: paths as the docker CLI takes them (the context and `-f` relative
    to the working directory; `-f` defaults to CONTEXT/Dockerfile)."""
    from planner.build.stack import image_stack

    context = os.path.normpath(os.path.join(cwd, request.context))
    if not os.path.isdir(context):
        raise UsageError(f"build-image: context {request.context}: not a folder")
    dockerfile = request.dockerfile
    if dockerfile is not None:
        dockerfile = os.path.normpath(os.path.join(cwd, dockerfile))
        if os.path.dirname(dockerfile) == context:
            dockerfile = os.path.basename(dockerfile)  # inside the context: as compose writes it
    args: dict[str, str] = {}
    for key, given in request.build_args:
        value = environ.get(key) if given is None else given
        if value is not None:
            args[key] = value
    labels = {}
    for label in request.labels:
        key, _, value = label.partition("=")
        if not key:
            raise UsageError(f"--label {label!r}: expected KEY=VALUE")
        labels[key] = value
    build = BuildConfig(
        context=context, dockerfile=dockerfile or "Dockerfile", args=args, target=request.target,
        platforms=[request.platform] if request.platform else [], labels=labels,
    )  # fmt: skip
    return image_stack(build, request.tags, cwd, environ, node_name(request.tags[0]))


def image_options(cwd: str, environ: dict[str, str]) -> ProjectOptions:
    return ProjectOptions(environ=environ, cwd=cwd)


def push_images(options: ProjectOptions, services: Sequence[str], progress: bool = True) -> list[str]:
    """Push the compose image names of the services (all with a build when none named); the names pushed."""
    from planner.base.names import LOCAL
    from planner.engine.daemon import Daemon

    stack = load_stack(options)
    nodes = [n for n in stack.nodes.values() if n.name in stack.compose.services]
    unknown = set(services) - {n.name for n in nodes}
    if unknown:
        raise UsageError(f"push: no such service with a build: {', '.join(sorted(unknown))}")
    names = [name for n in nodes if not services or n.name in services for name in n.image_names()]
    daemon = Daemon(LOCAL, None)
    try:
        for name in names:
            if progress:
                print(f"pushing {name}", flush=True)
            daemon.push(name)
    finally:
        daemon.close()
    return names


def pull_bases(options: ProjectOptions, services: Sequence[str]) -> list[str]:
    """Pull again the base images the selected nodes name by tag (digest-pinned ones cannot change)."""
    return pull_image_bases(load_stack(options), services)


def pull_image_bases(stack: Stack, services: Sequence[str] = ()) -> list[str]:
    """Pull the tag-named base images; the refs pulled, secret arg values masked (for printing)."""
    from planner.base.errors import PlannerError
    from planner.base.names import LOCAL
    from planner.base.secrets import mask_text
    from planner.build.graph import build_graph
    from planner.engine.daemon import Daemon
    from planner.plan.redact import stack_secrets

    graph = build_graph(stack).select(services)
    external = graph.external
    # a ref built from a secret arg (`FROM example.com/${NPM_TOKEN}/base`) is pulled as is, shown masked
    secrets = stack_secrets(graph)
    daemon = Daemon(LOCAL, None)
    refs = sorted({ref for refs in external.values() for ref in refs if "@" not in ref and ref != "scratch"})
    try:
        for ref in refs:
            try:
                daemon.pull(ref)
            except PlannerError as exc:
                exc.message = mask_text(exc.message, secrets)
                raise
    finally:
        daemon.close()
    return [mask_text(ref, secrets) for ref in refs]


def build_image(
    request: ImageBuild, no_cache: bool, quiet: bool, pull: bool
) -> tuple[ApplyResult, str | None]:
    """Plan and apply the one-node stack as `planner apply` does (the project lock, make_plan with the stack,
    the same executor); the image ID of the first tag when it succeeded."""
    from planner.apply.lock import project_lock
    from planner.apply.run import ApplyOptions, execute, refuse_unrunnable
    from planner.base.names import LOCAL
    from planner.engine.daemon import Daemon
    from planner.keys.store import Store
    from planner.plan.decide import Forcing
    from planner.plan.pipeline import make_plan

    environ = dict(os.environ)
    cwd = os.getcwd()
    stack = build_stack(request, cwd, environ)
    if pull:
        pull_image_bases(stack)
    options = image_options(cwd, environ)
    apply_options = ApplyOptions(forcing=Forcing(everything=no_cache), quiet=quiet)
    with (
        Store.for_environ(environ) as store,
        project_lock(store.lock_path(stack.compose.working_dir, stack.compose.name)),
    ):
        planned = make_plan(
            options, None, [], offline=False, forcing=apply_options.forcing, store=store, stack=stack
        )
        refuse_unrunnable(planned.plan)
        result = execute(planned, apply_options, store)
    image_id = None
    if result.exit_code == 0:
        daemon = Daemon(LOCAL, None)
        try:
            image_id = daemon.image_id(request.tags[0])
        finally:
            daemon.close()
    return result, image_id
