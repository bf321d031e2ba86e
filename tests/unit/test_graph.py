"""The build graph: every edge kind, cycles, selection, levels, and `planner graph` in its three formats."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.base.errors import UsageError
from planner.base.refs import normalize_ref
from planner.build.graph import BuildGraph, GraphError, build_graph
from planner.build.stack import load_stack
from planner.cli.app import app
from planner.cli.render import graph_data, graph_dot
from planner.compose.options import ProjectOptions
from tests.helpers import write_tree as write

REPO = Path(__file__).resolve().parents[2]
HELIX = REPO / "examples" / "compose" / "helix"
BASIC = REPO / "examples" / "compose" / "basic"


def graph(root: Path, files: dict[str, str], env: dict[str, str] | None = None) -> BuildGraph:
    write(root, files)
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(root), **(env or {})}
    return build_graph(
        load_stack(ProjectOptions(project_directory=str(root), environ=environ, cwd=str(root)))
    )


def edges(g: BuildGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.via) for e in g.edges}


# --- image references in Dockerfiles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("app", ("app", None)),
        ("app:1", ("app", "1")),
        ("reg.local:5000/app", ("reg.local:5000/app", None)),
        ("reg.local:5000/app:2", ("reg.local:5000/app", "2")),
        ("docker.io/library/app:3", ("app", "3")),
        ("docker.io/org/app", ("org/app", None)),
        ("app@sha256:abc", ("app", "@sha256:abc")),
    ],
)
def test_normalize_ref(ref: str, expected: tuple[str, str | None]) -> None:
    assert normalize_ref(ref) == expected


def test_from_by_image_name_with_and_without_tag(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": """\
                name: p
                services:
                  base:
                    build: ./base
                  tagged:
                    image: org/tagged:1.0
                    build: ./tagged
                  by-default-name:
                    build: {context: ., dockerfile: d1}
                  by-tag:
                    build: {context: ., dockerfile: d2}
                  by-repo:
                    build: {context: ., dockerfile: d3}
                  other-tag:
                    build: {context: ., dockerfile: d4}
                  hub-prefix:
                    build: {context: ., dockerfile: d5}
                """,
            "base/Dockerfile": "FROM scratch\n",
            "tagged/Dockerfile": "FROM scratch\n",
            "d1": "FROM p-base\n",
            "d2": "FROM org/tagged:1.0\n",
            "d3": "FROM org/tagged\n",
            "d4": "FROM org/tagged:2.0\n",
            "d5": "FROM docker.io/library/p-base:latest\n",
        },
    )
    assert edges(g) == {
        ("base", "by-default-name", "FROM"),
        ("tagged", "by-tag", "FROM"),
        ("tagged", "by-repo", "FROM"),  # a tagless reference names the only node of that repository
        ("base", "hub-prefix", "FROM"),
    }


def test_a_tagless_reference_to_an_ambiguous_repository_adds_no_edge(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  one: {image: "lib:1", build: {context: ., dockerfile: base}}
                  two: {image: "lib:2", build: {context: ., dockerfile: base}}
                  app: {build: {context: ., dockerfile: app}}
                """,
            "base": "FROM scratch\n",
            "app": "FROM lib\nCOPY --from=lib:2 /a /a\n",
        },
    )
    assert edges(g) == {("two", "app", "COPY --from")}


def test_rules_image_names_and_tags_are_producers(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": "name: p\nservices:\n  app:\n    build: ./app\n",
            "app/Dockerfile": "FROM toolbox:7\nCOPY --from=p-helper /x /x\n",  # p-helper: <project>-<name>
            "planner.yaml": """\
                images:
                  tools:
                    dockerfile_inline: "FROM scratch\\n"
                    image: toolbox
                    tags: ["toolbox:7"]
                  helper:
                    dockerfile_inline: "FROM scratch\\n"
                """,
        },
    )
    assert edges(g) == {("tools", "app", "FROM"), ("helper", "app", "COPY --from")}


def test_copy_from_and_run_mount_from(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  lib: {image: lib, build: {context: ., dockerfile: lib}}
                  cache: {image: "cache:1", build: {context: ., dockerfile: lib}}
                  app: {build: {context: ., dockerfile: app}}
                """,
            "lib": "FROM scratch\n",
            "app": """\
                FROM scratch
                COPY --from=lib /a /a
                RUN --mount=type=bind,from=cache:1,target=/c true
                """,
        },
    )
    assert edges(g) == {("lib", "app", "COPY --from"), ("cache", "app", "RUN --mount")}
    detail = {e.via: e.detail for e in g.edges}
    assert detail == {"COPY --from": "lib (Dockerfile line 2)", "RUN --mount": "cache:1 (Dockerfile line 3)"}


def test_stage_names_shadow_images_and_args_resolve_refs(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  lib: {image: lib, build: {context: ., dockerfile: lib}}
                  stage-user: {build: {context: ., dockerfile: stages}}
                  arg-user:
                    build:
                      context: .
                      dockerfile: args
                      args: {BASE: lib}
                """,
            "lib": "FROM scratch\n",
            "stages": "FROM scratch AS lib\nFROM lib\nCOPY --from=LIB /a /a\n",
            "args": "ARG BASE=scratch\nFROM ${BASE}\n",
        },
    )
    assert edges(g) == {("lib", "arg-user", "FROM")}


def test_additional_contexts(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  base: {image: "base:1", build: {context: ., dockerfile: plain}}
                  db: {image: "postgres:16"}
                  app:
                    build:
                      context: .
                      dockerfile: app
                      additional_contexts:
                        svc: service:base
                        img: docker-image://base:1
                        dir: ./folder
                        base: ./folder
                """,
            "plain": "FROM scratch\n",
            "folder/x": "",
            "app": "FROM base\nCOPY --from=svc /a /a\n",  # `base` and `svc` are named contexts, not images
            "planner.yaml": """\
                images:
                  tool:
                    dockerfile: plain
                    additional_contexts: {src: "target:base"}
                """,
        },
    )
    assert edges(g) == {("base", "app", "additional_contexts"), ("base", "tool", "additional_contexts")}
    assert sorted(e.detail for e in g.edges if e.target == "app") == [
        "img=docker-image://base:1",
        "svc=service:base",
    ]


# --- artifacts and stamps ----------------------------------------------------------------------------


ARTIFACT_PROJECT = {
    "compose.yaml": """\
        services:
          root-ctx: {build: {context: ., dockerfile: plain}}
          sub-ctx: {build: {context: ./app, dockerfile: ../plain}}
          extra-ctx:
            build:
              context: ./elsewhere
              dockerfile: ../plain
              additional_contexts: {out: ./out}
        """,
    "plain": "FROM scratch\nCOPY . /ctx/\n",  # reads its whole context: every output it is sent is an edge
    "app/x": "",
    "elsewhere/x": "",
    "tools/Dockerfile": "FROM scratch\n",
}


def test_artifact_output_inside_a_context_is_an_edge(tmp_path: Path) -> None:
    rules = "artifacts:\n  gen:\n    context: tools\n    output: {type: local, dest: out/gen}\n"
    g = graph(tmp_path, {**ARTIFACT_PROJECT, "planner.yaml": rules})
    assert edges(g) == {("gen", "root-ctx", "artifact"), ("gen", "extra-ctx", "artifact")}
    assert {e.detail for e in g.edges} == {
        f"{tmp_path / 'out' / 'gen'} (line 2: COPY .)",
        f"{tmp_path / 'out' / 'gen'} (in the additional context out)",
    }
    assert g.nodes["gen"].kind == "artifact"


def test_an_output_inside_a_context_is_an_edge_only_into_builds_that_read_it(tmp_path: Path) -> None:
    """Helix's root `.dockerignore` sends `zed-build/`; only the desktop's `COPY zed-build/zed` reads it (issue
    29: before, api and frontend needed Zed too)."""
    files = {
        "compose.yaml": """\
            services:
              api: {build: {context: ., dockerfile: Dockerfile.api}}
              ui: {build: {context: ., dockerfile: Dockerfile.ui}}
              desktop: {build: {context: ., dockerfile: Dockerfile.desktop}}
              everything: {build: {context: ., dockerfile: Dockerfile.all}}
              opaque: {build: {context: ., dockerfile: Dockerfile.opaque}}
            """,
        "Dockerfile.api": "FROM scratch\nCOPY go.mod api/ /app/\n",
        "Dockerfile.ui": "FROM scratch\nCOPY ./frontend/*.json /app/\n",
        "Dockerfile.desktop": "# syntax=docker/dockerfile:1.4\nFROM scratch\nCOPY zed-build/zed /z\nCOPY fr*/dist /d\n",
        "Dockerfile.all": "FROM scratch\nCOPY . /all/\n",
        "Dockerfile.opaque": "FROM scratch\nARG SRC\nCOPY $SRC /x\n",
        "go.mod": "", "api/x": "", "frontend/package.json": "", "zed/Dockerfile": "FROM scratch\n",
        "planner.yaml": "artifacts:\n  zed:\n    context: zed\n    output: {type: local, dest: zed-build}\n"
        "  ui-dist:\n    context: zed\n    output: {type: local, dest: frontend/dist}\n",
    }  # fmt: skip
    g = graph(tmp_path, files)
    assert edges(g) == {
        ("zed", "desktop", "artifact"), ("ui-dist", "desktop", "artifact"),
        ("zed", "everything", "artifact"), ("ui-dist", "everything", "artifact"),
        ("zed", "opaque", "artifact"), ("ui-dist", "opaque", "artifact"),
    }  # fmt: skip
    why = {(e.source, e.target): e.detail for e in g.edges}
    assert why["zed", "desktop"].endswith("(line 3: COPY zed-build/zed)")
    assert "the whole context counts: line 3: COPY source '$SRC'" in why["zed", "opaque"]
    assert g.levels()[0] == ["api", "ui-dist", "ui", "zed"] or set(g.levels()[0]) == {
        "api",
        "ui",
        "ui-dist",
        "zed",
    }


def test_artifact_output_excluded_by_dockerignore_is_not_an_edge(tmp_path: Path) -> None:
    rules = "artifacts:\n  gen:\n    context: tools\n    output: {type: tar, dest: app/gen.tar}\n"
    files = {**ARTIFACT_PROJECT, "planner.yaml": rules}
    assert edges(graph(tmp_path, files)) == {("gen", "root-ctx", "artifact"), ("gen", "sub-ctx", "artifact")}

    write(tmp_path, {".dockerignore": "app\n", "app/.dockerignore": "*.tar\n"})
    assert edges(graph(tmp_path, files)) == set()

    # the Dockerfile's own ignore file wins over the context's, and an exception re-includes the output
    write(tmp_path, {"plain.dockerignore": "*\n!app/gen.tar\n"})
    assert edges(graph(tmp_path, files)) == {("gen", "root-ctx", "artifact")}


def test_artifact_output_in_an_excluded_folder_with_a_re_included_file(tmp_path: Path) -> None:
    # `out` is excluded, but the walk enters it for `!out/gen/keep`: the artifact's folder may be sent
    rules = "artifacts:\n  gen:\n    context: tools\n    output: {type: local, dest: out/gen}\n"
    files = {**ARTIFACT_PROJECT, "planner.yaml": rules, ".dockerignore": "out\n!out/gen/keep\n"}
    assert ("gen", "root-ctx", "artifact") in edges(graph(tmp_path, files))
    files[".dockerignore"] = "out\n"
    assert ("gen", "root-ctx", "artifact") not in edges(graph(tmp_path, files))


def test_artifact_output_outside_every_context_is_not_an_edge(tmp_path: Path) -> None:
    rules = "artifacts:\n  gen:\n    context: tools\n    output: {type: local, dest: tools/out}\n"
    files = {**ARTIFACT_PROJECT, "planner.yaml": rules, ".dockerignore": "tools\n"}
    assert edges(graph(tmp_path, files)) == set()  # its own context is not a consumer either


def test_stamp_written_into_a_context_is_an_edge_from_its_source(tmp_path: Path) -> None:
    files = {
        "compose.yaml": """\
            services:
              desktop: {build: {context: ./desktop}}
              sandbox: {build: {context: ./sandbox}}
              other: {build: {context: ./other}}
            """,
        "desktop/Dockerfile": "FROM scratch\n",
        "sandbox/Dockerfile": "FROM scratch\nCOPY images/ /opt/images/\n",
        "other/Dockerfile": "FROM scratch\nCOPY . /x/\n",
        "planner.yaml": """\
            stamps:
              version: {path: sandbox/images/desktop.version, from: desktop}
              own: {path: desktop/self.version, from: desktop}
            """,
    }
    g = graph(tmp_path, files)
    assert edges(g) == {("desktop", "sandbox", "stamp")}
    write(tmp_path, {"sandbox/.dockerignore": "images\n"})
    assert edges(graph(tmp_path, files)) == set()


# --- depends_on -------------------------------------------------------------------------------------


def test_rules_depends_on_is_an_edge_but_compose_depends_on_is_not(tmp_path: Path) -> None:
    g = graph(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  a: {build: ., depends_on: [b]}
                  b: {build: .}
                  c: {build: .}
                """,
            "Dockerfile": "FROM scratch\n",
            "planner.yaml": "rules:\n  - match: c\n    depends_on: [a]\n",
        },
    )
    assert edges(g) == {("a", "c", "depends_on")}
    assert g.levels() == [["a", "b"], ["c"]]


# --- cycles -----------------------------------------------------------------------------------------


def _cycle_files() -> dict[str, str]:
    return {
        "compose.yaml": """\
            services:
              a: {image: img-a, build: {context: ., dockerfile: da}}
              b: {image: img-b, build: {context: ., dockerfile: db}}
            """,
        "da": "FROM img-b\n",
        "db": "FROM scratch\nCOPY --from=img-a /x /x\n",
        "planner.yaml": "artifacts:\n  gen:\n    context: gen\n    depends_on: [b]\n    output: {type: local, dest: gen/out}\n",
        "gen/Dockerfile": "FROM scratch\n",
    }


def test_a_cycle_names_every_step_with_its_edge_kind(tmp_path: Path) -> None:
    with pytest.raises(GraphError) as caught:
        graph(tmp_path, _cycle_files())
    message = caught.value.message
    assert message.startswith("dependency cycle: ")
    steps = message.removeprefix("dependency cycle: ").split(", ")
    assert sorted(steps) == ["a -[COPY --from]-> b", "b -[FROM]-> a"]
    assert caught.value.exit_code == 2


def test_a_cycle_through_an_artifact_and_rules(tmp_path: Path) -> None:
    files = {
        "compose.yaml": "services:\n  app: {build: ., image: app}\n",
        "Dockerfile": "FROM scratch\nCOPY . /x/\n",
        "planner.yaml": """\
            artifacts:
              gen:
                context: gen
                output: {type: local, dest: gen-out}
            rules:
              - match: gen
                depends_on: [app]
            """,
        "gen/Dockerfile": "FROM scratch\n",
    }
    with pytest.raises(GraphError) as caught:
        graph(tmp_path, files)
    steps = caught.value.message.removeprefix("dependency cycle: ").split(", ")
    assert sorted(steps) == ["app -[depends_on]-> gen", "gen -[artifact]-> app"]


def test_a_cycle_exits_2_from_the_cli(tmp_path: Path, runner: CliRunner) -> None:
    write(tmp_path, _cycle_files())
    result = runner.invoke(app, ["graph", "--project-directory", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("planner: ") and "dependency cycle: " in line
    assert "a -[COPY --from]-> b" in line and "b -[FROM]-> a" in line


def test_a_missing_dockerfile_is_an_input_error(tmp_path: Path, runner: CliRunner) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a: {build: ., image: a}\n"})
    result = runner.invoke(app, ["graph", "--project-directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "a: Dockerfile not found" in result.stderr


# --- selection and levels -------------------------------------------------------------------------

DIAMOND = {
    "compose.yaml": """\
        services:
          base: {image: base, build: {context: ., dockerfile: plain}}
          left: {image: left, build: {context: ., dockerfile: from-base}}
          right: {image: right, build: {context: ., dockerfile: from-base}}
          top: {build: {context: ., dockerfile: top}}
          lone: {build: {context: ., dockerfile: plain}}
          below: {build: {context: ., dockerfile: from-left}}
        """,
    "plain": "FROM scratch\n",
    "from-base": "FROM base\n",
    "from-left": "FROM left\n",
    "top": "FROM left\nCOPY --from=right /a /a\n",
}


def test_levels_are_topological_generations(tmp_path: Path) -> None:
    g = graph(tmp_path, DIAMOND)
    assert g.levels() == [["base", "lone"], ["left", "right"], ["below", "top"]]
    assert g.order() == ["base", "lone", "left", "right", "below", "top"]
    assert g.upstream("top") == ["left", "right"]


def test_selection_pulls_in_upstream_only(tmp_path: Path) -> None:
    g = graph(tmp_path, DIAMOND).select(["top"])
    assert set(g.nodes) == {"base", "left", "right", "top"}
    assert edges(g) == {
        ("base", "left", "FROM"), ("base", "right", "FROM"), ("left", "top", "FROM"), ("right", "top", "COPY --from"),
    }  # fmt: skip
    assert g.levels() == [["base"], ["left", "right"], ["top"]]
    assert set(graph(tmp_path, DIAMOND).select(["left", "lone"]).nodes) == {"base", "left", "lone"}
    full = graph(tmp_path, DIAMOND)
    assert full.select([]) is full


def test_selecting_an_unknown_node_is_a_usage_error(tmp_path: Path, runner: CliRunner) -> None:
    with pytest.raises(UsageError, match="unknown node\\(s\\) nope; buildable nodes: base, below, left"):
        graph(tmp_path, DIAMOND).select(["top", "nope"])
    result = runner.invoke(app, ["graph", "nope", "--project-directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown node(s) nope" in result.stderr


def test_selection_keeps_only_the_stamps_of_kept_sources(tmp_path: Path) -> None:
    files = {
        "compose.yaml": "services:\n  a: {build: ./a}\n  b: {build: ./b}\n",
        "a/Dockerfile": "FROM scratch\n",
        "b/Dockerfile": "FROM scratch\nCOPY . /x/\n",
        "planner.yaml": "stamps:\n  v: {path: b/a.version, from: a}\n",
    }
    g = graph(tmp_path, files)
    assert edges(g) == {("a", "b", "stamp")}
    assert set(g.select(["b"]).stack.stamps) == {"v"}
    assert set(g.select(["a"]).stack.stamps) == {"v"}
    assert edges(g.select(["a"])) == set()


# --- the examples and the output formats -------------------------------------------------------------


HELIX_EDGES = [
    {"from": "helix-ubuntu", "to": "helix-sandbox", "via": "stamp"},
    {"from": "qwen-code-build", "to": "helix-ubuntu", "via": "artifact"},
    {"from": "zed-build", "to": "helix-ubuntu", "via": "artifact"},
]


def test_helix_graph_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["graph", "--project-directory", str(HELIX)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"nodes", "edges", "levels"}
    assert data["levels"] == [
        ["api", "frontend", "qwen-code-build", "zed-build"],
        ["helix-ubuntu"],
        ["helix-sandbox"],
    ]
    assert data["nodes"] == [
        {"name": "api", "kind": "image"},
        {"name": "frontend", "kind": "image"},
        {"name": "qwen-code-build", "kind": "artifact"},
        {"name": "zed-build", "kind": "artifact"},
        {"name": "helix-ubuntu", "kind": "image"},
        {"name": "helix-sandbox", "kind": "image"},
    ]
    assert data["edges"] == HELIX_EDGES


def test_helix_selection_keeps_the_chain(runner: CliRunner) -> None:
    result = runner.invoke(app, ["graph", "helix-sandbox", "--project-directory", str(HELIX)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["levels"] == [["qwen-code-build", "zed-build"], ["helix-ubuntu"], ["helix-sandbox"]]
    assert data["edges"] == HELIX_EDGES


def test_basic_example_graph(runner: CliRunner) -> None:
    result = runner.invoke(app, ["graph", "--project-directory", str(BASIC)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "nodes": [{"name": "api", "kind": "image"}, {"name": "web", "kind": "image"}],
        "edges": [{"from": "api", "to": "web", "via": "COPY --from"}],
        "levels": [["api"], ["web"]],
    }


def _helix() -> BuildGraph:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(HELIX)}
    return build_graph(
        load_stack(ProjectOptions(project_directory=str(HELIX), environ=environ, cwd=str(HELIX)))
    )


def test_graph_data_matches_the_graph() -> None:
    g = _helix()
    data = graph_data(g)
    assert [n["name"] for n in data["nodes"]] == g.order()
    assert len(data["edges"]) == len(g.edges)


def test_dot_output_is_well_formed() -> None:
    text = graph_dot(_helix())
    lines = text.splitlines()
    assert lines[0] == "digraph planner {" and lines[-1] == "}"
    assert text.count("{") == text.count("}")
    declared = dict(re.findall(r'^    "([^"]+)" \[shape=(box|folder), label="[^"]*"\];$', text, re.MULTILINE))
    assert declared == {
        "api": "box", "frontend": "box", "helix-ubuntu": "box", "helix-sandbox": "box",
        "qwen-code-build": "folder", "zed-build": "folder",
    }  # fmt: skip
    assert '"api" [shape=box, label="api\\nhelix-api"];' in text  # DOT's line break, not an escaped backslash
    arrows = re.findall(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]+)"\];$', text, re.MULTILINE)
    assert [{"from": a, "to": b, "via": v} for a, b, v in arrows] == HELIX_EDGES
    ranks = re.findall(r"^  subgraph level_(\d+) \{ rank=same;$", text, re.MULTILINE)
    assert ranks == ["0", "1", "2"]


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="graphviz `dot` is not installed (CI installs it via apt)"
)
def test_dot_output_renders_with_graphviz(tmp_path: Path) -> None:
    source = tmp_path / "helix.dot"
    source.write_text(graph_dot(_helix()))
    result = subprocess.run(["dot", "-Tsvg", str(source)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no syntax warnings either
    svg = html.unescape(result.stdout)  # graphviz writes "-" as &#45;
    assert "<svg" in svg
    for name in ("helix-ubuntu", "helix-sandbox", "zed-build", "qwen-code-build", "artifact", "stamp"):
        assert f">{name}<" in svg


def test_mermaid_output_shape(runner: CliRunner) -> None:
    result = runner.invoke(app, ["graph", "--format", "mermaid", "--project-directory", str(HELIX)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = dict(re.findall(r'^  (n\d+)(\["[^"]+"\]|\[/"[^"]+"/\])$', result.stdout, re.MULTILINE))
    names = {ident: re.sub(r'[\[\]/"]', "", shape) for ident, shape in nodes.items()}
    assert sorted(names.values()) == sorted(
        ["api", "frontend", "qwen-code-build", "zed-build", "helix-ubuntu", "helix-sandbox"]
    )
    assert [shape.startswith("[/") for shape in nodes.values()] == [False, False, True, True, False, False]
    arrows = re.findall(r"^  (n\d+) -->\|([^|]+)\| (n\d+)$", result.stdout, re.MULTILINE)
    assert [{"from": names[a], "to": names[b], "via": v} for a, v, b in arrows] == HELIX_EDGES
    assert len(lines) == 1 + len(nodes) + len(arrows)


def test_dot_and_mermaid_from_the_cli(runner: CliRunner) -> None:
    for fmt, first in (("dot", "digraph planner {"), ("mermaid", "flowchart LR"), ("json", "{")):
        result = runner.invoke(app, ["graph", "--format", fmt, "--project-directory", str(BASIC)])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0] == first


# --- the DAG without networkx: the same answers as networkx ------------------------------------------


def _random_graph(seed: int, acyclic: bool) -> tuple[list[str], list[tuple[str, str]]]:
    import random

    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(rng.randint(1, 14))]
    rng.shuffle(nodes)
    edges = []
    for _ in range(rng.randint(0, 3 * len(nodes))):
        a, b = rng.sample(range(len(nodes)), 2) if len(nodes) > 1 else (0, 0)
        if a == b:
            continue
        if acyclic and a > b:
            a, b = b, a  # edges only forward in the shuffled order: a DAG
        edges.append((nodes[a], nodes[b]))
    return sorted(nodes), edges


@pytest.mark.parametrize("seed", range(300))
def test_the_dag_answers_as_networkx_does(seed: int) -> None:
    import networkx as nx

    from planner.build.graph import Dag

    nodes, edge_list = _random_graph(seed, acyclic=seed % 3 != 0)
    ours = Dag(nodes, edge_list)
    theirs = nx.DiGraph()
    theirs.add_nodes_from(nodes)
    theirs.add_edges_from(edge_list)
    levels = ours.generations()
    if not nx.is_directed_acyclic_graph(theirs):
        assert levels is None
        cycle = ours.find_cycle()
        assert cycle == list(nx.find_cycle(theirs))
        return
    assert levels is not None
    assert [sorted(level) for level in levels] == [sorted(g) for g in nx.topological_generations(theirs)]
    for node in nodes:
        assert ours.ancestors(node) == nx.ancestors(theirs, node)
        assert sorted(ours.successors(node)) == sorted(theirs.successors(node))
        assert sorted(ours.predecessors(node)) == sorted(theirs.predecessors(node))
