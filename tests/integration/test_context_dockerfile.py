"""The Dockerfile (and anything else planner adds) must not reach `COPY . /ctx/` (issue #12, item 5).

Each case builds one context twice: with Docker (`DOCKER_BUILDKIT=0 docker build`, the CLI's own context: for a
Dockerfile outside the context or on stdin it adds it under a random name and names it in `.dockerignore`; the
daemon drops the Dockerfile and `.dockerignore` when `.dockerignore` matches them) and with planner's
EngineBuilder (the request as `planner/apply/steps.py` makes it: the Dockerfile by its path when it is among the
sent entries, else injected as `.planner.Dockerfile`; the route as the plan gives it, `decide.build_route`). The
paths under `/ctx` must be the same, and equal to the walk planner keyed.

Measured on dockerd 20.10 (see docs/design-notes.md, "The builder"): BuildKit's Dockerfile frontend given a tar
context (`version=2`, body or `remote=`) applies no ignore file at all (`.dockerignore` and
`<Dockerfile>.dockerignore` alike), so everything in the tar is visible to COPY; BuildKit with a session (the
docker CLI's BuildKit path, buildx) reads the Dockerfile from its own source, i.e. the legacy result for these
cases. Planner's BuildKit path is a session too (`buildkit`: exact); its classic path (`version=1`, for daemons
that are not on a local socket) hides the injected Dockerfile exactly. Over a context tar (`buildkit-tar`: rules
`builder.context: tar`; `buildkit-no-session`: the daemon opens no session) a build whose Dockerfile is injected
takes the classic builder, as the plan says (`method: classic` / `fallback: classic`), so it is exact too; and a
request without that route is refused rather than built with the Dockerfile visible.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from planner.apply.steps import dockerfile_source
from planner.build.buildfiles import MAIN, BuildFiles
from planner.build.dockerfile import buildkit_only
from planner.build.dockerignore import load_matcher
from planner.engine import session as session_module
from planner.engine.builders import BuildFailed, BuildRequest, EngineBuilder
from planner.engine.daemon import Daemon
from planner.engine.labels import LABEL_KEY
from planner.keys.statcache import StatCache
from planner.keys.walk import walk_context
from planner.plan.decide import BuildRoute, build_route
from tests.integration.services import SESSION_LABEL, TEST_LABEL, TEST_SESSION, folder_archive

pytestmark = pytest.mark.docker

DOCKERFILE = "FROM scratch\nCOPY . /ctx/\n"
_counter = itertools.count()


@dataclass(frozen=True)
class Case:
    ignore: str | None  # .dockerignore content, None: no file
    where: str = "in"  # "in": ctx/Dockerfile; "outside": ../Dockerfile; "inline": dockerfile_inline (stdin)
    files: dict[str, str] = field(default_factory=lambda: {"hello.txt": "h", "other.txt": "o", "sub/x": "x"})


CASES = {
    "ignore-lists-dockerfile": Case("Dockerfile\n"),
    "ignore-lists-itself": Case(".dockerignore\n"),
    "ignore-lists-both": Case("Dockerfile\n.dockerignore\nother.txt\n"),
    "everything-but-hello": Case("**\n!hello.txt\n"),
    "docker-glob": Case("Docker*\n*.txt\n"),
    "plain": Case("other.txt\n"),
    "outside": Case(None, "outside"),
    "outside-with-ignore": Case("other.txt\n", "outside"),
    "outside-ignore-lists-itself": Case(".dockerignore\nsub\n", "outside"),
    "inline": Case(None, "inline"),
    "inline-everything-but-hello": Case("**\n!hello.txt\n", "inline"),
}


def materialize(case: Case, top: Path) -> tuple[Path, Path | None]:
    root = top / "ctx"
    for name, content in case.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    if case.ignore is not None:
        (root / ".dockerignore").write_text(case.ignore)
    if case.where == "in":
        (root / "Dockerfile").write_text(DOCKERFILE)
        return root, root / "Dockerfile"
    if case.where == "outside":
        (top / "Dockerfile").write_text(DOCKERFILE)
        return root, top / "Dockerfile"
    return root, None


def ctx_paths(client: Any, image: str) -> set[str]:
    data = folder_archive(client, image, "/ctx")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name.removeprefix("ctx/") for m in archive if m.name != "ctx"}


def docker_paths(client: Any, root: Path, dockerfile: Path | None) -> set[str]:
    tag = f"planner-test/ctxdf:{os.getpid()}-d{next(_counter)}"
    command = ["docker", "build", "-q", "--label", SESSION_LABEL, "-t", tag, "-f", str(dockerfile or "-")]
    proc = subprocess.run(
        [*command, str(root)],
        input=None if dockerfile else DOCKERFILE,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    try:
        return ctx_paths(client, tag)
    finally:
        client.api.remove_image(tag, force=True)


def route_of(root: Path, dockerfile: Path | None, text: str, context: str) -> BuildRoute:
    """The route the plan gives the node (pipeline: `build_route` over the node's BuildFiles)."""
    files = BuildFiles(
        "t",
        dockerfile,
        text,
        None,
        {MAIN: (str(root), load_matcher(root, dockerfile))},
        needs_buildkit=buildkit_only(text),
    )
    return build_route("t", "docker", context, files.injected_dockerfile(), files.needs_buildkit)


def planner_build(
    client: Any, root: Path, dockerfile: Path | None, builder: str, route: BuildRoute | None = None
) -> tuple[set[str], set[str]]:
    """(paths in the image planner builds, paths of the walk planner keyed)."""
    entries = walk_context(root, load_matcher(root, dockerfile))
    name, injected = dockerfile_source(root, dockerfile, entries, DOCKERFILE)
    if route is None:
        route = route_of(root, dockerfile, DOCKERFILE, "tar" if builder == "buildkit-tar" else "session")
    tag = f"planner-test/ctxdf:{os.getpid()}-p{next(_counter)}"
    request = BuildRequest(
        node="t", context=root, entries=entries, expected=StatCache(None).hashes(str(root), entries),
        dockerfile=name, dockerfile_text=injected, labels={LABEL_KEY: "k" * 32, TEST_LABEL: TEST_SESSION},
        tags=[tag], classic=builder == "classic" or route.method == "classic",
        classic_fallback=route.fallback == "classic",
    )  # fmt: skip
    engine = EngineBuilder(Daemon("local", None), transport="tar" if builder == "buildkit-tar" else "session")
    engine.build(request, lambda line: None)
    try:
        return ctx_paths(client, tag), {e.path for e in entries}
    finally:
        client.api.remove_image(tag, force=True)


def no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon opens no BuildKit session: the builder falls back to a context tar."""

    def refuse(self: Any, timeout: float = 30) -> None:
        raise session_module.SessionFailed("no session (test)")

    monkeypatch.setattr(session_module.BuildSession, "start", refuse)


@pytest.mark.parametrize("builder", ["classic", "buildkit", "buildkit-tar", "buildkit-no-session"])
@pytest.mark.parametrize("name", list(CASES))
def test_copy_sees_what_docker_build_copies(
    name: str, builder: str, tmp_path: Path, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    root, dockerfile = materialize(case, tmp_path)
    entries = walk_context(root, load_matcher(root, dockerfile))
    _, injected = dockerfile_source(root, dockerfile, entries, DOCKERFILE)
    files = BuildFiles("t", dockerfile, DOCKERFILE, None, {MAIN: (str(root), load_matcher(root, dockerfile))})
    assert (files.injected_dockerfile() is not None) == (
        injected is not None
    )  # the plan sees what apply sends
    if builder == "buildkit-no-session":
        no_session(monkeypatch)
    theirs = docker_paths(docker_client, root, dockerfile)
    ours, keyed = planner_build(docker_client, root, dockerfile, builder)
    assert ours == theirs, f"only planner: {sorted(ours - theirs)}, only Docker: {sorted(theirs - ours)}"
    assert ours == keyed


@pytest.mark.parametrize("builder", ["buildkit-tar", "buildkit-no-session"])
def test_tar_without_the_classic_route_is_refused(
    builder: str, tmp_path: Path, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dockerfile only BuildKit builds, injected, over a tar: no image rather than one with the Dockerfile in it
    (the plan refuses `builder.context: tar` for it at plan time; this is the builder's own guard)."""
    root, dockerfile = materialize(CASES["everything-but-hello"], tmp_path)
    text = "FROM scratch\nARG TARGETARCH\nCOPY . /ctx/\n"
    route = route_of(root, dockerfile, text, "tar" if builder == "buildkit-tar" else "session")
    assert route.method is None and route.fallback is None
    assert (route.problem is not None) == (builder == "buildkit-tar")
    if builder == "buildkit-no-session":
        no_session(monkeypatch)
    with pytest.raises(BuildFailed, match="would show it to COPY"):
        planner_build(docker_client, root, dockerfile, builder, route)
