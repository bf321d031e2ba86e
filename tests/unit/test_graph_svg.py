"""`planner graph --format svg`: the DOT graph drawn by Graphviz where `dot` is installed; where it is not, exit 1
with one line saying how to get it."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.app import app

REPO = Path(__file__).resolve().parents[2]
HELIX = REPO / "examples" / "compose" / "helix"
SVG = "{http://www.w3.org/2000/svg}"
HELIX_NODES = {"api", "frontend", "zed-build", "qwen-code-build", "helix-ubuntu", "helix-sandbox"}


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="graphviz `dot` is not installed (CI installs it via apt)"
)
def test_svg_has_a_node_per_graph_node_and_an_edge_per_graph_edge(runner: CliRunner) -> None:
    result = runner.invoke(app, ["graph", "--format", "svg", "--project-directory", str(HELIX)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    root = ET.fromstring(result.stdout.encode())  # parses as XML, and it is SVG
    assert root.tag == f"{SVG}svg"
    groups: dict[str | None, list[str | None]] = {}
    for g in root.iter(f"{SVG}g"):
        groups.setdefault(g.get("class"), []).append(g.findtext(f"{SVG}title"))
    assert set(groups["node"]) == HELIX_NODES and len(groups["node"]) == len(HELIX_NODES)
    edges = runner.invoke(app, ["graph", "--format", "json", "--project-directory", str(HELIX)])
    expected = {f"{e['from']}->{e['to']}" for e in json.loads(edges.stdout)["edges"]}
    assert set(groups["edge"]) == expected


def test_without_graphviz_one_line_says_how_to_get_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere
    result = runner.invoke(app, ["graph", "--format", "svg", "--project-directory", str(HELIX)])
    assert result.exit_code == 1  # a missing tool is a runtime failure, not bad input
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("planner: ") and "apt-get install graphviz" in line and "--format dot" in line


def test_a_failing_dot_is_a_runtime_failure(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: <stdin>: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    result = runner.invoke(app, ["graph", "--format", "svg", "--project-directory", str(HELIX)])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line == "planner: Graphviz `dot -Tsvg` failed: Error: <stdin>: syntax error in line 1"
