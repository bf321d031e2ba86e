"""The Engine API builder never builds an injected Dockerfile with BuildKit over a context tar (issue #12, item 5):
there COPY would see the Dockerfile, which `docker build` never shows. It takes the classic builder where the
plan says so, and otherwise refuses before sending anything. No Docker: the request never reaches a daemon."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from planner.build.buildfiles import MAIN, BuildFiles
from planner.build.dockerignore import load_matcher
from planner.engine.builders import BuildFailed, BuildRequest, EngineBuilder
from planner.engine.daemon import Daemon
from planner.engine.http import reach
from planner.engine.observation import Reach
from planner.plan.decide import build_route


def request(tmp_path: Path, **route: bool) -> BuildRequest:
    return BuildRequest(
        node="app", context=tmp_path, entries=[], expected={}, dockerfile=".planner.Dockerfile",
        dockerfile_text=b"FROM scratch\nCOPY . /ctx/\n", tags=["app"], **route,
    )  # fmt: skip


def test_an_injected_dockerfile_over_a_tar_without_the_classic_route_is_refused(tmp_path: Path) -> None:
    builder = EngineBuilder(Daemon("local", f"unix://{tmp_path}/no.sock"), transport="tar")
    with pytest.raises(BuildFailed, match="would show it to COPY") as refused:
        builder.build(request(tmp_path), lambda line: None)
    assert refused.value.exit_code == 1


@pytest.mark.parametrize(
    ("layout", "injected"),
    [
        ({"Dockerfile": "x", ".dockerignore": "**\n!hello.txt\n"}, "the ignore file excludes it"),
        ({"Dockerfile": "x", ".dockerignore": "Docker*\n"}, "the ignore file excludes it"),
        ({"Dockerfile": "x", "Dockerfile.dockerignore": "Dockerfile\n"}, "the ignore file excludes it"),
        ({"Dockerfile": "x", ".dockerignore": "other\n"}, None),
        ({"Dockerfile": "x"}, None),
    ],
)
def test_the_plan_knows_which_dockerfiles_are_injected(
    tmp_path: Path, layout: dict[str, str], injected: str | None
) -> None:
    for name, text in layout.items():
        (tmp_path / name).write_text(text)
    dockerfile = tmp_path / "Dockerfile"
    files = BuildFiles(
        "app", dockerfile, "x", None, {MAIN: (str(tmp_path), load_matcher(tmp_path, dockerfile))}
    )
    assert files.injected_dockerfile() == injected


def test_outside_and_inline_dockerfiles_are_injected(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    matcher = load_matcher(tmp_path / "ctx", None)
    outside = BuildFiles("app", tmp_path / "Dockerfile", "x", None, {MAIN: (str(tmp_path / "ctx"), matcher)})
    inline = BuildFiles("app", None, "x", None, {MAIN: (str(tmp_path / "ctx"), matcher)})
    remote = BuildFiles("app", None, None, None, {})
    assert outside.injected_dockerfile() == "it lies outside the context"
    assert inline.injected_dockerfile() == "dockerfile_inline"
    assert remote.injected_dockerfile() is None


def test_buildx_and_a_sent_dockerfile_need_no_route() -> None:
    assert build_route("app", "buildx", "tar", "dockerfile_inline", "line 2: RUN --mount").problem is None
    assert build_route("app", "docker", "tar", None, "line 2: RUN --mount") == build_route(
        "app", "buildx", "tar", None, None
    )


@pytest.mark.parametrize(
    ("host", "environ", "expected"),
    [
        (None, {}, "unix"),
        ("unix:///run/user/1000/docker.sock", {}, "unix"),
        (None, {"DOCKER_HOST": "tcp://10.0.0.2:2375"}, "tcp"),
        ("http://127.0.0.1:2375", {}, "tcp"),
        (None, {"DOCKER_HOST": "tcp://10.0.0.2:2376", "DOCKER_TLS_VERIFY": "1"}, "other"),
        (None, {"DOCKER_HOST": "tcp://10.0.0.2:2376", "DOCKER_CERT_PATH": "/certs"}, "other"),
        ("https://10.0.0.2:2376", {}, "other"),
        (None, {"DOCKER_HOST": "ssh://me@builder"}, "other"),
    ],
)
def test_how_a_daemon_is_reached(host: str | None, environ: dict[str, str], expected: str) -> None:
    """As docker-py reads DOCKER_HOST and its TLS variables: the reach decides what can hand BuildKit a context."""
    assert reach(host, environ) == expected


INJECTED = "dockerfile_inline"
BUILDKIT_ONLY = "line 2: COPY --chmod"


@pytest.mark.parametrize(
    ("where", "context", "injected", "needs", "method", "fallback", "refused"),
    [
        # a local socket: a session, else a tar over loopback, unless the Dockerfile is injected
        ("unix", "session", None, None, None, None, False),
        ("unix", "session", None, BUILDKIT_ONLY, None, None, False),
        ("unix", "session", INJECTED, None, None, "classic", False),
        ("unix", "session", INJECTED, BUILDKIT_ONLY, None, None, False),
        ("unix", "tar", None, BUILDKIT_ONLY, None, None, False),
        ("unix", "tar", INJECTED, None, "classic", None, False),
        ("unix", "tar", INJECTED, BUILDKIT_ONLY, None, None, True),
        # plain TCP: a session over the API connection; a tar from our loopback never
        ("tcp", "session", None, None, None, "classic", False),
        ("tcp", "session", None, BUILDKIT_ONLY, None, None, False),
        ("tcp", "session", INJECTED, None, None, "classic", False),
        ("tcp", "tar", None, None, "classic", None, False),
        ("tcp", "tar", None, BUILDKIT_ONLY, None, None, True),
        # TLS or ssh: no session at all
        ("other", "session", None, None, "classic", None, False),
        ("other", "tar", INJECTED, None, "classic", None, False),
        ("other", "session", None, BUILDKIT_ONLY, None, None, True),
    ],
)
def test_the_route_follows_how_the_daemon_is_reached(
    where: Reach, context: str, injected: str | None, needs: str | None, method: str | None,
    fallback: str | None, refused: bool,
) -> None:  # fmt: skip
    """The plan says which builder builds and what happens without a session: the classic builder only where it
    builds alike (no BuildKit-only construct), else the build is refused at plan time when no way is left, or
    at apply time when the daemon opens no session."""
    route = build_route("app", "docker", context, injected, needs, where)
    assert (route.method, route.fallback, route.problem is not None) == (method, fallback, refused)
    if refused:
        assert route.problem is not None and BUILDKIT_ONLY in route.problem
    if method == "classic":
        assert route.detail.startswith("classic builder: ")


def test_a_tcp_daemon_that_opens_no_session_is_not_sent_a_tar(tmp_path: Path) -> None:
    """Without a session and without the plan's classic fallback, a build on a daemon off the unix socket is
    refused before anything is sent: it cannot fetch a tar from this host's loopback."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    builder = EngineBuilder(Daemon("local", f"tcp://127.0.0.1:{port}"), transport="session")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    lines: list[str] = []
    plain = BuildRequest(
        node="app", context=tmp_path, entries=[], expected={}, dockerfile="Dockerfile", dockerfile_text=None,
        tags=["app"],
    )  # fmt: skip
    with pytest.raises(
        BuildFailed, match="opened no BuildKit session and cannot fetch a context tar"
    ) as refused:
        builder.build(plain, lines.append)
    assert refused.value.exit_code == 1
    assert any("no BuildKit session" in line for line in lines)


@pytest.mark.parametrize(
    "url",
    ["tcp://127.0.0.1:2375", "http://127.0.0.1:5000", "http://[::1]:5000", "tcp://[::1]", "http://reg",
     "tcp://host:1/x", "http://registry.example.test:443/v2/", "http://user:pw@reg:5000"],
)  # fmt: skip
def test_a_daemon_or_registry_address_is_read_as_urllib_reads_it(url: str) -> None:
    """`connect` and the registry's manifest probe read host and port without urllib.parse (12 ms of a no-op
    apply's memo check); the answer is urllib's."""
    import urllib.parse

    from planner.engine.http import host_and_port

    parsed = urllib.parse.urlparse(url.replace("tcp://", "http://", 1))
    assert host_and_port(url) == (parsed.hostname, parsed.port)
