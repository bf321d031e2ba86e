"""`planner plan` against the real engine, a real registry and a real second dockerd (the sandbox).

Images are labelled with keys by hand (a one-file `docker import` with LABEL changes), so these tests check the
observation and decision path, not the builder.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from planner.compose.options import ProjectOptions
from planner.engine.labels import LABEL_KEY, LABEL_NODE, LABEL_PROJECT
from planner.keys.store import Store
from planner.plan.pipeline import Planned, make_plan
from tests.integration.services import (
    SESSION_LABEL,
    DaemonProcess,
    RegistryProcess,
    remove_test_images,
)

pytestmark = pytest.mark.docker


def keyed_image(url: str | None, ref: str, key: str, node: str, project: str, payload: bytes = b"x") -> str:
    """Import a one-file image carrying planner's labels into a daemon; returns its ID."""
    import docker

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("payload")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    client = docker.APIClient(base_url=url, timeout=60) if url else docker.from_env().api
    try:
        repository, _, tag = ref.rpartition(":")
        changes = [f"LABEL {LABEL_KEY}={key}", f"LABEL {LABEL_NODE}={node}", f"LABEL {LABEL_PROJECT}={project}",
                   f"LABEL {SESSION_LABEL}"]  # fmt: skip
        result = client.import_image_from_data(
            buffer.getvalue(), repository=repository, tag=tag, changes=changes
        )
        return str(json.loads(result.strip().splitlines()[-1])["status"])
    finally:
        client.close()


def push(ref: str) -> None:
    import docker

    client = docker.from_env().api
    try:
        for event in client.push(ref, stream=True, decode=True):
            assert "error" not in event, event
    finally:
        client.close()


@pytest.fixture
def project(tmp_path: Path, registry: RegistryProcess, sandbox: DaemonProcess) -> Path:
    name = f"pt{os.getpid()}{abs(hash(tmp_path)) % 10000}"
    (tmp_path / "app").mkdir()
    (tmp_path / "app/Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
    (tmp_path / "app/main.txt").write_text("v1\n")
    (tmp_path / "compose.yaml").write_text(f"name: {name}\nservices:\n  app:\n    build: ./app\n")
    (tmp_path / "planner.yaml").write_text(
        f"registry:\n  url: {registry.host}\n  namespace: test\n"
        f"destinations:\n  sandbox:\n    host: {sandbox.url}\n"
        "rules:\n  - match: app\n    destinations: [local, sandbox]\n"
    )
    yield tmp_path
    remove_test_images(None)
    remove_test_images(sandbox.url)


def plan(root: Path, cache: Path, **kwargs: Any) -> Planned:
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(root)}
    if "DOCKER_HOST" in os.environ:
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    with Store.open(cache) as store:
        return make_plan(
            ProjectOptions(environ=environ, cwd=str(root)), None, [], offline=False, store=store, **kwargs
        )


def node_of(planned: Planned) -> Any:
    return planned.plan.nodes[0]


def modes(planned: Planned) -> dict[str, str]:
    return {t.destination: t.mode for t in node_of(planned).transfers}


def test_plan_follows_what_each_daemon_and_the_registry_hold(
    project: Path, tmp_path_factory: pytest.TempPathFactory, sandbox: DaemonProcess, registry: RegistryProcess
) -> None:
    cache = tmp_path_factory.mktemp("cache")
    first = plan(project, cache)
    name = first.plan.project
    key = first.manifests["app"].key
    assert first.plan.observed["local"] == "ok" and first.plan.observed["sandbox"] == "ok"
    assert (node_of(first).action, node_of(first).reasons[0].code) == ("build", "new")
    assert modes(first) == {
        "registry": "registry",
        "local": "none",
        "sandbox": "registry",
    }  # builds are shared (dockerd's push), and the sandbox pulls them

    # An image with the key in the session daemon, never shared: skip here, push it, send it to the sandbox.
    keyed_image(None, f"{name}-app:latest", key, "app", name)
    second = plan(project, cache)
    assert node_of(second).action == "skip"
    # not a build: the image is there already, streamed to the sandbox while it is pushed
    assert modes(second) == {"registry": "registry", "local": "none", "sandbox": "tarball"}
    # what the delivery moves, from the image's history and the sandbox's layers: one layer of one byte
    delivery = next(t for t in node_of(second).transfers if t.destination == "sandbox")
    assert (delivery.layers, delivery.size) == (1, 1)

    # The sandbox holds it too: only the share is left to do.
    keyed_image(sandbox.url, f"{name}-app:latest", key, "app", name)
    third = plan(project, cache)
    assert node_of(third).action == "skip"
    assert modes(third) == {"registry": "registry", "local": "none", "sandbox": "none"}

    # Only the registry holds it (another session built it): pull, never build.
    ref = first.registry_refs["app"]
    keyed_image(None, ref, key, "app", name)
    push(ref)
    remove_test_images(None)
    remove_test_images(sandbox.url)
    fourth = plan(project, cache)
    assert (node_of(fourth).action, node_of(fourth).reasons[0].code) == ("pull", "in-registry")
    assert modes(fourth) == {"local": "registry", "sandbox": "registry"}


def test_changed_input_names_the_file_and_tarball_without_registry(
    project: Path, tmp_path_factory: pytest.TempPathFactory, registry: RegistryProcess
) -> None:
    cache = tmp_path_factory.mktemp("cache")
    first = plan(project, cache)
    name = first.plan.project
    keyed_image(None, f"{name}-app:latest", first.manifests["app"].key, "app", name)
    (project / "app/main.txt").write_text("v2\n")
    (project / "app/new.txt").write_text("new\n")
    second = plan(project, cache)
    assert node_of(second).action == "build"
    assert {r.code: r.detail for r in node_of(second).reasons}["file-changed"] == "+ new.txt, ~ main.txt"

    # No registry configured: the sandbox gets a tarball.
    rules = project / "planner.yaml"
    rules.write_text("\n".join(line for line in rules.read_text().splitlines()[3:]) + "\n")
    third = plan(project, cache)
    assert modes(third)["sandbox"] == "tarball"


def test_unreachable_registry_and_sandbox_are_reported_not_fatal(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.mktemp("cache")
    rules = project / "planner.yaml"
    text = rules.read_text()
    host = text.split("url: ")[1].split("\n")[0]
    dead_socket = f"unix://{tmp_path_factory.mktemp('dead')}/docker.sock"
    sandbox_url = text.split("host: ")[1].split("\n")[0]
    rules.write_text(text.replace(host, "127.0.0.1:9").replace(sandbox_url, dead_socket))
    planned = plan(project, cache)
    assert planned.plan.observed["registry(127.0.0.1:9)"].startswith("unreachable")
    assert planned.plan.observed["sandbox"].startswith("unreachable")
    node = node_of(planned)
    assert node.action == "build"
    assert "registry-unreachable" in [r.code for r in node.reasons]
    assert modes(planned) == {"registry": "unknown", "local": "none", "sandbox": "unknown"}
