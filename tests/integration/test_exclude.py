"""Rules `exclude`: lines added after a node's ignore file, for both what is sent and what is keyed (issue 29).

The helix stack builds its sibling repository qwen-code with a temporary ignore file (node_modules/, .git/,
dist/). `hash.ignore` could only leave such paths out of the key while the builder still read them; `exclude`
leaves them out of the build itself, so the key is sound: the image lacks them, and an edit there moves nothing.
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
from tests.integration.services import SESSION_LABEL, folder_archive
from tests.integration.test_apply import run

pytestmark = pytest.mark.docker


def test_excluded_paths_are_neither_sent_nor_keyed(tmp_path: Path, docker_client: Any) -> None:
    name = f"ex{os.getpid()}"
    root = tmp_path / "p"
    sibling = tmp_path / "qwen-code"
    for path, text in {"src/main.ts": "main\n", "node_modules/x/index.js": "x\n", "dist/out.js": "o\n",
                       "keep/dist/k": "k\n", "package.json": "{}\n"}.items():  # fmt: skip
        (sibling / path).parent.mkdir(parents=True, exist_ok=True)
        (sibling / path).write_text(text)
    (root / "df").mkdir(parents=True)
    (root / "df/Dockerfile.qwen").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nCOPY . /ctx/\n")
    (root / "compose.yaml").write_text(
        f"name: {name}\nservices:\n  qwen:\n    build:\n      context: ../qwen-code\n"
        "      dockerfile: ../p/df/Dockerfile.qwen\n"
        "    x-planner:\n      exclude: [node_modules/, /dist/, .git/]\n"
    )
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    try:
        done = run(root, "apply", "-q", env=env)
        assert done.returncode == 0, done.stderr
        with tarfile.open(
            fileobj=io.BytesIO(folder_archive(docker_client, f"{name}-qwen", "/ctx"))
        ) as archive:
            sent = {m.name.removeprefix("ctx/") for m in archive if m.isfile()}
        assert sent == {"src/main.ts", "package.json", "keep/dist/k"}
        (sibling / "node_modules/x/index.js").write_text("edited\n")
        (sibling / "dist/out.js").write_text("edited\n")
        planned = run(root, "plan", "--format", "json", env=env)
        assert json.loads(planned.stdout)["nodes"][0]["action"] == "skip", planned.stdout
        (sibling / "src/main.ts").write_text("edited\n")
        planned = run(root, "plan", "--format", "json", env=env)
        assert json.loads(planned.stdout)["nodes"][0]["action"] == "build"
    finally:
        remove_project_images(name)


def test_a_bad_exclude_line_names_the_rules_file(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    build: .\n")
    (tmp_path / "planner.yaml").write_text('version: 1\nrules:\n  - match: "*"\n    exclude: ["!"]\n')
    done = run(tmp_path, "plan", "--offline", env={"PLANNER_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 2
    assert "planner.yaml" in done.stderr and "exclude" in done.stderr and "Traceback" not in done.stderr
