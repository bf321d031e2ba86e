"""Bad input, table-driven through the CLI: exit 2, one `planner:` line naming the file:line (or the option),
no traceback, and nothing changed (project tree and cache dir byte for byte as before)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.app import app

COMPOSE = "services:\n  s:\n    build: .\n"
DOCKERFILE = "FROM scratch\n"
PLAN = ["plan", "--offline"]
BOMB_LEVELS = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
BOMB = (
    "\n".join(f"x-{line}" for line in BOMB_LEVELS) + "\nservices:\n  s:\n    build: .\n    labels: {x: *a8}\n"
)
RULES_BOMB = "\n".join(f"x-{line}" for line in BOMB_LEVELS) + "\nsecret_args: *a8\n"


def svc(extra: str) -> str:
    """The one-service compose file with more lines under `s:` (4-space indented)."""
    return COMPOSE + extra


# (id, files (None: remove), argv, env, expected text in the one line)
Case = tuple[str, dict[str, str | None], list[str], dict[str, str], str]
CASES: list[Case] = [
    # --- compose YAML and model -------------------------------------------------------------------
    ("yaml-syntax", {"compose.yaml": "services:\n  s: [\n"}, PLAN, {}, "compose.yaml:3"),
    ("yaml-tab", {"compose.yaml": "services:\n\ts: {}\n"}, PLAN, {}, "compose.yaml:2"),
    ("yaml-duplicate-key", {"compose.yaml": COMPOSE + "  s:\n    build: .\n"}, PLAN, {}, "compose.yaml:4"),
    ("yaml-top-level-list", {"compose.yaml": "- a\n"}, PLAN, {}, "compose.yaml:1"),
    ("yaml-alias-bomb", {"compose.yaml": BOMB}, PLAN, {}, "compose.yaml:5:7: document contains excessive aliasing"),
    ("yaml-recursive-anchor", {"compose.yaml": "services: &s\n  a: *s\n"}, PLAN, {}, "compose.yaml:1:11: an anchor's value contains itself"),
    ("yaml-too-deep", {"compose.yaml": "x-deep: " + "[" * 300 + "]" * 300 + "\n"}, PLAN, {}, "compose.yaml:1:208: the document nests deeper than 200 levels"),
    ("compose-empty", {"compose.yaml": ""}, PLAN, {}, "compose.yaml:1: empty compose file"),
    ("compose-empty-map", {"compose.yaml": "{}\n"}, PLAN, {}, "compose.yaml:1: empty compose file"),
    ("compose-only-comment", {"compose.yaml": "# nothing\n"}, PLAN, {}, "compose.yaml:1: empty compose file"),
    ("compose-services-scalar", {"compose.yaml": "services: 3\n"}, PLAN, {}, "compose.yaml:1"),
    ("compose-args-type", {"compose.yaml": "services:\n  s:\n    build:\n      args: 42\n"}, PLAN, {}, "compose.yaml:4"),
    ("compose-tags-type", {"compose.yaml": "services:\n  s:\n    build:\n      tags: nope\n"}, PLAN, {}, "compose.yaml:4"),
    ("compose-no-image-no-build", {"compose.yaml": "services:\n  s: {}\n"}, PLAN, {}, "compose.yaml:2"),
    ("compose-extends-missing", {"compose.yaml": svc("    extends: nope\n")}, PLAN, {}, 'service "nope" not found'),
    ("compose-extends-cycle", {"compose.yaml": "services:\n  a:\n    extends: a\n"}, PLAN, {}, "circular reference"),
    ("compose-include-cycle", {"compose.yaml": "include: [b.yaml]\nservices: {}\n", "b.yaml": "include: [compose.yaml]\n"}, PLAN, {}, "compose.yaml"),
    ("compose-depends-undefined", {"compose.yaml": svc("    depends_on: [ghost]\n")}, PLAN, {}, "compose.yaml:4"),
    ("compose-required-var", {"compose.yaml": svc("    image: ${NEED:?please set NEED}\n")}, PLAN, {}, "please set NEED"),
    ("compose-bad-interpolation", {"compose.yaml": svc("    image: ${\n")}, PLAN, {}, "compose.yaml:4"),
    ("compose-image-uppercase", {"compose.yaml": svc("    image: foo/Bar\n")}, PLAN, {}, "compose.yaml:4:12: image name 'foo/Bar'"),
    ("compose-image-unicode", {"compose.yaml": svc("    image: ünï\n")}, PLAN, {}, "compose.yaml:4:12"),
    ("compose-image-space", {"compose.yaml": svc("    image: 'foo bar'\n")}, PLAN, {}, "compose.yaml:4:12"),
    ("compose-image-digest", {"compose.yaml": svc("    image: a@sha256:" + "0" * 64 + "\n")}, PLAN, {}, "cannot contain a digest"),
    ("compose-image-long-tag", {"compose.yaml": svc("    image: a:" + "t" * 129 + "\n")}, PLAN, {}, "compose.yaml:4:12"),
    ("compose-tag-bad", {"compose.yaml": "services:\n  s:\n    build:\n      context: .\n      tags: [ok, 'no way']\n"}, PLAN, {}, "compose.yaml:5:18"),
    ("compose-x-planner-unknown", {"compose.yaml": svc("    x-planner: {bogus: 1}\n")}, PLAN, {}, "compose.yaml:4"),
    ("compose-file-missing", {}, [*PLAN, "-f", "missing.yaml"], {}, "missing.yaml"),
    ("compose-file-is-dir", {"d/x": ""}, [*PLAN, "-f", "d"], {}, "is a directory"),
    ("env-file-missing", {}, [*PLAN, "--env-file", "nope.env"], {}, "nope.env"),
    ("project-name-bad", {}, [*PLAN, "-p", "Bad Name"], {}, "invalid project name"),
    # --- contexts, ignore files, Dockerfiles ---------------------------------------------------------
    ("context-missing", {"compose.yaml": "services:\n  s:\n    build: ./nope\n"}, PLAN, {}, "compose.yaml:3:12: s: build context folder"),
    ("context-is-file", {"compose.yaml": "services:\n  s:\n    build:\n      context: ./f\n", "f": "x"}, PLAN, {}, "compose.yaml:4:16: s: build context folder"),
    ("dockerfile-missing", {"Dockerfile": None}, PLAN, {}, "Dockerfile not found"),
    ("dockerfile-is-dir", {"Dockerfile": None, "Dockerfile/x": ""}, PLAN, {}, "is a directory"),
    ("dockerignore-is-dir", {".dockerignore/x": ""}, PLAN, {}, ".dockerignore: is a directory"),
    ("dockerignore-bad-class", {".dockerignore": "ok\n[abc\n"}, PLAN, {}, ".dockerignore:2: bad pattern '[abc'"),
    ("dockerignore-bad-range", {".dockerignore": "# c\n\n[z-a]\n"}, PLAN, {}, ".dockerignore:3: bad pattern"),
    ("dockerignore-bare-bang", {".dockerignore": "!\n"}, PLAN, {}, ".dockerignore:1: illegal exclusion"),
    ("dockerfile-unknown-instruction", {"Dockerfile": "FROM alpine\nFOO bar\n"}, PLAN, {}, "Dockerfile:2: unknown instruction: FOO"),
    ("dockerfile-typo-from", {"Dockerfile": "frm alpine\n"}, PLAN, {}, "Dockerfile:1: unknown instruction"),
    ("dockerfile-continued-unknown", {"Dockerfile": "FROM alpine\nRUN a \\\n  b\nBOGUS\n"}, PLAN, {}, "Dockerfile:4:"),
    ("dockerfile-unterminated-heredoc", {"Dockerfile": "FROM alpine\nRUN <<EOF\necho hi\n"}, PLAN, {}, "Dockerfile:2: unterminated heredoc"),
    ("dockerfile-copy-bad-flag", {"Dockerfile": "FROM alpine\nCOPY --fron=x a b\n"}, PLAN, {}, "Dockerfile:2: COPY: unknown flag: fron"),
    ("dockerfile-run-bad-flag", {"Dockerfile": "FROM alpine\nRUN --mnt=type=cache echo\n"}, PLAN, {}, "Dockerfile:2: RUN: unknown flag"),
    ("dockerfile-from-bad-flag", {"Dockerfile": "FROM --platfrm=linux/amd64 alpine\n"}, PLAN, {}, "Dockerfile:1: FROM: unknown flag"),
    ("dockerfile-empty", {"Dockerfile": ""}, PLAN, {}, "Dockerfile:1: no FROM"),
    ("dockerfile-only-arg", {"Dockerfile": "ARG X=1\n"}, PLAN, {}, "Dockerfile:1: no FROM"),
    ("dockerfile-run-before-from", {"Dockerfile": "# c\nRUN echo\nFROM alpine\n"}, PLAN, {}, "Dockerfile:2: RUN before the first FROM"),
    ("dockerfile-from-two-words", {"Dockerfile": "FROM alpine latest\n"}, PLAN, {}, "Dockerfile:1: FROM requires"),
    ("dockerfile-from-not-as", {"Dockerfile": "FROM alpine IS x\n"}, PLAN, {}, "Dockerfile:1: FROM: expected 'AS'"),
    ("dockerfile-bad-stage-name", {"Dockerfile": "FROM alpine AS 1st\n"}, PLAN, {}, "Dockerfile:1: invalid name for build stage"),
    ("dockerfile-copy-from-index", {"Dockerfile": "FROM alpine AS a\nFROM alpine\nCOPY --from=5 /x /x\n"}, PLAN, {}, "Dockerfile:3: COPY --from=5"),
    ("dockerfile-inline-bad", {"compose.yaml": "services:\n  s:\n    build:\n      context: .\n      dockerfile_inline: 'FROM a\n\n        NOPE'\n"}, PLAN, {}, "dockerfile_inline line 2"),
    # --- rules file ----------------------------------------------------------------------------------
    ("rules-yaml-syntax", {"planner.yaml": "registry: [\n"}, PLAN, {}, "planner.yaml:2"),
    ("rules-alias-bomb", {"planner.yaml": RULES_BOMB}, PLAN, {}, "planner.yaml:5:7: document contains excessive aliasing"),
    ("rules-top-level-list", {"planner.yaml": "- a\n"}, PLAN, {}, "planner.yaml:1"),
    ("rules-unknown-key", {"planner.yaml": "version: 1\nbogus: 1\n"}, PLAN, {}, "planner.yaml:2"),
    ("rules-wrong-version", {"planner.yaml": "version: 2\n"}, PLAN, {}, "planner.yaml:1"),
    ("rules-wrong-type", {"planner.yaml": "secret_args: 3\n"}, PLAN, {}, "planner.yaml:1"),
    ("rules-registry-url", {"planner.yaml": "registry:\n  url: not a host\n"}, PLAN, {}, "planner.yaml:2:8: registry.url"),
    ("rules-registry-url-path", {"planner.yaml": "registry:\n  url: host:5000/path\n"}, PLAN, {}, "planner.yaml:2:8: registry.url"),
    ("rules-registry-namespace", {"planner.yaml": "registry:\n  url: 127.0.0.1:5000\n  namespace: Bad NS\n"}, PLAN, {}, "planner.yaml:3:14: registry.namespace"),
    ("rules-literal-password", {"planner.yaml": "registry:\n  url: 127.0.0.1:5000\n  password: hunter2\n"}, PLAN, {}, "planner.yaml:3:13: registry.password is a literal"),
    ("rules-destination-registry", {"planner.yaml": "destinations:\n  d:\n    host: unix:///x.sock\n    registry: 'a b'\n"}, PLAN, {}, "planner.yaml:4:15"),
    ("rules-image-unicode", {"planner.yaml": "images:\n  x:\n    image: ünï\n"}, PLAN, {}, "planner.yaml:3:12: image name"),
    ("rules-image-uppercase", {"planner.yaml": "images:\n  x:\n    image: MyApp\n"}, PLAN, {}, "must be lowercase"),
    ("rules-image-default-uppercase", {"planner.yaml": "images:\n  X: {}\n"}, PLAN, {}, "planner.yaml:2:"),
    ("rules-tag-bad", {"planner.yaml": "images:\n  x:\n    tags: [ok, 'x:-y']\n"}, PLAN, {}, "planner.yaml:3:"),
    ("rules-name-clash", {"planner.yaml": "images:\n  s: {}\n"}, PLAN, {}, "planner.yaml:2"),
    ("rules-depends-unknown", {"planner.yaml": "rules:\n  - match: '*'\n    depends_on: [ghost]\n"}, PLAN, {}, "planner.yaml:3"),
    ("rules-destination-unknown", {"planner.yaml": "rules:\n  - match: '*'\n    destinations: [mars]\n"}, PLAN, {}, "planner.yaml:3"),
    ("rules-stamp-unknown-node", {"planner.yaml": "stamps:\n  v:\n    path: v.txt\n    from: ghost\n"}, PLAN, {}, "planner.yaml:4"),
    ("rules-artifact-outside", {"planner.yaml": "artifacts:\n  a:\n    output: {type: tar, dest: ../x.tar}\n"}, PLAN, {}, "planner.yaml:3"),
    ("rules-hash-ignore-bad", {"planner.yaml": "rules:\n  - match: '*'\n    hash: {ignore: ['[abc']}\n"}, PLAN, {}, "planner.yaml:3"),
    ("rules-dependency-cycle", {"planner.yaml": "images:\n  a: {depends_on: [b]}\n  b: {depends_on: [a]}\n"}, PLAN, {}, "cycle"),
    ("rules-context-missing", {"planner.yaml": "images:\n  x:\n    context: nope\n"}, PLAN, {}, "planner.yaml:3:5: x: build context folder"),
    ("rules-option-missing", {}, [*PLAN, "--rules", "nope.yaml"], {}, "--rules: no such file"),
    ("rules-option-dir", {"rdir/x": ""}, [*PLAN, "--rules", "rdir"], {}, "--rules: is a directory"),
    ("rules-env-dir", {"rdir/x": ""}, PLAN, {"PLANNER_RULES": "rdir"}, "PLANNER_RULES: is a directory"),
    ("rules-env-missing", {}, PLAN, {"PLANNER_RULES": "nope.yaml"}, "PLANNER_RULES: no such file"),
    # --- options ------------------------------------------------------------------------------------
    ("option-unknown-node", {}, [*PLAN, "ghost"], {}, "unknown node(s) ghost"),
    ("option-format", {}, [*PLAN, "--format", "nope"], {}, "'--format'"),
    ("option-unknown", {}, [*PLAN, "--bogus"], {}, "--bogus"),
    ("option-graph-format", {}, ["graph", "--format", "nope"], {}, "'--format'"),
    ("option-apply-jobs", {}, ["apply", "--jobs", "0"], {}, "'--jobs'"),
    ("option-apply-rebuild", {}, ["apply", "--rebuild", "ghost"], {}, "--rebuild: unknown node(s) ghost"),
    ("option-warm-jobs", {}, ["warm", "--jobs", "0"], {}, "'--jobs'"),
    ("option-explain-missing-arg", {}, ["explain"], {}, "'node'"),
    ("option-command", {}, ["nosuch"], {}, "No such command"),
]  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under root: its mtime and a content hash (folders: their listing)."""
    found: dict[str, tuple[int, str]] = {}
    if not root.exists():
        return found
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        body = path.read_bytes() if path.is_file() else "\n".join(sorted(os.listdir(path))).encode()
        found[str(path.relative_to(root))] = (st.st_mtime_ns, hashlib.sha256(body).hexdigest())
    return found


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith(("COMPOSE_", "PLANNER_", "DOCKER_")):
            monkeypatch.delenv(name)
    return CliRunner()


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("files", "argv", "env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str | None],
    argv: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    tree: dict[str, str | None] = {"compose.yaml": COMPOSE, "Dockerfile": DOCKERFILE, **files}
    for name, text in tree.items():
        if text is not None:
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            (project / name).write_text(text)
    monkeypatch.chdir(project)
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(cache))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")  # nothing may reach a daemon
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = snapshot(project), snapshot(cache)
    started = time.monotonic()
    result = runner.invoke(app, argv)
    elapsed = time.monotonic() - started
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines, result.output
    first, rest = lines[0], lines[1:]
    assert first.startswith("planner: "), result.stderr
    assert expected in first, result.stderr
    assert len(rest) <= 1 and all(line.startswith("  hint: ") for line in rest), result.stderr
    assert (snapshot(project), snapshot(cache)) == before
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_realistic_anchors_are_not_an_alias_bomb(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Templates merged into hundreds of services (`<<: *defaults`, aliased lists) stay under the bound."""
    template = (
        "x-defaults: &defaults\n  build:\n    context: .\n    args: &args {"
        + ", ".join(f"A{i}: '{i}'" for i in range(30))
        + "}\n  labels: &labels ["
        + ", ".join(f"l{i}=v" for i in range(30))
        + "]\n"
    )
    services = "".join(
        f"  s{i}:\n    <<: *defaults\n    x-more: {{args: *args, labels: *labels}}\n" for i in range(300)
    )
    (tmp_path / "compose.yaml").write_text(template + "services:\n" + services)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
