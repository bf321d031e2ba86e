"""A digest-pinned base that no daemon holds and no run has seen: its ONBUILD triggers are unknown when the key is
made (issue 29). The key is narrowed to the Dockerfile's own reads and apply reads the triggers before it builds.

- A base without triggers: the narrowed key stands; an edit the build does not read moves no key.
- A base gaining `ONBUILD COPY . /app`: the first apply fails the build step (exit 1, nothing built, no image),
  remembers the triggers of that digest, and the next plan (online or offline) keys the whole context, so the
  image built then holds every file and an edit anywhere in the context rebuilds it: never a narrowed key on an
  image whose build read more.

The base is imported from Debian's busybox-static with `--change ONBUILD ...`, pushed to the test registry and
removed from the session daemon, as a fresh machine would find a pinned base.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project_images
from tests.integration.services import (
    SESSION_LABEL,
    TEST_LABEL,
    TEST_SESSION,
    RegistryProcess,
    folder_archive,
)
from tests.integration.test_apply import run

pytestmark = pytest.mark.docker


def pinned_base(client: Any, registry: RegistryProcess, busybox: str, name: str, changes: list[str]) -> str:
    """Push a copy of the busybox base with `changes` to the registry; `repo:tag@sha256:...`, not held here."""
    repository = f"{registry.host}/planner-test/{name}"
    container = client.api.create_container(busybox, command=["true"], labels={TEST_LABEL: TEST_SESSION})[
        "Id"
    ]
    try:
        rootfs = b"".join(client.api.export(container))
    finally:
        client.api.remove_container(container, force=True)
    client.api.import_image_from_data(
        rootfs, repository=repository, tag="v1", changes=["ENV PATH=/bin", *changes]
    )
    for event in client.api.push(repository, tag="v1", stream=True, decode=True):
        assert "error" not in event, event
    digest = next(d for d in client.api.inspect_image(f"{repository}:v1")["RepoDigests"]).split("@")[1]
    client.api.remove_image(f"{repository}:v1", force=True)
    return f"{repository}:v1@{digest}"


def project(root: Path, name: str, base: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src/a.txt").write_text("a\n")
    (root / "notes.txt").write_text("read only by a trigger\n")
    (root / "Dockerfile").write_text(f"FROM {base}\nLABEL {SESSION_LABEL}\nCOPY src/a.txt /a.txt\n")
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n  s:\n    build: .\n")
    return root


def files_under(client: Any, image: str, folder: str) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(folder_archive(client, image, folder))) as archive:
        return {m.name for m in archive if m.isfile()}


def plan_json(root: Path, env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = run(root, "plan", "--format", "json", *extra, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_base_that_gains_a_reading_trigger_is_caught_before_the_build_and_keyed_after(
    tmp_path: Path, docker_client: Any, registry: RegistryProcess, busybox_image: str
) -> None:
    name = f"ob{os.getpid()}-reads"
    base = pinned_base(
        docker_client, registry, busybox_image, f"onbuild-{os.getpid()}", ["ONBUILD COPY . /app"]
    )
    root = project(tmp_path / "p", name, base)
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    try:
        first = plan_json(root, env)
        (node,) = first["nodes"]
        assert "onbuild-unchecked" in {r["code"] for r in node["reasons"]}
        build = next(s for s in first["steps"] if s["id"] == "build:s")
        assert build["check_bases"] == [base]  # the plan says what apply checks

        failed = run(root, "apply", "-q", env=env)
        assert failed.returncode == 1, failed.stderr
        assert "ONBUILD triggers that read the build context" in failed.stderr
        assert docker_client.api.images(name=f"{name}-s") == []  # nothing built, nothing recorded

        offline = plan_json(root, env, "--offline")  # the digest's triggers are remembered
        assert "onbuild-unchecked" not in {r["code"] for r in offline["nodes"][0]["reasons"]}
        again = run(root, "apply", "-q", env=env)
        assert again.returncode == 0, again.stderr
        assert {"app/notes.txt", "app/src/a.txt", "app/Dockerfile"} <= files_under(
            docker_client, f"{name}-s", "/app"
        )

        (root / "notes.txt").write_text("edited, read by the trigger\n")
        rebuilt = plan_json(root, env)
        assert rebuilt["nodes"][0]["action"] == "build"  # the trigger reads it: the key moved
    finally:
        remove_project_images(name)


def test_a_base_without_triggers_keeps_the_narrowed_key(
    tmp_path: Path, docker_client: Any, registry: RegistryProcess, busybox_image: str
) -> None:
    name = f"ob{os.getpid()}-clean"
    base = pinned_base(docker_client, registry, busybox_image, f"plain-{os.getpid()}", ["LABEL plain=1"])
    root = project(tmp_path / "p", name, base)
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    try:
        applied = run(root, "apply", "-q", env=env)
        assert applied.returncode == 0, applied.stderr
        (root / "notes.txt").write_text("edited, read by nothing\n")
        after = plan_json(root, env)
        assert after["nodes"][0]["action"] == "skip"
        assert "onbuild-unchecked" not in {r["code"] for r in after["nodes"][0]["reasons"]}
    finally:
        remove_project_images(name)
