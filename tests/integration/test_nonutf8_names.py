"""A non-UTF-8 file name in a build context reaches the image with its own bytes, and an edit to it changes the
key (issue #12), with the real engine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from planner.engine.labels import LABEL_KEY
from tests import helpers
from tests.integration.services import SESSION_LABEL
from tests.integration.test_apply import run

pytestmark = pytest.mark.docker
RAW = b"caf\xe9.txt"


def write_raw(folder: Path, content: bytes) -> None:
    helpers.write_raw(folder, RAW, content)


def test_a_non_utf8_name_is_sent_with_its_bytes_and_keyed_by_its_content(
    tmp_path: Path, project_name: str, busybox_image: str, docker_client: Any, clean_images: None
) -> None:
    root = tmp_path / "p"
    (root / "ctx").mkdir(parents=True)
    (root / "compose.yaml").write_text(f"name: {project_name}\nservices:\n  app:\n    build: ctx\n")
    (root / "ctx/Dockerfile").write_text(f"FROM {busybox_image}\nLABEL {SESSION_LABEL}\nCOPY . /x/\n")
    write_raw(root / "ctx", project_name.encode())
    cache = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}

    first = run(root, "apply", "-q", env=cache)
    assert first.returncode == 0, first.stderr
    image = f"{project_name}-app"
    key = docker_client.images.get(image).labels[LABEL_KEY]
    listed = subprocess.run(
        ["docker", "run", "--rm", "--label", SESSION_LABEL, image, "sh", "-c", 'for f in /x/*; do echo "$f"; done'],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    # the same bytes, as `docker build` would have sent (the shell prints names raw; ls would show `?`)
    assert listed.stdout.split(b"\n") == [b"/x/Dockerfile", b"/x/" + RAW, b""]
    shown = subprocess.run(  # (the Engine API's JSON cannot carry the name itself as an argument)
        ["docker", "run", "--rm", "--label", SESSION_LABEL, image, "sh", "-c", "cat /x/caf*.txt"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert shown.stdout == project_name.encode()

    write_raw(root / "ctx", b"edited")
    planned = run(root, "plan", "--format", "json", env=cache)
    assert planned.returncode == 0, planned.stderr
    (node,) = json.loads(planned.stdout)["nodes"]
    assert node["key"] != key and node["action"] == "build"
    assert {"code": "file-changed", "detail": "~ caf\\xe9.txt"} in node["reasons"]
    explained = run(root, "explain", "app", env=cache)
    assert explained.returncode == 0, explained.stderr
    assert "~ file caf\\xe9.txt" in explained.stdout
    second = run(root, "apply", "-q", env=cache)
    assert second.returncode == 0, second.stderr
    assert docker_client.images.get(image).labels[LABEL_KEY] == node["key"]
