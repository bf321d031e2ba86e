"""The real helix stack's shape, as planner meets it (issue 29): written here from the facts in
../shared/research/helix-stack.md and what was seen on the public helixml/helix checkout, never from its files.

What the example in examples/compose/helix hid, and this project has:
- one root context for the compose services (api, frontend: two targets of one Dockerfile) and the desktop, whose
  root `.dockerignore` does not exclude the outputs (`zed-build/`, `qwen-code-build/`) nor the stamp folder
  (`sandbox-images/`); the desktop has a per-Dockerfile ignore file that excludes other folders;
- the desktop starts with `# syntax=docker/dockerfile:1.4`, writes files with quoted and unquoted heredocs, runs
  heredoc scripts after `--mount=type=cache` flags, and holds shell heredocs (`<< 'EOF'`) in its bodies;
- every base is pinned by tag and digest and no daemon holds it (offline, a fresh machine);
- Zed and qwen-code are sibling repositories beside the checkout, built with Dockerfiles kept in helix, qwen-code
  with a temporary ignore file (rules `exclude`);
- planner.yaml and the compose file sit in the root context.

The checks are the issue's: every key narrowed; a README.md edit or a planner.yaml comment moves no key; an edit
under frontend/src moves none (the UI target copies only frontend/*.json and yarn.lock); an edit under api/
moves api, the desktop and (through the stamp) the sandbox, never frontend; the graph's first level holds api
and frontend. Measured on the real checkout the same way (the closing note of issue 29).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_tree

DIGEST = "sha256:" + "1" * 64
GO = f"golang:1.25-bookworm@{DIGEST}"
NODE = f"node:23-alpine@sha256:{'2' * 64}"
UBUNTU = f"ubuntu:25.10@sha256:{'3' * 64}"

ROOT_DOCKERFILE = f"""\
FROM {GO} AS api-base
WORKDIR /app
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
FROM api-base AS api-dev-env
COPY api /app/api
FROM {NODE} AS ui-base
WORKDIR /app
COPY ./frontend/*.json /app/
COPY ./frontend/yarn.lock /app/yarn.lock
FROM ui-base AS ui-dev-env
FROM ui-base AS ui-build-env
COPY ./frontend /app
"""

DESKTOP = f"""\
# syntax=docker/dockerfile:1.4
ARG BASE_IMAGE={UBUNTU}
FROM {GO} AS go-build-env
COPY go.mod go.sum ./
COPY api ./api
FROM ${{BASE_IMAGE}}
RUN <<_INSTALL
apt-get update
cat > /etc/x.conf << 'PINEOF'
COPY secrets /never
PINEOF
_INSTALL
RUN --mount=type=cache,target=/root/.cargo \\
    --mount=type=cache,target=/build/target \\
    <<_BUILD_PLUGINS
echo build
_BUILD_PLUGINS
COPY <<'_BASHRC' /root/.bashrc
alias ll='ls -l'
_BASHRC
COPY <<_DBUS_INIT /etc/dbus-init
#!/bin/sh
_DBUS_INIT
COPY --from=go-build-env /go/bin /usr/local/bin
ADD desktop/shared/start.sh /start.sh
COPY qwen-code-build/ ./
COPY zed-build/zed /zed-build/zed
COPY zed-build/app-icon.png /usr/share/icons/zed.png
"""

SANDBOX = f"""\
FROM {GO} AS go-builder
COPY go.mod go.sum ./
COPY api/ ./api/
FROM ubuntu:25.04@sha256:{"4" * 64}
COPY --from=go-builder /go/bin /usr/local/bin
COPY sandbox-images/ /opt/images/
COPY sandbox/start.sh /start.sh
"""

RULES = """\
# written from ./stack as a new user would
version: 1
artifacts:
  zed-build:
    context: ../zed
    dockerfile: ../helix/Dockerfile.zed-build
    args: {BUILD_TYPE: release}
    output: {type: local, dest: zed-build}
  qwen-code-build:
    context: ../qwen-code
    dockerfile: ../helix/Dockerfile.qwen-code-build
    output: {type: local, dest: qwen-code-build}
    exclude: [node_modules/, .git/, dist/]
images:
  helix-ubuntu:
    dockerfile: Dockerfile.ubuntu-helix
    image: helix-ubuntu
    args: {GO_VERSION: "1.25.4"}
  helix-sandbox:
    dockerfile: Dockerfile.sandbox
    image: helix-sandbox
stamps:
  desktop-version:
    path: sandbox-images/helix-ubuntu.version
    from: helix-ubuntu
    template: "{short_key}\\n"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    write_tree(tmp_path / "zed", {
        ".dockerignore": "target/\n.git/\n", "Cargo.toml": "[workspace]\n", "crates/zed/src/main.rs": "fn main() {}\n",
    })  # fmt: skip
    write_tree(tmp_path / "qwen-code", {
        "package.json": "{}\n", "packages/cli/index.ts": "x\n", "node_modules/dep/index.js": "d\n", "dist/cli.js": "o\n",
    })  # fmt: skip
    return write_tree(tmp_path / "helix", {
        "docker-compose.dev.yaml": "services:\n"
        "  api: {build: {context: ., dockerfile: Dockerfile, target: api-dev-env}}\n"
        "  frontend: {build: {context: ., dockerfile: Dockerfile, target: ui-dev-env}}\n",
        ".dockerignore": ".env\nnode_modules\nfrontend/node_modules\nfrontend/dist\ndesign\n",
        "Dockerfile": ROOT_DOCKERFILE,
        "Dockerfile.ubuntu-helix": DESKTOP,
        "Dockerfile.ubuntu-helix.dockerignore": ".git\nfrontend\nsandbox\nsandbox-images\n**/target/\n",
        "Dockerfile.sandbox": SANDBOX,
        "Dockerfile.zed-build": f"FROM {UBUNTU} AS builder\nCOPY . /zed\nFROM scratch\nCOPY --from=builder /zed/z /zed\n",
        "Dockerfile.qwen-code-build": f"FROM {NODE} AS builder\nCOPY package.json ./\nCOPY . .\nFROM scratch\n"
        "COPY --from=builder /build/dist/ /dist/\n",
        "planner.yaml": RULES, "README.md": "# helix\n", "go.mod": "module helix\n\ngo 1.25.4\n", "go.sum": "",
        "api/cmd/main.go": "package main\n", "frontend/package.json": "{}\n", "frontend/yarn.lock": "",
        "frontend/src/App.tsx": "export {}\n", "desktop/shared/start.sh": "#!/bin/sh\n", "sandbox/start.sh": "#!/bin/sh\n",
    })  # fmt: skip


def plan(checkout: Path) -> dict[str, Any]:
    env = {**os.environ, "PLANNER_CACHE_DIR": str(checkout.parent / "cache"), "PLANNER_SERVER": "off"}
    done = subprocess.run(
        [sys.executable, "-m", "planner", "-f", "docker-compose.dev.yaml", "plan", "--offline", "--format", "json"],
        cwd=checkout, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def keys(checkout: Path) -> dict[str, str]:
    return {node["name"]: node["key"] for node in plan(checkout)["nodes"]}


def moved(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_every_key_is_narrowed_and_the_first_level_holds_api_and_frontend(checkout: Path) -> None:
    planned = plan(checkout)
    whole = {
        node["name"]: [r["detail"] for r in node["reasons"] if r["code"] == "whole-context"]
        for node in planned["nodes"]
    }
    assert whole == {name: [] for name in whole}
    assert len(whole) == 6
    assert {"api", "frontend"} <= set(planned["levels"][0])
    assert planned["levels"][-1] == ["helix-sandbox"]
    desktop = next(n for n in planned["nodes"] if n["name"] == "helix-ubuntu")
    assert "onbuild-unchecked" in {r["code"] for r in desktop["reasons"]}  # pinned bases no daemon holds


def test_edits_move_exactly_the_keys_of_the_builds_that_read_them(checkout: Path) -> None:
    before = keys(checkout)
    (checkout / "README.md").write_text("# helix, edited\n")
    with (checkout / "planner.yaml").open("a") as rules:
        rules.write("# a comment\n")
    (checkout / "frontend/src/App.tsx").write_text("export const x = 1\n")
    (checkout.parent / "qwen-code/node_modules/dep/index.js").write_text("edited\n")
    assert moved(before, keys(checkout)) == set()
    (checkout / "api/cmd/main.go").write_text("package main // edited\n")
    assert moved(before, keys(checkout)) == {"api", "helix-ubuntu", "helix-sandbox"}
    after_api = keys(checkout)
    (checkout.parent / "zed/crates/zed/src/main.rs").write_text("fn main() { /* edited */ }\n")
    assert moved(after_api, keys(checkout)) == {"zed-build", "helix-ubuntu", "helix-sandbox"}


def test_the_desktop_waits_for_the_outputs_it_reads_and_nothing_else_does(checkout: Path) -> None:
    from planner.build.graph import build_graph
    from planner.build.stack import load_stack
    from planner.compose.options import ProjectOptions

    options = ProjectOptions(
        files=("docker-compose.dev.yaml",),
        environ={"PATH": "/usr/bin", "HOME": str(checkout)},
        cwd=str(checkout),
    )
    graph = build_graph(load_stack(options))
    assert sorted((e.source, e.target, e.via) for e in graph.edges) == [
        ("helix-ubuntu", "helix-sandbox", "stamp"),
        ("qwen-code-build", "helix-ubuntu", "artifact"),
        ("zed-build", "helix-ubuntu", "artifact"),
    ]
