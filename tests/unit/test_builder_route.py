"""The Engine API builder never builds an injected Dockerfile with BuildKit over a context tar (issue #12, item 5):
there COPY would see the Dockerfile, which `docker build` never shows. It takes the classic builder where the
plan says so, and otherwise refuses before sending anything. No Docker: the request never reaches a daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.buildfiles import MAIN, BuildFiles
from planner.decide import build_route
from planner.dockerignore import load_matcher
from planner.engine.builders import BuildFailed, BuildRequest, EngineBuilder
from planner.engine.daemon import Daemon


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
