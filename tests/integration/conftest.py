"""Session fixtures for the real services (see services.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from planner.engine.labels import LABEL_PROJECT
from tests.conftest import docker_unavailable
from tests.integration.services import (
    DaemonProcess,
    RegistryProcess,
    link_names,
    remove_test_images,
    start_dockerd,
    start_registry,
    sweep_leftovers,
    temp_root,
)

REPO = Path(__file__).resolve().parents[2]
Service = TypeVar("Service")


def _or_skip(start: Callable[[Path], Service], root: Path) -> Service:
    started: Service | None = None
    reason = ""
    try:
        started = start(root)
    except RuntimeError as exc:
        reason = str(exc)
    if started is None:
        docker_unavailable(reason)  # outside the handler: no chained traceback in the report
    return started


@pytest.fixture(scope="session", autouse=True)
def _leftovers_of_killed_sessions_swept() -> None:
    """Before the first test: what test sessions that were killed left (their images, containers and bridges)
    is removed, so runs on one machine do not pile up leftovers (`services.sweep_leftovers`)."""
    sweep_leftovers()


@pytest.fixture(scope="session", autouse=True)
def _hosts_docker0_survives() -> Iterator[None]:
    """The host's `docker0` is there after the whole run if it was there before it (issue #12): a sandbox
    daemon started with `--bridge=none` deletes it, and every later RUN of the host daemon's builds fails. A
    loss is an error at the last test's teardown."""
    try:
        before = link_names()
    except RuntimeError:
        before = set()  # no `ip`: nothing to compare (the tests that start a daemon need it and say so)
    yield
    if "docker0" in before and "docker0" not in link_names():
        pytest.fail(
            "the host's docker0 bridge is gone after the integration tests (a dockerd with --bridge=none?)"
        )


def registry_or_skip(root: Path) -> RegistryProcess:
    """`start_registry`, or skip the calling test with the reason (fail it under PLANNER_REQUIRE_DOCKER=1)."""
    return _or_skip(start_registry, root)


def dockerd_or_skip(root: Path) -> DaemonProcess:
    """`start_dockerd`, or skip the calling test with the reason (fail it under PLANNER_REQUIRE_DOCKER=1)."""
    return _or_skip(start_dockerd, root)


@pytest.fixture(scope="session")
def registry(docker_client: Any) -> Iterator[RegistryProcess]:
    with temp_root("planner-reg-") as root:
        process = registry_or_skip(root)
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="session")
def sandbox(docker_client: Any) -> Iterator[DaemonProcess]:
    with temp_root("pl-sbx-") as root:
        process = dockerd_or_skip(root)
        try:
            yield process
        finally:
            remove_test_images(process.url)
            process.stop()


@pytest.fixture
def clean_images(docker_client: Any) -> Iterator[None]:
    """Remove every test-labelled image from the session daemon after the test."""
    yield
    remove_test_images(None)


# one tag per test session: sessions running side by side never remove each other's base
BUSYBOX_IMAGE = f"planner-test/busybox:{os.getpid()}"


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> Iterator[str]:
    """A tiny base image with a shell, made offline from Debian's busybox-static (nothing can be pulled)."""
    import io
    import shutil
    import tarfile
    from pathlib import Path

    busybox = shutil.which("busybox")
    if busybox is None:
        docker_unavailable("busybox (Debian busybox-static) is not installed")
    data = Path(busybox).read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
        for applet in ("sh", "sleep", "echo", "cat", "ls", "false", "true", "mkdir", "cp"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            archive.addfile(link)
    docker_client.api.import_image_from_data(
        buffer.getvalue(), repository=BUSYBOX_IMAGE.split(":", maxsplit=1)[0], tag=BUSYBOX_IMAGE.split(":")[1],
        changes=["LABEL planner.test.base=1", "ENV PATH=/bin", 'CMD ["/bin/sh"]'],
    )  # fmt: skip
    yield BUSYBOX_IMAGE
    docker_client.api.remove_image(BUSYBOX_IMAGE, force=True)


def remove_project_images(project: str, url: str | None = None) -> None:
    import docker

    client = docker.APIClient(base_url=url, timeout=120) if url else docker.from_env().api
    try:
        for image in client.images(filters={"label": f"{LABEL_PROJECT}={project}"}):
            with contextlib.suppress(Exception):
                client.remove_image(image["Id"], force=True)
    finally:
        client.close()


@pytest.fixture
def name(request: pytest.FixtureRequest, sandbox: DaemonProcess) -> Iterator[str]:
    """A project name for a test that delivers to the sandbox: its images go from both daemons afterwards."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:2]
    value = f"{module}{os.getpid()}-{request.node.name[5:25].lower().replace('_', '')}"
    yield value
    remove_project_images(value)
    remove_project_images(value, sandbox.url)


@pytest.fixture
def project_name(request: pytest.FixtureRequest, docker_client: Any) -> Iterator[str]:
    name = f"pt{os.getpid()}-{request.node.name[:20].lower().replace('_', '')}"
    yield name
    remove_project_images(name)


@pytest.fixture
def basic(tmp_path: Path, project_name: str) -> Path:
    root = tmp_path / "basic"
    shutil.copytree(REPO / "examples/compose/basic", root)
    compose = root / "compose.yaml"
    compose.write_text(
        compose.read_text()
        .replace("name: basic", f"name: {project_name}")
        .replace("basic-api", f"{project_name}-api")
        .replace("basic/web", f"{project_name}/web")
    )
    web = root / "web/Dockerfile"
    web.write_text(web.read_text().replace("basic-api", f"{project_name}-api"))
    for context in ("api", "web"):  # keys are content addresses: make this test's content its own
        (root / context / "test-id").write_text(project_name)
    return root
