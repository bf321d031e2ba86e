"""Narrowed keys: what a Dockerfile reads (dockerfile.context_reads), the selection over a tree
(keys/narrow.select, Go filepath.Match wildcards), and the keys that come out of it."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.build.dockerfile import Source, context_reads
from planner.build.graph import build_graph
from planner.build.sourcepattern import go_pattern
from planner.build.stack import load_stack
from planner.compose.options import ProjectOptions
from planner.keys import narrow
from planner.keys.compute import compute_keys
from planner.keys.manifest import Manifest
from planner.keys.statcache import StatCache
from planner.keys.tree import Tree
from tests.helpers import write_tree


def paths_of(reads_text: str, args: dict[str, str] | None = None, target: str | None = None) -> list[str]:
    reads = context_reads(reads_text, args or {}, target)
    assert reads.fallback is None, reads.fallback
    return [s.path for s in reads.sources]


def fallback_of(text: str, args: dict[str, str] | None = None, target: str | None = None) -> str:
    reads = context_reads(text, args or {}, target)
    assert reads.fallback is not None
    return reads.fallback


# --- what a Dockerfile reads -----------------------------------------------------------------------------------


def test_copy_add_and_bind_mount_sources_of_the_needed_stages_only() -> None:
    text = """
FROM scratch AS unused
COPY never/ /x/
FROM busybox AS tools
RUN --mount=type=bind,source=scripts,target=/s sh /s/run
RUN --mount=type=cache,target=/c --mount=type=secret,id=x true
FROM scratch AS base
COPY ./a/../b/*.txt c /x/
FROM base AS final
COPY --from=tools /out /out
ADD ["d e", "/y/"]
RUN --mount=target=/m,src=/etc/conf true
"""
    assert paths_of(text) == ["scripts", "b/*.txt", "c", "d e", "etc/conf"]
    assert paths_of(text, target="unused") == ["never"]
    assert context_reads(text, {}, None).bases == ("busybox",)


def test_from_names_a_stage_by_name_or_index_else_an_image() -> None:
    text = "FROM scratch\nCOPY a /a\nFROM scratch AS two\nCOPY b /b\nFROM scratch\nCOPY --from=0 /a /a\n"
    assert paths_of(text) == ["a"]
    assert paths_of(text.replace("--from=0", "--from=TWO")) == ["b"]
    assert paths_of(text.replace("--from=0", "--from=alpine:3")) == []
    mount = "FROM scratch AS s\nCOPY m /m\nFROM busybox\nRUN --mount=from=s,target=/x true\n"
    assert paths_of(mount) == ["m"]


def test_args_in_stage_scope() -> None:
    text = "ARG G=glob\nFROM scratch\nARG D=dflt\nARG G\nCOPY $D/${G}/* /x/\n"
    assert paths_of(text) == ["dflt/glob/*"]
    assert paths_of(text, {"D": "given"}) == ["given/glob/*"]
    # a global ARG is visible in a stage only when redeclared there
    assert "$G" in fallback_of("ARG G=glob\nFROM scratch\nCOPY $G /x\n")
    assert "$D" in fallback_of("FROM scratch\nARG D\nCOPY $D /x\n")
    assert paths_of("FROM scratch\nARG D\nCOPY $D /x\n", {"D": "b"}) == ["b"]
    # an ENV of the same name may win over the ARG: not resolved
    assert "$D" in fallback_of("FROM scratch\nARG D=a\nENV D=b\nCOPY $D /x\n")
    assert "$D" in fallback_of("FROM scratch AS p\nENV D=b\nFROM p\nARG D=a\nCOPY $D /x\n")
    # platform args depend on the builder
    assert "TARGETARCH" in fallback_of("FROM scratch\nARG TARGETARCH\nCOPY bin/$TARGETARCH /x\n")
    # an unresolvable ARG in a stage the target does not need does not matter
    assert paths_of("FROM scratch AS u\nCOPY $NOPE /x\nFROM scratch\nCOPY ok /x\n") == ["ok"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("# syntax=example.com/team/frontend:1\nFROM scratch\nCOPY a /a\n", "syntax"),
        ("# syntax=docker/dockerfile-evil:1\nFROM scratch\nCOPY a /a\n", "syntax"),
        ("# escape=`\nFROM scratch\nCOPY a /a\n", "escape"),
        ("FROM scratch\nADD https://example.com/x.tgz /x\n", "remote"),
        ("FROM scratch\nADD git@github.com:a/b.git /x\n", "remote"),
        ('FROM scratch\nCOPY "a b" /x/\n', "quotes"),
        ("FROM scratch\nCOPY a\\ b /x/\n", "escapes"),
        ("FROM scratch\nONBUILD COPY . /x\nCOPY a /a\n", "ONBUILD"),
        ("FROM scratch\nRUN --mount=type=bind,source=$X,target=/m true\n", "variables"),
        ("FROM scratch\nRUN --mount=type=weird,target=/m true\n", "weird"),
        ("FROM scratch\nCOPY --from=$S /a /a\n", "--from"),
        ("FROM scratch\nCOPY onlyone\n", "destination"),
    ],
)
def test_constructs_not_resolved_exactly_fall_back_with_a_reason(text: str, words: str) -> None:
    assert words in fallback_of(text)


@pytest.mark.parametrize(
    "syntax",
    [
        "docker/dockerfile:1", "docker/dockerfile:1.4", "docker.io/docker/dockerfile:1.7-labs",
        "docker/dockerfile:1.20", "docker/dockerfile-upstream:master", "docker/dockerfile:labs",
        "docker/dockerfile@sha256:" + "a" * 64, "docker.io/docker/dockerfile:1.4@sha256:" + "0" * 64,
    ],
)  # fmt: skip
def test_dockers_own_frontends_are_analysed(syntax: str) -> None:
    """The real helix desktops start with `# syntax=docker/dockerfile:1.4`: their reads are the COPY sources."""
    assert paths_of(f"# syntax={syntax}\nFROM scratch\nCOPY a b/ /x/\n") == ["a", "b"]


def test_heredocs_read_nothing_from_the_context() -> None:
    """Every form BuildKit takes, several per instruction, mixed with real sources; shell heredocs in a body
    (`<< 'EOF'`, with a space) are body text."""
    text = (
        "# syntax=docker/dockerfile:1.4\nFROM scratch\n"
        "COPY <<'_BASHRC' /root/.bashrc\nalias ll='ls -l'\n_BASHRC\n"
        'COPY <<"Q" <<-T real.txt /etc/\nq\nQ\n\tt\n\tT\n'
        "COPY <<_DBUS /etc/dbus\nx\n_DBUS\n"
        "RUN --mount=type=cache,target=/c \\\n  <<_BUILD\ncat > /x << 'PINEOF'\nCOPY secret /s\nPINEOF\n_BUILD\n"
        "ADD <<EOF /a\nbody\nEOF\n"
        "COPY after/ /after/\n"
    )
    assert paths_of(text) == ["real.txt", "after"]


def test_copy_parents_and_exclude_read_their_sources() -> None:
    """`--exclude` only narrows a source; `--parents` copies the same files: the sources bound the reads."""
    assert paths_of("# syntax=docker/dockerfile:1.7-labs\nFROM scratch\nCOPY --parents a/*/x b/ /x/\n") == [
        "a/*/x",
        "b",
    ]
    assert paths_of("# syntax=docker/dockerfile:1.19\nFROM scratch\nCOPY --exclude=*.md docs /x/\n") == [
        "docs"
    ]


def test_unknown_target_falls_back() -> None:
    assert "nope" in fallback_of("FROM scratch\nCOPY a /a\n", target="nope")


# --- the selection ---------------------------------------------------------------------------------------------


def tree(*paths: str, links: tuple[str, ...] = ()) -> dict[str, str]:
    files = {}
    for path in paths:
        kind = "d" if path.endswith("/") else "f"
        files[path.rstrip("/")] = f"{kind} 644 {'' if kind == 'd' else 'h' + path}"
    for link in links:
        files[link] = "l 777 target"
    return dict(sorted(files.items()))


def select(files: dict[str, str], *sources: str) -> list[str]:
    selection = narrow.select(Tree.of_files(files), [Source(s, 1, "COPY") for s in sources])
    return list(selection)


FILES = tree("a/", "a/1.txt", "a/d/", "a/d/1.txt", "a.txt", "ab/", "ab/x", "b.md", "c/", "c/2.txt", "c.txt")


def test_a_literal_selects_its_subtree_and_nothing_beside() -> None:
    assert select(FILES, "a") == ["a", "a/1.txt", "a/d", "a/d/1.txt"]
    assert select(FILES, "a/d/1.txt") == ["a/d/1.txt"]
    assert select(FILES, "missing") == []


def test_wildcards_per_go_filepath_match() -> None:
    assert select(FILES, "*.txt") == ["a.txt", "c.txt"]  # `*` does not cross `/`
    assert select(FILES, "*/1.txt") == ["a/1.txt"]
    assert select(FILES, "a*") == ["a", "a.txt", "a/1.txt", "a/d", "a/d/1.txt", "ab", "ab/x"]
    assert select(FILES, "[a-b]?") == ["ab", "ab/x"]
    assert select(FILES, "[^a]*") == ["b.md", "c", "c.txt", "c/2.txt"]
    # the searched folder counts by its kind only (it decides whether the build fails)
    assert dict(narrow.select(Tree.of_files(FILES), [Source("a/*.md", 1, "COPY")])) == {"a": "d (searched)"}


def test_a_bind_mount_source_is_a_path_not_a_pattern() -> None:
    files = tree("[x]", "x")
    literal = narrow.select(Tree.of_files(files), [Source("[x]", 1, "RUN --mount", pattern=False)])
    assert list(literal) == ["[x]"]
    assert select(files, "[x]") == ["x"]  # COPY: a pattern


def test_symlinks_in_or_at_a_source_fall_back() -> None:
    files = tree("a/", "a/x", links=("l", "a/l.txt"))
    with pytest.raises(narrow.Whole, match="symlink l"):
        select(files, "l/x")
    with pytest.raises(narrow.Whole, match="symlink"):
        select(files, "a/*.txt")
    assert select(files, "a") == ["a", "a/l.txt", "a/x"]  # inside a copied folder a link is copied as one


def test_the_root_is_all_of_it() -> None:
    with pytest.raises(narrow.Whole) as caught:
        select(FILES, "")
    assert caught.value.exact


# Go's filepath.Match for `*`, `?` and literals, written as the spec says (a plain recursion): `*` matches any
# run of non-`/` characters, `?` one non-`/` character.
def go_match_reference(pattern: str, name: str) -> bool:
    if not pattern:
        return not name
    head = pattern[0]
    if head == "*":
        return any(
            go_match_reference(pattern[1:], name[i:]) for i in range(len(name) + 1) if "/" not in name[:i]
        )
    if not name:
        return False
    if head == "?":
        return name[0] != "/" and go_match_reference(pattern[1:], name[1:])
    return head == name[0] and go_match_reference(pattern[1:], name[1:])


@settings(max_examples=300, deadline=None)
@given(
    st.text("ab*?/.", min_size=1, max_size=6),
    st.text("ab/.", min_size=1, max_size=6),
)
def test_go_pattern_against_a_reference_for_stars_and_questions(pattern: str, name: str) -> None:
    assert (go_pattern(pattern).fullmatch(name) is not None) == go_match_reference(pattern, name)


@pytest.mark.parametrize("bad", ["[", "[]", "[-a]", "a[b-]", "[a"])
def test_malformed_patterns_fall_back(bad: str) -> None:
    with pytest.raises(ValueError):
        go_pattern(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "a/x", "a/y", "b/x", "c.txt", "a/c.txt"]), unique=True))
def test_selection_is_the_union_of_matches_and_their_subtrees(chosen: list[str]) -> None:
    with_parents = set(chosen) | {p.split("/")[0] for p in chosen if "/" in p}  # a walk lists parents too
    files = tree(*(p + "/" if any(q.startswith(p + "/") for q in with_parents) else p for p in with_parents))
    for pattern in ("*", "a/*", "*.txt", "*/x", "?", "a"):
        got = set(select(files, pattern))
        parts = pattern.split("/")
        expected = set()
        for path in files:
            bits = path.split("/")
            head = bits[: len(parts)]
            if len(head) == len(parts) and all(
                fnmatch.fnmatchcase(h, p) for h, p in zip(head, parts, strict=True)
            ):
                expected.add(path)
        if "/" in pattern and "*" not in pattern.split("/")[0] and pattern.split("/")[0] in files:
            expected.add(pattern.split("/")[0])  # the searched folder, by kind
        assert got == expected


# --- keys ------------------------------------------------------------------------------------------------------


STACK = {
    "compose.yaml": """
services:
  api:
    build: {context: ., dockerfile: Dockerfile, target: api}
  web:
    build: {context: ., dockerfile: Dockerfile, target: web}
  all:
    build: {context: ., dockerfile: Dockerfile.all}
  whole:
    build: {context: ., dockerfile: Dockerfile.all}
    x-planner:
      hash: {narrow: false}
  run:
    build: {context: ., dockerfile: Dockerfile.run}
""",
    "Dockerfile": "FROM scratch AS api\nCOPY api/ /api/\nCOPY go.mod /\nFROM scratch AS web\nCOPY web/*.html /web/\n",
    "Dockerfile.all": "FROM scratch\nCOPY . /all/\n",
    "Dockerfile.run": "FROM scratch\nARG X\nCOPY $X /x\n",
    "api/main.go": "package main\n",
    "web/index.html": "<p>\n",
    "web/notes.md": "notes\n",
    "go.mod": "module x\n",
    ".dockerignore": "*.log\n",
}


def manifests(root: Path) -> dict[str, Manifest]:
    environ = {"PATH": "/usr/bin", "HOME": str(root)}
    stack = load_stack(ProjectOptions(environ=environ, cwd=str(root)))
    return compute_keys(build_graph(stack), StatCache(None), dict(stack.compose.environment))


def keys(root: Path) -> dict[str, str]:
    return {name: m.key for name, m in manifests(root).items()}


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    write_tree(tmp_path, STACK)
    return tmp_path


@pytest.mark.parametrize(
    ("edit", "moved"),
    [
        (lambda r: (r / "api/main.go").write_text("changed\n"), {"api", "all", "whole", "run"}),
        (lambda r: (r / "web/index.html").write_text("changed\n"), {"web", "all", "whole", "run"}),
        (lambda r: (r / "web/new.html").write_text("new\n"), {"web", "all", "whole", "run"}),
        (lambda r: (r / "web/notes.md").write_text("changed\n"), {"all", "whole", "run"}),
        (lambda r: (r / "web").chmod(0o700), {"all", "whole", "run"}),
        (lambda r: (r / "go.mod").chmod(0o600), {"api", "all", "whole", "run"}),
        (lambda r: (r / "x.log").write_text("ignored\n"), set()),
        (lambda r: (r / ".dockerignore").write_text("*.log\n*.md\n"), {"api", "web", "all", "whole", "run"}),
        (lambda r: os.rename(r / "web/notes.md", r / "web/notes.html"), {"web", "all", "whole", "run"}),
    ],
)
def test_an_edit_moves_only_the_keys_of_the_builds_that_read_it(
    stack: Path, edit: object, moved: set[str]
) -> None:
    before = keys(stack)
    edit(stack)  # type: ignore[operator]
    after = keys(stack)
    assert {name for name in before if before[name] != after[name]} == moved


def test_manifests_say_how_the_context_counts(stack: Path) -> None:
    found = manifests(stack)
    assert (found["api"].scope, sorted(found["api"].files)) == (
        "narrowed",
        [".dockerignore", "Dockerfile", "api", "api/main.go", "go.mod"],
    )
    assert found["all"].scope == "all"
    assert (found["whole"].scope, found["whole"].scope_reason) == ("whole", "rules: hash.narrow is false")
    assert found["run"].scope == "whole" and "$X" in found["run"].scope_reason
    assert found["all"].key != found["whole"].key  # same files, but the scope is in the key


def test_an_external_base_with_unknown_triggers_is_narrowed_and_checked_later(tmp_path: Path) -> None:
    """Unknown triggers (offline, a base no daemon holds): narrowed, the base listed for apply to check; known
    triggers: their own reads join the Dockerfile's (or the whole context when they cannot be told)."""
    write_tree(tmp_path, {"compose.yaml": "services:\n  s:\n    build: .\n", "Dockerfile": "FROM alpine:3\nCOPY a /a\n", "a": "a\n", "b/x": "x\n"})  # fmt: skip
    environ = {"PATH": "/usr/bin", "HOME": str(tmp_path)}
    stack = load_stack(ProjectOptions(environ=environ, cwd=str(tmp_path)))
    graph = build_graph(stack)
    offline = compute_keys(graph, StatCache(None), {})["s"]
    assert (offline.scope, offline.unchecked_bases) == ("narrowed", ["alpine:3"])
    clean = compute_keys(graph, StatCache(None), {}, lambda ref: "sha256:1", lambda ref: [])["s"]
    assert (clean.scope, clean.unchecked_bases) == ("narrowed", [])
    assert sorted(clean.files) == sorted(offline.files) == ["Dockerfile", "a"]

    def keyed(triggers: list[str]) -> Manifest:
        return compute_keys(graph, StatCache(None), {}, lambda ref: "sha256:1", lambda ref: triggers)["s"]

    assert keyed(["RUN echo hi"]).files == clean.files  # a trigger that reads nothing
    assert sorted(keyed(["COPY b /b"]).files) == ["Dockerfile", "a", "b", "b/x"]  # the trigger's own reads
    everything = keyed(["COPY . /x"])
    assert everything.scope == "all" and "ONBUILD COPY" in everything.scope_reason
    unresolved = keyed(["COPY $SRC /x"])
    assert unresolved.scope == "whole" and "ONBUILD trigger `COPY $SRC /x`" in unresolved.scope_reason
    assert keyed(["COPY --from=builder /x /x"]).scope == "whole"


# --- the helix example -----------------------------------------------------------------------------------------

HELIX = Path(__file__).resolve().parents[2] / "examples" / "compose" / "helix"


def helix_keys(root: Path) -> dict[str, Manifest]:
    environ = {"PATH": "/usr/bin", "HOME": str(root), "PLANNER_REGISTRY": "127.0.0.1:5000"}
    stack = load_stack(ProjectOptions(environ=environ, cwd=str(root)), None)
    return compute_keys(build_graph(stack), StatCache(None), dict(stack.compose.environment))


@pytest.fixture
def helix(tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "helix"
    shutil.copytree(HELIX, copy, symlinks=True)
    planner_yaml = copy / "planner.yaml"
    if planner_yaml.is_symlink():  # a link to rules/helix.yaml in the repository
        target = (HELIX / os.readlink(HELIX / "planner.yaml")).resolve()
        planner_yaml.unlink()
        shutil.copyfile(target, planner_yaml)
    return copy


def moved(before: dict[str, Manifest], after: dict[str, Manifest]) -> set[str]:
    return {name for name in before if before[name].key != after[name].key}


def test_helix_every_image_is_narrowed(helix: Path) -> None:
    found = helix_keys(helix)
    assert {name: m.scope for name, m in found.items()} == dict.fromkeys(found, "narrowed")


def test_helix_an_edit_under_frontend_rebuilds_only_frontend(helix: Path) -> None:
    before = helix_keys(helix)
    (helix / "frontend/src/index.html").write_text("<p>edited</p>\n")
    assert moved(before, helix_keys(helix)) == {"frontend"}
    (helix / "frontend/src/new.css").write_text("p {}\n")
    assert moved(before, helix_keys(helix)) == {"frontend"}


def test_helix_an_edit_under_api_leaves_frontend_alone(helix: Path) -> None:
    """The api image reads api/; the desktop (helix-ubuntu) COPYs api/ too (the real desktop builds the docker
    wrapper from ./api, research/helix-stack.md), so it and the sandbox (its version stamp) move with it. With
    whole-context keys frontend moved as well."""
    before = helix_keys(helix)
    (helix / "api/cmd/main.go").write_text("package main // edited\n")
    assert moved(before, helix_keys(helix)) == {"api", "helix-ubuntu", "helix-sandbox"}


def test_helix_an_edit_nobody_reads_moves_nothing(helix: Path) -> None:
    before = helix_keys(helix)
    (helix / "README.txt").write_text("notes\n")  # in the compose images' context, read by no COPY
    (helix / "api.txt").write_text("notes\n")
    assert moved(before, helix_keys(helix)) == set()


# --- plan and explain say how the context counts ---------------------------------------------------------------


def test_plan_gives_the_fallback_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from planner.cli.app import app

    for name in ("PLANNER_RULES", "COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    project = tmp_path / "p"
    write_tree(project, {
        "compose.yaml": "services:\n  narrow: {build: .}\n  syntax: {build: {context: ., dockerfile: Dockerfile.syntax}}\n"
        "  raw:\n    build: .\n    x-planner: {hash: {narrow: false}}\n",
        "Dockerfile": "FROM scratch\nCOPY src/ /src/\n",
        "Dockerfile.syntax": "# syntax=example.com/team/frontend:1\nFROM scratch\nCOPY src/ /src/\n",
        "src/a": "a\n",
    })  # fmt: skip
    result = CliRunner().invoke(
        app, ["plan", "--offline", "--format", "json", "--project-directory", str(project)]
    )
    assert result.exit_code == 0, result.output
    reasons = {
        node["name"]: [r["detail"] for r in node["reasons"] if r["code"] == "whole-context"]
        for node in json.loads(result.stdout)["nodes"]
    }
    assert reasons["narrow"] == []
    assert reasons["raw"] == ["rules: hash.narrow is false"]
    assert reasons["syntax"] == [
        "line 1: `# syntax=example.com/team/frontend:1` picks a frontend whose reads are not analysed"
    ]


def test_explain_says_how_the_key_covers_the_context() -> None:
    from planner.cli.render import explanation_text
    from planner.commands.explain import Explanation, context_scope

    assert context_scope("narrowed", "") == "the key covers the context paths the build reads"
    whole = context_scope("whole", "rules: hash.narrow is false")
    assert whole == "the key covers the whole context (not narrowed: rules: hash.narrow is false)"
    text = explanation_text(Explanation("n", "k" * 32, "build", None, "note", context=whole))
    assert text.splitlines()[2] == whole


def test_a_change_of_scope_is_an_explained_input() -> None:
    from planner.plan.manifest_diff import diff_manifests, reasons_from

    old = Manifest(node="n", scope="narrowed")
    new = Manifest(node="n", scope="whole", scope_reason="rules: hash.narrow is false")
    assert [r.code for r in reasons_from(diff_manifests(old, new))] == ["scope-changed"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "FROM scratch",
                    "FROM a AS b",
                    "FROM $X",
                    "FROM",
                    "ARG X",
                    "ARG X=$Y",
                    "ARG",
                    "ENV X=1",
                    "ENV",
                    "COPY",
                    "COPY a",
                    "COPY --from= a b",
                    "COPY --from=9 a b",
                    'COPY ["a"',
                    "COPY [1, 2] x",
                    "ADD http://x y",
                    "RUN --mount=",
                    "RUN --mount=type=bind,,=,source",
                    "ONBUILD",
                    "COPY ${X:-a} b",
                    "COPY ${ /x",
                    "COPY $ /x",
                    "# syntax=",
                    "COPY <<EOF /x",
                    "EOF",
                    "\\",
                    "COPY a \\",
                    "COPY [] x",
                ]
            ),
            st.text(" $[]{}\"'\\=,-:*?/abAB#<\n", max_size=20),
        ),
        max_size=8,
    ),
    st.sampled_from([None, "b", "B", "0"]),
)
def test_the_analysis_never_raises(lines: list[str], target: str | None) -> None:
    reads = context_reads("\n".join(lines), {"X": "v"}, target)
    assert reads.fallback is not None or all(isinstance(s.path, str) for s in reads.sources)


def test_a_matched_folder_is_not_looked_into() -> None:
    # "a" matches `?`; "a.txt" sorts between "a" and "a/l.txt"; the link inside "a" is copied as a link
    files = tree("a/", "a.txt", "a/x/", links=("a/x/l",))
    assert select(files, "?") == ["a", "a/x", "a/x/l"]
    assert select(files, "a*") == ["a", "a.txt", "a/x", "a/x/l"]


def test_a_stack_built_base_is_narrowed_unless_its_dockerfile_has_onbuild(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "compose.yaml": "services:\n  base:\n    image: my/base\n    build: ./base\n  app:\n    build: ./app\n",
        "base/Dockerfile": "FROM scratch\nCOPY b /b\n", "base/b": "b\n",
        "app/Dockerfile": "ARG B=my/base\nFROM $B\nCOPY a /a\n", "app/a": "a\n",
    })  # fmt: skip
    found = manifests(tmp_path)
    assert found["app"].scope == "narrowed"  # offline: the base is ours, its Dockerfile says what it triggers
    (tmp_path / "base/Dockerfile").write_text("FROM scratch\nONBUILD COPY . /x\nCOPY b /b\n")
    found = manifests(tmp_path)
    assert found["app"].scope == "whole" and "has ONBUILD" in found["app"].scope_reason


def test_a_build_that_reads_an_unordered_output_through_its_base_triggers_is_refused(tmp_path: Path) -> None:
    """The graph orders outputs before the builds whose Dockerfile reads them; a base's ONBUILD trigger that
    reads one (known to the keys stage only) refuses the plan with the rule that fixes it, never a stale key."""
    from planner.base.errors import InputError

    write_tree(tmp_path, {
        "compose.yaml": "services:\n  s:\n    build: .\n",
        "Dockerfile": "FROM alpine:3\nCOPY a /a\n", "a": "a\n",
        "gen/Dockerfile": "FROM scratch\n",
        "planner.yaml": "artifacts:\n  gen:\n    context: gen\n    output: {type: local, dest: out}\n",
    })  # fmt: skip
    environ = {"PATH": "/usr/bin", "HOME": str(tmp_path)}
    graph = build_graph(load_stack(ProjectOptions(environ=environ, cwd=str(tmp_path))))
    assert graph.upstream("s") == []  # `COPY a` does not read out/
    assert (
        compute_keys(graph, StatCache(None), {}, lambda ref: "sha256:1", lambda ref: [])["s"].scope
        == "narrowed"
    )
    with pytest.raises(InputError, match=r"reads .*out .*which gen writes") as caught:
        compute_keys(graph, StatCache(None), {}, lambda ref: "sha256:1", lambda ref: ["COPY . /app"])
    assert caught.value.hint is not None and "depends_on: [gen]" in caught.value.hint


def test_a_whole_context_reader_that_keys_planners_own_files_is_warned_once(tmp_path: Path) -> None:
    """The real helix checkout keeps planner.yaml in the root context: a whole-context reader's key then moves
    with every comment in it. The plan says so once (a memo answer replays it); a narrowed node is not named."""
    import subprocess
    import sys

    write_tree(tmp_path, {
        "compose.yaml": "services:\n  all: {build: {context: ., dockerfile: Dockerfile.all}}\n"
        "  some: {build: {context: ., dockerfile: Dockerfile.some}}\n",
        "Dockerfile.all": "FROM scratch\nCOPY . /x/\n", "Dockerfile.some": "FROM scratch\nCOPY src /x/\n",
        "planner.yaml": "version: 1\n", "src/a": "a\n",
    })  # fmt: skip
    env = {**os.environ, "PLANNER_CACHE_DIR": str(tmp_path / "cache"), "PLANNER_SERVER": "off"}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "planner", "plan", "--offline"], cwd=tmp_path, env=env, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stderr.splitlines() if "warning" in line]
        assert len(lines) == 2, done.stderr  # compose.yaml and planner.yaml, one line each
        assert all("build context of all," in line and "some" not in line.split("which")[0] for line in lines)
