"""Random input to the compose loader, the rules loader and the Dockerfile reader: they either load it or raise
a PlannerError (exit 2 with a located message); any other exception is a bug."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from planner.base.errors import PlannerError
from planner.build.dockerfile import check_dockerfile, parse_dockerfile
from planner.compose.loader import load_project
from planner.compose.options import ProjectOptions
from planner.rules.load import load_rules

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)

VALID_COMPOSE = """\
name: demo
x-defaults: &defaults
  build:
    context: .
    args: {A: "1", B: "${B:-2}"}
services:
  api:
    <<: *defaults
    image: demo/api:1
    depends_on: [db]
    x-planner: {always: true, hash: {env: [X]}}
  db:
    image: postgres:16
  web:
    build:
      context: .
      dockerfile: Dockerfile
      tags: [demo/web:dev]
      additional_contexts: {extra: service:api}
    profiles: [full]
"""
VALID_RULES = """\
version: 1
registry: {url: "127.0.0.1:5000", namespace: planner, password: "${PW:-}"}
destinations:
  sandbox: {host: "unix:///x.sock", registry: "registry:5000"}
images:
  tool: {context: ., image: demo/tool, tags: [demo/tool:1], args: {V: "1"}, depends_on: [api]}
artifacts:
  out: {context: ., output: {type: tar, dest: out/x.tar}}
stamps:
  v: {path: v.txt, from: tool, template: "{key}"}
rules:
  - match: "*"
    hash: {ignore: ["*.md"], volatile_args: [GIT_SHA]}
    destinations: [local]
secret_args: [TOKEN*]
"""
VALID_DOCKERFILE = """\
# escape=\\
ARG BASE=alpine
FROM ${BASE} AS build
RUN --mount=type=cache,target=/c <<EOF
echo hi
EOF
COPY --from=build /a /b
FROM scratch
COPY --from=0 /a /a
ONBUILD RUN echo
"""

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from([".", "build", "image", "context", "services", "${X}", "${", "$$", "*", "<<", "!reset"]),
)  # fmt: skip
keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["services", "build", "image", "context", "args", "tags", "extends", "include", "name",
                     "registry", "url", "images", "rules", "match", "depends_on", "x-planner", "profiles"]),
)  # fmt: skip
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def dump(value: Any) -> str:
    out = StringIO()
    YAML(typ="safe", pure=True).dump(value, out)
    return out.getvalue()


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """The text with a few random edits: deletions, insertions of YAML-ish characters, line swaps."""
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        edit = draw(st.sampled_from(["delete", "insert", "swap", "duplicate"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 10)) :]
        elif edit == "insert":
            text = text[:at] + draw(st.text(alphabet=":-[]{}&*!|>'\"#$\\ \n\tab<", max_size=5)) + text[at:]
        elif edit == "swap" and len(lines) > 1:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            i = draw(st.integers(0, len(lines) - 1))
            text = "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    return text


yaml_texts = st.one_of(
    trees.map(dump),
    st.dictionaries(st.sampled_from(["services", "name", "include", "x-a"]), trees, max_size=3).map(dump),
    st.builds(lambda s: dump({"services": s}), st.dictionaries(st.text(max_size=5), trees, max_size=3)),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "Dockerfile").write_text("FROM scratch\n")
        yield root


def only_planner_errors(action: Callable[[], object]) -> None:
    with contextlib.suppress(PlannerError):
        action()


def write(path: Path, text: str | bytes) -> None:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(text=st.one_of(yaml_texts, mutated(VALID_COMPOSE)))
def test_compose_loader_raises_only_planner_errors(folder: Path, text: str) -> None:
    write(folder / "compose.yaml", text)
    options = ProjectOptions(project_directory=str(folder), environ={"HOME": str(folder)}, cwd=str(folder))
    only_planner_errors(lambda: load_project(options))


@FUZZ
@given(text=st.one_of(yaml_texts, mutated(VALID_RULES), st.binary(max_size=100)))
def test_rules_loader_raises_only_planner_errors(folder: Path, text: str | bytes) -> None:
    write(folder / "planner.yaml", text)
    only_planner_errors(lambda: load_rules(folder / "planner.yaml", {}))


dockerfile_words = st.sampled_from(
    ["FROM", "from", "AS", "RUN", "COPY", "ADD", "ARG", "ONBUILD", "--from=", "--mount=type=cache,target=/x",
     "<<EOF", "<<-EOT", "EOF", "\\", "`", "# syntax=x", "# escape=`", "${A:-b}", "$", "0", "5", "alpine", "\n",
     "\t", "'", '"', "=", "HEALTHCHECK", "--interval=1s", "CMD", "[", "]"]
)  # fmt: skip
dockerfiles = st.one_of(
    st.text(max_size=200),
    st.lists(dockerfile_words, max_size=40).map(" ".join),
    st.lists(
        st.one_of(dockerfile_words, st.lists(dockerfile_words, max_size=6).map(" ".join)), max_size=10
    ).map("\n".join),
    mutated(VALID_DOCKERFILE),
)


@FUZZ
@given(text=dockerfiles, args=st.dictionaries(st.sampled_from(["BASE", "A", "X"]), st.text(max_size=5)))
def test_dockerfile_reader_raises_only_planner_errors(text: str, args: dict[str, str]) -> None:
    only_planner_errors(lambda: check_dockerfile(text))
    parse_dockerfile(text, args)  # the graph's reader takes anything
