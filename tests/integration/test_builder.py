"""The Engine-API builder end to end: the image holds exactly the context planner hashed, byte for byte, and a
file that changes between planning and building fails the build without leaving an image."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from planner.base.errors import RuntimeFailure
from planner.build.dockerignore import load_matcher
from planner.engine.builders import BuildFailed, BuildRequest, EngineBuilder
from planner.engine.daemon import Daemon
from planner.engine.labels import LABEL_KEY
from planner.keys.statcache import StatCache
from planner.keys.walk import walk_context
from tests.integration.services import SESSION_LABEL, TEST_LABEL, TEST_SESSION, DaemonProcess, folder_archive
from tests.integration.test_apply import run

pytestmark = pytest.mark.docker


def make_tree(root: Path) -> None:
    (root / "src/deep/er").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several tar chunks, past 256 KiB
    (root / "src/a.txt").write_text("a\n")
    (root / "src/deep/er/b.sh").write_text("#!/bin/sh\n")
    (root / "src/deep/er/b.sh").chmod(0o750)
    (root / "ignored.log").write_text("never sent\n")
    (root / "link").symlink_to("src/a.txt")
    (root / ".dockerignore").write_text("*.log\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")


def image_tree(client: Any, image: str) -> dict[str, tuple[str, int, str]]:
    data = folder_archive(client, image, "/ctx")
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            path = member.name.removeprefix("ctx").lstrip("/")
            if not path:
                continue
            if member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                found[path] = ("f", member.mode & 0o7777, hashlib.sha256(handle.read()).hexdigest())
            elif member.isdir():
                found[path] = ("d", member.mode & 0o7777, "")
            elif member.issym():
                found[path] = ("l", 0, member.linkname)
    return found


def request_for(root: Path, tag: str, expected: dict[str, str] | None = None) -> BuildRequest:
    entries = walk_context(root, load_matcher(root, root / "Dockerfile"))
    hashes = StatCache(None).hashes(str(root), entries)
    return BuildRequest(
        node="t", context=root, entries=entries, expected=expected if expected is not None else hashes,
        dockerfile="Dockerfile", dockerfile_text=None, labels={LABEL_KEY: "k" * 32, TEST_LABEL: TEST_SESSION}, tags=[tag],
    )  # fmt: skip


def test_the_image_holds_exactly_the_hashed_context(
    tmp_path: Path, docker_client: Any, clean_images: None
) -> None:
    make_tree(tmp_path)
    tag = f"planner-test/builder:{os.getpid()}"
    request = request_for(tmp_path, tag)
    image_id = EngineBuilder(Daemon("local", None)).build(request, lambda line: None)
    assert image_id.startswith("sha256:")
    expected = {}
    for entry in request.entries:
        if entry.kind == "f":
            digest = hashlib.sha256((tmp_path / entry.path).read_bytes()).hexdigest()
            expected[entry.path] = ("f", entry.mode, digest)
        elif entry.kind == "d":
            expected[entry.path] = ("d", entry.mode, "")
        elif entry.kind == "l":
            expected[entry.path] = ("l", 0, entry.target)
    got = image_tree(docker_client, tag)
    assert got == expected
    assert "ignored.log" not in got and "big.bin" in got


def test_a_file_changed_after_planning_fails_the_build_and_keeps_no_image(
    tmp_path: Path, docker_client: Any, clean_images: None
) -> None:
    make_tree(tmp_path)
    tag = f"planner-test/builder-stale:{os.getpid()}"
    planned = request_for(tmp_path, tag)
    (tmp_path / "src/a.txt").write_text("b\n")  # same size, new content, after the key was computed
    with pytest.raises(RuntimeFailure, match=r"src/a.txt changed after planning"):
        EngineBuilder(Daemon("local", None)).build(planned, lambda line: None)
    assert Daemon("local", None).image_id(tag) is None


def test_builder_errors_carry_the_build_log(tmp_path: Path, clean_images: None) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY nope /x\n")
    lines: list[str] = []
    with pytest.raises(BuildFailed, match="nope"):
        EngineBuilder(Daemon("local", None)).build(
            request_for(tmp_path, "planner-test/builder-fail:1"), lines.append
        )
    assert any("nope" in line for line in lines)


@pytest.mark.parametrize("transport", ["session", "tar"])
def test_both_buildkit_transports_send_the_same_tree(
    transport: str, tmp_path: Path, docker_client: Any, clean_images: None
) -> None:
    make_tree(tmp_path)
    tag = f"planner-test/builder-{transport}:{os.getpid()}"
    EngineBuilder(Daemon("local", None), transport=transport).build(
        request_for(tmp_path, tag), lambda line: None
    )
    got = image_tree(docker_client, tag)
    assert (
        "ignored.log" not in got
        and got["src/deep/er/b.sh"][1] == 0o750
        and got["link"] == ("l", 0, "src/a.txt")
    )


def test_a_daemon_without_sessions_gets_the_tar_with_a_log_line(
    tmp_path: Path, docker_client: Any, clean_images: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner.engine.session import BuildSession, SessionFailed

    def refuse(self: BuildSession, timeout: float = 30) -> None:
        raise SessionFailed("POST /session answered 'HTTP/1.1 404 Not Found'")

    monkeypatch.setattr(BuildSession, "start", refuse)
    make_tree(tmp_path)
    tag = f"planner-test/builder-fallback:{os.getpid()}"
    lines: list[str] = []
    builder = EngineBuilder(Daemon("local", None))
    builder.build(request_for(tmp_path, tag), lines.append)
    assert any("no BuildKit session" in line and "falling back" in line for line in lines)
    assert builder.transport == "tar"  # later builds do not ask again
    assert "big.bin" in image_tree(docker_client, tag)


def test_a_session_outlives_the_daemons_health_checks(
    tmp_path: Path, docker_client: Any, busybox_image: str, clean_images: None
) -> None:
    """The daemon checks a session's health every few seconds and drops one that does not answer."""
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN sleep 12\nCOPY a.txt /ctx/a.txt\n")
    tag = f"planner-test/builder-slow:{os.getpid()}"
    EngineBuilder(Daemon("local", None)).build(request_for(tmp_path, tag), lambda line: None)
    assert Daemon("local", None).image_id(tag) is not None


def test_a_wildcard_copy_rebuilds_after_an_edit(tmp_path: Path, docker_client: Any) -> None:
    """BuildKit asks the session for `followpaths` such as `*/x*.txt`; the sender must send every folder above a
    matched file (as fsutil's own sender does), or the receiver fails a rebuild with "changes out of order"."""
    from tests.integration.conftest import remove_project_images
    from tests.integration.test_apply import run

    name = f"bw{os.getpid()}"
    root = tmp_path / "p"
    for path, text in {"a/x1.txt": "1\n", "c/x2.txt": "2\n", "a.txt": "z\n", "a/b/y.txt": "y\n"}.items():
        (root / "app" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "app" / path).write_text(text)
    (root / "app/Dockerfile").write_text(
        f"FROM scratch\nLABEL {SESSION_LABEL}\nCOPY */x*.txt /out/\nCOPY a* /all/\n"
    )
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n  app:\n    build: ./app\n")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    try:
        for edit in range(3):
            (root / "app/c/x2.txt").write_text(f"2 edit {edit}\n")
            (root / "app/a" / f"new{edit}.txt").write_text("n\n")
            done = run(root, "apply", "-q", env=env)
            assert done.returncode == 0, done.stderr
            with tarfile.open(
                fileobj=io.BytesIO(folder_archive(docker_client, f"{name}-app", "/out"))
            ) as archive:
                member = archive.extractfile("out/x2.txt")
                assert member is not None and member.read() == f"2 edit {edit}\n".encode()
    finally:
        remove_project_images(name)


def test_a_daemon_reached_over_tcp_builds_with_buildkit_through_a_session(
    tmp_path: Path, sandbox: DaemonProcess, name: str
) -> None:
    """DOCKER_HOST=tcp://...: the BuildKit session goes over the API connection as on a unix socket, so BuildKit
    builds (here a `COPY --chmod`, which the classic builder refuses: before, any daemon off a unix socket got
    the classic builder, which the plan never said) and the plan names no other builder."""
    import docker

    assert sandbox.tcp_url is not None
    root = tmp_path / "p"
    (root / "app").mkdir(parents=True)
    (root / "app/Dockerfile").write_text(
        f"FROM scratch\nLABEL {SESSION_LABEL}\nCOPY --chmod=0750 hello.txt /hello.txt\n"
    )
    (root / "app/hello.txt").write_text("hello\n")
    (root / "compose.yaml").write_text(f"services:\n  app:\n    build: ./app\n    image: t/{name}-app\n")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache"), "DOCKER_HOST": sandbox.tcp_url}
    planned = run(root, "plan", "--format", "json", env=env)
    assert planned.returncode == 0, planned.stderr
    build = next(step for step in json.loads(planned.stdout)["steps"] if step["id"] == "build:app")
    # BuildKit; no classic fallback without a session either: the classic builder would not build it alike
    assert (build.get("method"), build.get("fallback")) == (None, None)
    applied = run(root, "apply", "-q", env=env)
    assert applied.returncode == 0, applied.stderr
    client = docker.DockerClient(base_url=sandbox.tcp_url, timeout=60)
    try:
        history = client.api.history(f"t/{name}-app")
        assert any("buildkit.dockerfile" in (layer.get("Comment") or "") for layer in history), history
        with tarfile.open(fileobj=io.BytesIO(folder_archive(client, f"t/{name}-app", "/hello.txt"))) as tar:
            assert tar.getmember("hello.txt").mode & 0o7777 == 0o750
    finally:
        client.close()


def test_a_build_that_did_not_read_the_sent_dockerfile_keeps_no_image(
    tmp_path: Path, docker_client: Any, clean_images: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check after a session build (issue 27): with the Dockerfile sent under one fixed time, as before the
    fix, the daemon keeps the copy it holds of a same-size text; the build fails and no image is left, rather
    than the old text's image labelled with the new key."""
    from planner.engine import session

    monkeypatch.setattr(session, "fresh_mtime_ns", lambda: 0)
    (tmp_path / "a.txt").write_text("a\n")
    tag = f"planner-test/builder-df:{os.getpid()}"
    builder = EngineBuilder(Daemon("local", None))
    (tmp_path / "Dockerfile").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nLABEL v=44\n")
    builder.build(request_for(tmp_path, tag), lambda line: None)
    assert docker_client.api.inspect_image(tag)["Config"]["Labels"]["v"] == "44"
    docker_client.api.remove_image(tag, force=True)
    (tmp_path / "Dockerfile").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nLABEL v=55\n")
    with pytest.raises(BuildFailed, match="did not read the Dockerfile planner sent"):
        builder.build(request_for(tmp_path, tag), lambda line: None)
    assert Daemon("local", None).image_id(tag) is None
