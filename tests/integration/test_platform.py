"""The platform an image is built for is part of its key, and is checked on the image itself: an image that
carries the key but was built for another platform is not taken as present."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project_images
from tests.integration.services import SESSION_LABEL, TEST_LABEL, TEST_SESSION
from tests.integration.test_apply import run

pytestmark = pytest.mark.docker


def project(root: Path, name: str, platforms: str | None) -> Path:
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app/a.txt").write_text("same content on every platform\n")
    (root / "app/Dockerfile").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nCOPY a.txt /a.txt\n")
    build = "./app" if platforms is None else f"{{context: ./app, platforms: [{platforms}]}}"
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n  app:\n    build: {build}\n")
    return root


def plan_json(root: Path, env: dict[str, str]) -> dict[str, Any]:
    planned = run(root, "plan", "--format", "json", env=env)
    assert planned.returncode == 0, planned.stderr
    return dict(json.loads(planned.stdout))


@pytest.fixture
def name(docker_client: Any) -> object:
    value = f"plat{os.getpid()}"
    yield value
    remove_project_images(value)


def test_two_platforms_two_keys_and_the_build_targets_the_declared_one(
    tmp_path: Path, name: str, docker_client: Any
) -> None:
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    native = plan_json(project(tmp_path / "n", name, None), env)["nodes"][0]["key"]
    arm = project(tmp_path / "a", name, "linux/arm64")
    arm_key = plan_json(arm, env)["nodes"][0]["key"]
    assert arm_key != native
    built = run(arm, "apply", "-q", env=env)
    assert built.returncode == 0, built.stderr
    image = docker_client.api.inspect_image(f"{name}-app")
    assert (image["Os"], image["Architecture"]) == ("linux", "arm64")
    assert image["Config"]["Labels"]["io.planner.key"] == arm_key
    assert plan_json(arm, env)["nodes"][0]["action"] == "skip"  # the right platform: present


def test_an_image_of_another_platform_with_the_key_is_not_present(
    tmp_path: Path, name: str, docker_client: Any
) -> None:
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    root = project(tmp_path / "n", name, None)
    key = plan_json(root, env)["nodes"][0]["key"]
    native = docker_client.api.version()["Arch"]
    foreign = "arm64" if native != "arm64" else "amd64"
    # built for another platform, labelled with the native build's key (the legacy builder, which takes
    # labels; COPY first: it mixes platforms when a LABEL step comes before)
    foreign_context = tmp_path / "foreign"
    foreign_context.mkdir()
    (foreign_context / "a.txt").write_text("same content on every platform\n")
    (foreign_context / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /a.txt\n")
    output = list(docker_client.api.build(
        path=str(foreign_context), tag=f"{name}-app:latest", platform=f"linux/{foreign}", rm=True, decode=True, nocache=True,
        labels={"io.planner.key": key, "io.planner.project": name, TEST_LABEL: TEST_SESSION},
    ))  # fmt: skip
    assert any("Successfully tagged" in str(line) for line in output), output[-4:]
    assert docker_client.api.inspect_image(f"{name}-app")["Architecture"] == foreign
    node = plan_json(root, env)["nodes"][0]
    assert node["action"] == "build"
    assert node["reasons"][0] == {
        "code": "wrong-platform",
        "detail": f"local holds this key built for linux/{foreign}",
    }
    assert run(root, "apply", "-q", env=env).returncode == 0
    assert docker_client.api.inspect_image(f"{name}-app")["Architecture"] == native
    assert plan_json(root, env)["nodes"][0]["action"] == "skip"
