"""Same-size edits reach the image on every route (issue 27): the builder never keeps a stale copy.

BuildKit keeps the last transfer of each local source per shared key and asks the sender only for files whose
size or time changed. Each case here applies a project with `planner apply`, edits one input so that its size
stays the same and (for files on disk) its modification time is put back to the old nanosecond, which is what
an edit within one timestamp tick, `cp -p`, `rsync -t` or an artifact exported from an image all look like,
applies again, and compares the image with a fresh `docker build` (the legacy builder, which keeps nothing
between builds) of the same inputs: the label the Dockerfile sets and every file under `/ctx`, byte for byte.

Input kinds: the Dockerfile in the context, outside it (injected), `dockerfile_inline`, a per-Dockerfile ignore
file, a context file, and an artifact exported from an upstream image into the context (its files carry the
image's times). Routes: a BuildKit session on the unix socket, one over plain TCP (the sandbox daemon's
listener), and the context tar (`builder.context: tar`). Additional contexts need buildx, which this machine
cannot have: the Engine API route refuses them at plan time.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import remove_project_images
from tests.integration.services import SESSION_LABEL, DaemonProcess, folder_archive
from tests.integration.test_apply import run

pytestmark = pytest.mark.docker

ROUTES = ["session", "session-tcp", "tar"]
KINDS = [
    "dockerfile-in",
    "dockerfile-outside",
    "dockerfile-inline",
    "dockerfile-ignore",
    "context-file",
    "artifact",
]


def dockerfile(version: int) -> str:
    return f"FROM scratch\nLABEL {SESSION_LABEL}\nLABEL v={version}\nCOPY . /ctx/\n"


@dataclass
class Project:
    root: Path
    name: str
    kind: str

    @property
    def ctx(self) -> Path:
        return self.root / "ctx"

    def dockerfile_text(self) -> str:
        if self.kind == "dockerfile-outside":
            return (self.root / "df/Dockerfile").read_text()
        if self.kind == "dockerfile-inline":
            inline = (self.root / "compose.yaml").read_text().split("dockerfile_inline: |\n", 1)[1]
            return "".join(line[8:] + "\n" for line in inline.splitlines() if line.startswith(" " * 8))
        return (self.ctx / "Dockerfile").read_text()

    def ignore_text(self) -> str | None:
        found = self.ctx / "Dockerfile.dockerignore"
        return found.read_text() if found.exists() else None


def make_project(root: Path, name: str, kind: str, route: str) -> Project:
    ctx = root / "ctx"
    ctx.mkdir(parents=True)
    (ctx / "a.txt").write_text("aaaa\n")
    (ctx / "b.txt").write_text("bbbb\n")
    (ctx / "c.txt").write_text("cccc\n")
    build = "    build:\n      context: ./ctx\n"
    if kind == "dockerfile-outside":
        (root / "df").mkdir()
        (root / "df/Dockerfile").write_text(dockerfile(44))
        build += "      dockerfile: ../df/Dockerfile\n"
    elif kind == "dockerfile-inline":
        inline = "".join(f"        {line}\n" for line in dockerfile(44).splitlines())
        build += f"      dockerfile_inline: |\n{inline}\n"
    else:
        (ctx / "Dockerfile").write_text(dockerfile(44))
    if kind == "dockerfile-ignore":
        (ctx / "Dockerfile.dockerignore").write_text("*ignore\nb.txt\n")
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n  s:\n{build}")
    rules = ["version: 1"]
    if route == "tar":
        rules += ["builder:", "  kind: docker", "  context: tar"]
    if kind == "artifact":
        (root / "gen").mkdir()
        (root / "gen/art.txt").write_text("art 1\n")
        (root / "gen/Dockerfile").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nCOPY art.txt /art.txt\n")
        rules += ["artifacts:", "  art:", "    context: gen", "    output: {type: local, dest: ctx/out}"]
    (root / "planner.yaml").write_text("\n".join(rules) + "\n")
    return Project(root, name, kind)


def same_size_same_time(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` (as long) in a file and put its modification time back to the old nanosecond."""
    assert len(old) == len(new)
    before = os.stat(path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size


def edit(project: Project) -> None:
    if project.kind == "dockerfile-in":
        same_size_same_time(project.ctx / "Dockerfile", "v=44", "v=55")
    elif project.kind == "dockerfile-outside":
        same_size_same_time(project.root / "df/Dockerfile", "v=44", "v=55")
    elif project.kind == "dockerfile-inline":
        same_size_same_time(project.root / "compose.yaml", "v=44", "v=55")
    elif project.kind == "dockerfile-ignore":
        same_size_same_time(project.ctx / "Dockerfile.dockerignore", "b.txt", "c.txt")
    elif project.kind == "context-file":
        same_size_same_time(project.ctx / "a.txt", "aaaa", "AAAA")
    else:
        same_size_same_time(project.root / "gen/art.txt", "art 1", "art 2")


def tree(client: Any, image: str) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(folder_archive(client, image, "/ctx"))) as archive:
        found = {}
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                found[member.name.removeprefix("ctx/")] = hashlib.sha256(handle.read()).hexdigest()
        return found


def reference(client: Any, host: str | None, project: Project) -> tuple[str, dict[str, str]]:
    """A fresh legacy `docker build` of the project's inputs as they are now: a copy of the context (its
    per-Dockerfile ignore file as `.dockerignore`, which is all the legacy builder reads) and the Dockerfile's
    text from outside it."""
    tag = f"planner-test/samesize:{project.name}-ref"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ctx"
        shutil.copytree(project.ctx, copy, symlinks=True)
        ignore = project.ignore_text()
        if ignore is not None:
            (copy / ".dockerignore").write_text(ignore)
        (Path(tmp) / "Dockerfile.ref").write_text(project.dockerfile_text())
        command = ["docker", *(["-H", host] if host else []), "build", "-q", "-t", tag]
        done = subprocess.run(
            [*command, "-f", str(Path(tmp) / "Dockerfile.ref"), str(copy)],
            env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    try:
        labels = client.api.inspect_image(tag)["Config"]["Labels"] or {}
        return labels.get("v", ""), tree(client, tag)
    finally:
        client.api.remove_image(tag, force=True)


@pytest.fixture
def daemon_for(sandbox: DaemonProcess) -> Iterator[dict[str, str | None]]:
    yield {"session": None, "tar": None, "session-tcp": sandbox.tcp_url}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_same_size_edit_is_built_from_the_new_bytes(
    route: str, kind: str, tmp_path: Path, daemon_for: dict[str, str | None]
) -> None:
    host = daemon_for[route]
    name = f"ss{os.getpid()}-{ROUTES.index(route)}{KINDS.index(kind)}"
    project = make_project(tmp_path / "p", name, kind, route)
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache"), **({"DOCKER_HOST": host} if host else {})}
    client = docker.DockerClient(base_url=host, timeout=120) if host else docker.from_env(timeout=120)
    image = f"{name}-s"
    try:
        for round_ in range(2):
            if round_:
                edit(project)
            done = run(project.root, "apply", "-q", env=env)
            assert done.returncode == 0, done.stderr
            labels = client.api.inspect_image(image)["Config"]["Labels"]
            ours = (labels.get("v", ""), tree(client, image))
            assert ours == reference(client, host, project), f"round {round_}: {done.stderr}"
        assert ours[0] == ("55" if kind.startswith("dockerfile-") and kind != "dockerfile-ignore" else "44")
        edited = {"context-file": ("a.txt", "AAAA\n"), "artifact": ("out/art.txt", "art 2\n")}.get(kind)
        if edited is not None:  # the reference copies what is on disk: an artifact exported stale fools it
            assert ours[1][edited[0]] == hashlib.sha256(edited[1].encode()).hexdigest()
        if kind == "dockerfile-ignore":
            assert "b.txt" in ours[1] and "c.txt" not in ours[1]
    finally:
        client.close()
        remove_project_images(name, host)


def test_the_issue_27_repro_builds_the_edited_label(tmp_path: Path, docker_client: Any) -> None:
    """As the issue reported it: `LABEL v=44` edited to `v=55` in place (sed keeps the size), applied again."""
    name = f"ss{os.getpid()}-repro"
    (tmp_path / "Dockerfile").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nLABEL v=44\n")
    (tmp_path / "compose.yaml").write_text(f"name: {name}\nservices:\n  s:\n    build: .\n")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    try:
        for version in ("44", "55"):
            dockerfile = tmp_path / "Dockerfile"
            dockerfile.write_text(dockerfile.read_text().replace("v=44", f"v={version}"))
            done = run(tmp_path, "apply", "-q", env=env)
            assert done.returncode == 0, done.stderr
            assert docker_client.api.inspect_image(f"{name}-s")["Config"]["Labels"]["v"] == version
    finally:
        remove_project_images(name)
