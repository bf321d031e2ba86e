"""Differential property test: the build context planner hashes against what Docker really copies.

Hypothesis generates random context trees (nested and empty folders, files with assorted permission bits incl.
setuid/setgid/sticky, symlinks relative/absolute/dangling/to folders, fifos, sockets, names with spaces, dots,
dashes, unicode and leading dots) plus a random `.dockerignore` (globs from the tree's own names with `*`, `?`,
`**`, `[...]` classes and `\\.` escapes, `!` exceptions, leading `/` or `./`, trailing `/`, comments, blank
lines, CRLF endings, a BOM, patterns that exclude the Dockerfile or `.dockerignore` itself). For each tree the set
of (path, kind, permission bits, symlink target) of `walk_context(root, load_matcher(root, root/"Dockerfile"))`
must equal what `docker build` of `FROM scratch` + `COPY . /ctx` puts under `/ctx` (read back with
`docker create` + the archive API, i.e. `docker cp CID:/ctx -`). Owners and mtimes are ignored (COPY makes
everything root's); symlinks are compared by target only (their mode is always 0777); `/ctx` itself is left out.
The legacy COPY's chown drops S_ISUID (and S_ISGID with group-exec) from non-directories; the comparison applies
that step to planner's bits, which stay as the context sends them (see `after_legacy_copy`).

The engine here is driven by the legacy builder (`DOCKER_BUILDKIT=0`): the CLI walks the context and applies
`.dockerignore` (moby/go-archive's TarWithOptions), the daemon then drops `Dockerfile`/`.dockerignore` when the
patterns match them. Deliberately not generated:
- a Dockerfile anywhere but the context root: the legacy CLI force-includes a Dockerfile that sits inside an
  excluded folder (and so re-creates that folder), a legacy quirk planner does not copy;
- a root `Dockerfile.dockerignore`: planner follows BuildKit, which prefers it; the legacy CLI only reads
  `.dockerignore`, so this engine cannot check that rule;
- patterns Docker rejects (`!` alone, malformed classes): both sides would fail, which says nothing about
  context contents. If planner rejects a generated file anyway, the Docker build must fail too.
Fifos are copied by COPY and are generated; sockets never reach the context (the tar writer skips them).

Each Hypothesis example is a batch of `PLANNER_CONTEXT_DIFF_BATCH` trees (default 8) built concurrently by
`PLANNER_CONTEXT_DIFF_WORKERS` threads (default 8); `PLANNER_CONTEXT_DIFF_EXAMPLES` sets the number of examples
(default 30, so 240 trees). Runs are database-less and derandomized, so CI explores the same inputs, and do not
shrink (each step would rebuild a whole batch; a failure already lists every differing tree in full). Images are
tagged `planner-test/ctxdiff:<run>-<n>` and labelled with this session's `planner.test` value (one `--label`: each is a LABEL step that
commits a container, ~0.8 s on this engine, so the run is found by tag); every image and container is removed,
also on failure (a module teardown sweeps this run's tags and containers).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import docker
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from planner.base.errors import InputError
from planner.build.dockerignore import load_matcher
from planner.keys.statcache import StatCache
from planner.keys.walk import walk_context
from tests.conftest import docker_unavailable
from tests.integration.services import SESSION_LABEL, TEST_LABEL, TEST_SESSION

pytestmark = pytest.mark.docker

EXAMPLES = int(os.environ.get("PLANNER_CONTEXT_DIFF_EXAMPLES", "30"))
BATCH = int(os.environ.get("PLANNER_CONTEXT_DIFF_BATCH", "8"))
WORKERS = int(os.environ.get("PLANNER_CONTEXT_DIFF_WORKERS", "8"))

TAG_REPO = "planner-test/ctxdiff"
RUN_ID = f"{os.getpid()}"
RUN_LABEL = "planner.test.run"
DOCKERFILE = "FROM scratch\nCOPY . /ctx\n"
MAX_DEPTH = 3

# --- the tree model --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    mode: int
    content: bytes


@dataclass(frozen=True)
class Dir:
    mode: int
    children: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Fifo:
    mode: int


@dataclass(frozen=True)
class Socket:
    pass


Node: TypeAlias = File | Dir | Link | Fifo | Socket


@dataclass(frozen=True)
class Case:
    tree: Dir  # the context root's entries besides Dockerfile and .dockerignore
    dockerfile_mode: int
    ignore: bytes | None  # .dockerignore content; None: no file
    ignore_mode: int


# Shared names make patterns and symlinks hit several entries; "#hash" lines become comments.
NAMES = (
    "a", "b", "c", "ab", "abc", "bc", "x.txt", "y.log", "a.b.c", ".hidden", ".git", "build", "keep", "node_modules",
    "sub dir", "dash-name", "-lead", "ünï", "日本語", "x y.txt", "..dots", "#hash", "Dockerfile", ".dockerignore",
)  # fmt: skip
ROOT_RESERVED = {"Dockerfile", ".dockerignore", "Dockerfile.dockerignore"}
FILE_MODES = (0o644, 0o755, 0o600, 0o700, 0o444, 0o640, 0o664, 0o000, 0o4755, 0o2755, 0o1644)
DIR_MODES = (0o755, 0o700, 0o775, 0o750, 0o555, 0o2775, 0o2755, 0o1777, 0o3775)
FIFO_MODES = (0o644, 0o600, 0o666)
FIXED_TARGETS = (
    ".", "..", "../a", "./b", "a/b/c", "sub dir/x.txt", "/etc/hostname", "/ctx/a", "/nonexistent/x", "/", "dangling-ünï",
)  # fmt: skip
SPECIAL_PATTERNS = (
    "*", "**", ".*", "*/", "*/*", "**/*", "*/**", "**/", "Dockerfile", ".dockerignore", "Docker*", "*ignore",
    "*.txt", "**/*.log", "**/.hidden", "**/keep", "/", ".", "..", "a/../b", "./", "**/a/**", "[a-c]", "?",
    "??", "*/?", "a*", "**a", "b**", "**/b*", "!*/keep", "!**/x.txt",
)  # fmt: skip

# --- strategies ------------------------------------------------------------------------------------------------


@st.composite
def nodes(draw: st.DrawFn, depth: int) -> Node:
    roll = draw(st.integers(0, 99))
    if roll < 35 or (roll < 68 and depth >= MAX_DEPTH):
        return File(draw(st.sampled_from(FILE_MODES)), draw(st.binary(max_size=4)))
    if roll < 68:
        return draw(dirs(depth + 1))
    if roll < 85:
        return Link(draw(link_targets()))
    if roll < 95:
        return Fifo(draw(st.sampled_from(FIFO_MODES)))
    return Socket()


@st.composite
def dirs(draw: st.DrawFn, depth: int, *, root: bool = False) -> Dir:
    pool = [n for n in NAMES if not (root and n in ROOT_RESERVED)]
    names = draw(
        st.lists(st.sampled_from(pool), unique=True, min_size=2 if root else 0, max_size=6 if root else 4)
    )
    children = tuple((name, draw(nodes(depth))) for name in names)
    return Dir(draw(st.sampled_from(DIR_MODES)), children)


@st.composite
def link_targets(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.sampled_from(NAMES))
    if kind == 1:
        return draw(st.sampled_from(FIXED_TARGETS))
    parts = draw(st.lists(st.sampled_from((*NAMES, "..")), min_size=1, max_size=3))
    return "/".join(parts)


def tree_paths(tree: Dir, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, node in tree.children:
        yield (*prefix, name)
        if isinstance(node, Dir):
            yield from tree_paths(node, (*prefix, name))


@st.composite
def glob_segments(draw: st.DrawFn, segment: str) -> str:
    choice = draw(st.integers(0, 11))
    if choice <= 5 or not segment:
        return segment
    if choice == 6:
        return "*"
    k = draw(st.integers(0, len(segment) - 1))
    char = segment[k]
    if choice == 7:
        return segment[:k] + "?" + segment[k + 1 :]
    if choice == 8:
        return segment[:k] + "*"
    if choice == 9:
        return "*" + segment[k + 1 :]
    if choice == 10:
        return segment.replace(".", "\\.") if "." in segment else segment.replace("-", "\\-")
    if char in "-^]\\[":
        return segment[:k] + "?" + segment[k + 1 :]
    cls = draw(st.sampled_from((f"[{char}]", "[a-c]", f"[^{char}]", "[x-z]", f"[{char}_]")))
    return segment[:k] + cls + segment[k + 1 :]


@st.composite
def path_patterns(draw: st.DrawFn, paths: Sequence[tuple[str, ...]]) -> str:
    path = draw(st.sampled_from(paths))
    path = path[: draw(st.integers(1, len(path)))]
    segments = [draw(glob_segments(s)) for s in path]
    shape = draw(st.integers(0, 11))
    if shape == 0:
        segments.insert(0, "**")
    elif shape == 1 and len(segments) > 1:
        segments[draw(st.integers(0, len(segments) - 2))] = "**"
    elif shape == 2:
        segments.append("**")
    elif shape == 3:
        segments.append("*")
    elif shape == 4:
        segments[-1] += "**"
    elif shape == 5:
        segments[0] = "**" + segments[0]
    return "/".join(segments)


@st.composite
def ignore_lines(draw: st.DrawFn, paths: Sequence[tuple[str, ...]]) -> list[str]:
    """One line, or (a third of the time) a family: mostly literal patterns for a path and its ancestors, shallow
    first or in random order, each an exception half the time. Families make excluded folders with re-included entries (the walk
    enters them, implicit parent folders) and parent/child interplay, where Docker's matching is subtle."""
    deep = [p for p in paths if len(p) > 1]
    if draw(st.integers(0, 2)) > 0 or not deep:
        return [draw(ignore_line(paths))]
    path = draw(st.sampled_from(deep))
    family = [path[:depth] for depth in range(1, len(path) + 1)]
    family += draw(st.lists(st.sampled_from(family), max_size=2))
    order = draw(st.permutations(family)) if draw(st.booleans()) else sorted(family, key=len)
    lines = []
    for member in order:
        segments = [draw(glob_segments(s)) if draw(st.integers(0, 3)) == 0 else s for s in member]
        tail = draw(st.sampled_from(("",) * 8 + ("/*", "/**", "/")))
        lines.append(draw(st.sampled_from(("", "!"))) + "/".join(segments) + tail)
    return lines


@st.composite
def ignore_line(draw: st.DrawFn, paths: Sequence[tuple[str, ...]]) -> str:
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.sampled_from(("", "   ", "\t")))
    if kind == 1:
        return "#" + draw(st.sampled_from(("", " comment", *NAMES)))
    pattern: str = draw(st.sampled_from(SPECIAL_PATTERNS)) if kind <= 4 else draw(path_patterns(paths))
    if pattern.startswith("!"):
        return pattern
    lead: str = draw(st.sampled_from(("",) * 12 + ("/", "/", "./", "//")))
    trail: str = draw(st.sampled_from(("",) * 10 + ("/", "/", "/.")))
    pattern = lead + pattern + trail
    bang: str = draw(st.sampled_from(("",) * 4 + ("!", "!", "! ")))
    pad: str = draw(st.sampled_from(("",) * 12 + (" ", "\t")))
    return pad + bang + pattern + pad


@st.composite
def cases(draw: st.DrawFn) -> Case:
    tree = draw(dirs(1, root=True))
    paths = [*tree_paths(tree), ("Dockerfile",), (".dockerignore",)]
    ignore: bytes | None = None
    if draw(st.integers(0, 9)) > 0:
        groups = draw(
            st.lists(ignore_lines(paths), min_size=draw(st.sampled_from((0, 1, 1, 1, 1))), max_size=6)
        )
        lines = [line for group in groups for line in group]
        newline = draw(st.sampled_from(("\n", "\n", "\n", "\r\n")))
        text = newline.join(lines) + draw(st.sampled_from((newline, "")))
        bom = draw(st.sampled_from(("",) * 9 + ("\ufeff",)))
        ignore = (bom + text).encode()
    dockerfile_mode = draw(st.sampled_from((0o644, 0o600, 0o755)))
    ignore_mode = draw(st.sampled_from((0o644, 0o600, 0o444)))
    return Case(tree, dockerfile_mode, ignore, ignore_mode)


# --- materializing and listing ----------------------------------------------------------------------------------


def materialize(case: Case, root: Path) -> None:
    (root / "Dockerfile").write_text(DOCKERFILE)
    os.chmod(root / "Dockerfile", case.dockerfile_mode)
    if case.ignore is not None:
        (root / ".dockerignore").write_bytes(case.ignore)
        os.chmod(root / ".dockerignore", case.ignore_mode)
    _write_children(case.tree, root)


def _write_children(tree: Dir, folder: Path) -> None:
    for name, node in tree.children:
        path = folder / name
        if isinstance(node, File):
            path.write_bytes(node.content)
            os.chmod(path, node.mode)
        elif isinstance(node, Dir):
            path.mkdir()
            _write_children(node, path)
            os.chmod(path, node.mode)  # explicit: a folder made inside a setgid folder inherits the bit
        elif isinstance(node, Link):
            os.symlink(node.target, path)
        elif isinstance(node, Fifo):
            os.mkfifo(path)
            os.chmod(path, node.mode)
        elif len(os.fsencode(path)) < 100:  # AF_UNIX path limit; a longer one is simply left out
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(str(path))


def disk_listing(root: Path) -> str:
    """`find`-like listing of what is really on disk (for failure messages)."""
    lines = []
    for folder, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted([*subdirs, *files]):
            full = Path(folder, name)
            st_ = full.lstat()
            rel = full.relative_to(root).as_posix()
            kind = stat.filemode(st_.st_mode)
            extra = f" -> {os.readlink(full)!r}" if stat.S_ISLNK(st_.st_mode) else ""
            lines.append(f"  {kind} {stat.S_IMODE(st_.st_mode):04o} {rel!r}{extra}")
    return "\n".join(lines)


Item: TypeAlias = tuple[str, str, int | None, str]  # path, kind, permission bits (None for symlinks), target


def after_legacy_copy(kind: str, mode: int) -> int:
    """Permission bits the legacy builder's COPY leaves on an entry the context sent with `mode`.

    Its `fixPermissions` Lchowns every copied path to root after the copy and does not chmod again; Linux's
    chown(2) then clears S_ISUID on every non-directory, and S_ISGID on a non-directory that is group-executable
    (without S_IXGRP the bit marks mandatory locking and stays). BuildKit's copier chmods after chowning and keeps
    both, so planner hashes the bits as sent (a superset); only this comparison applies the legacy step.
    """
    if kind == "d":
        return mode
    mode &= ~stat.S_ISUID
    if mode & stat.S_IXGRP:
        mode &= ~stat.S_ISGID
    return mode


def planner_items(root: Path) -> set[Item] | str:
    """What planner keys: the walk, and the content of its files read as the key reads them (so a file the user
    cannot read fails on both sides when not running as root; the docker CLI refuses it too)."""
    try:
        entries = walk_context(root, load_matcher(root, root / "Dockerfile"))
        StatCache(None).hashes(str(root), entries)
    except InputError as exc:
        return f"planner error: {exc}"
    return {
        (e.path, e.kind, None, e.target)
        if e.kind == "l"
        else (e.path, e.kind, after_legacy_copy(e.kind, e.mode), "")
        for e in entries
    }


_TAR_KINDS = {
    tarfile.REGTYPE: "f", tarfile.AREGTYPE: "f", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l",
    tarfile.FIFOTYPE: "p", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b", tarfile.LNKTYPE: "hardlink",
}  # fmt: skip


def tar_items(data: bytes) -> set[Item]:
    items: set[Item] = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            name = member.name.rstrip("/")
            if name == "ctx":
                continue
            assert name.startswith("ctx/"), name
            kind = _TAR_KINDS.get(member.type, f"tar type {member.type!r}")
            mode = None if kind == "l" else member.mode & 0o7777
            items.add((name.removeprefix("ctx/"), kind, mode, member.linkname if kind == "l" else ""))
    return items


# --- Docker ----------------------------------------------------------------------------------------------------

ATTEMPTS = 3
VANISHED = ("No such image", "No such container", "failed to get digest")
_counter = itertools.count()
_counter_lock = threading.Lock()


def docker_items(client: Any, context: Path) -> set[Item] | str:
    """Build `context` and list `/ctx` of the image; a retry when the image vanished under us (a test's cleanup
    on the same engine; since cleanup removes only its own session's images, this session's own)."""
    outcome: set[Item] | str = ""
    for _ in range(ATTEMPTS):
        outcome = _build_and_list(client, context)
        if not (isinstance(outcome, str) and any(s in outcome for s in VANISHED)):
            break
    return outcome


def _build_and_list(client: Any, context: Path) -> set[Item] | str:
    with _counter_lock:
        tag = f"{TAG_REPO}:{RUN_ID}-{next(_counter)}"
    command = [
        "docker",
        "build",
        "-q",
        "--no-cache",
        "--force-rm",
        "--label",
        SESSION_LABEL,
        "-t",
        tag,
        str(context),
    ]
    try:
        proc = subprocess.run(
            command,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            return f"docker build failed ({proc.returncode}): {proc.stderr.strip()}"
        container = None
        try:
            container = client.containers.create(
                tag, command=["/none"], labels={TEST_LABEL: TEST_SESSION, RUN_LABEL: RUN_ID}
            )
            stream, _ = container.get_archive("/ctx")
            return tar_items(b"".join(stream))
        except docker.errors.NotFound as exc:  # image or container removed by someone else meanwhile
            return f"vanished: No such image or container: {exc}"
        finally:
            if container is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
    finally:
        _remove_image(client, tag)


def _remove_image(client: Any, ref: str) -> None:
    with contextlib.suppress(Exception):
        client.images.remove(ref, force=True)


@dataclass
class Env:
    client: Any
    pool: ThreadPoolExecutor
    checked: int = 0
    mismatches: int = 0


@pytest.fixture(scope="module")
def env(docker_client: Any, request: pytest.FixtureRequest) -> Iterator[Env]:
    if shutil.which("docker") is None:
        docker_unavailable("the docker CLI is not on PATH")
    state = Env(docker_client, ThreadPoolExecutor(max_workers=WORKERS))
    try:
        yield state
    finally:
        state.pool.shutdown(wait=True)
        for container in docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={RUN_ID}"}):
            container.remove(force=True)
        for image in docker_client.images.list(name=TAG_REPO):
            for tag in image.tags:
                if tag.startswith(f"{TAG_REPO}:{RUN_ID}-"):
                    _remove_image(docker_client, tag)
        summary = f"context differential: {state.checked} trees checked against Docker, {state.mismatches} mismatches"
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if capture is not None and reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(summary)


def check(client: Any, case: Case) -> str | None:
    """None when planner and Docker agree on the tree, else a report of the difference."""
    root = Path(tempfile.mkdtemp(prefix="ctxdiff-"))
    try:
        materialize(case, root)
        ours = planner_items(root)
        theirs = docker_items(client, root)
        if isinstance(ours, set) and isinstance(theirs, set):
            if ours == theirs:
                return None
            diff = [
                "only planner:",
                *map(_show, sorted(ours - theirs)),
                "only Docker:",
                *map(_show, sorted(theirs - ours)),
            ]
        elif isinstance(ours, str) and isinstance(theirs, str):
            return None  # both reject the .dockerignore
        else:
            diff = [f"planner: {_short(ours)}", f"Docker: {_short(theirs)}"]
        ignore = (
            "(no .dockerignore)"
            if case.ignore is None
            else "\n".join(f"  {line!r}" for line in case.ignore.split(b"\n"))
        )
        return "\n".join(["tree:", disk_listing(root), ".dockerignore:", ignore, *diff])
    finally:
        for folder, _, _ in os.walk(root):
            os.chmod(folder, 0o755)
        shutil.rmtree(root)


def _show(item: Item) -> str:
    path, kind, mode, target = item
    return f"  {kind} {'----' if mode is None else f'{mode:04o}'} {path!r}" + (
        f" -> {target!r}" if target else ""
    )


def _short(result: set[Item] | str) -> str:
    return (
        result
        if isinstance(result, str)
        else f"{len(result)} entries: " + ", ".join(sorted(i[0] for i in result))
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[
        Phase.explicit,
        Phase.generate,
    ],  # shrinking re-runs whole batches of builds; reports are complete
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(batch=st.lists(cases(), min_size=BATCH, max_size=BATCH))
def test_context_matches_docker(env: Env, batch: list[Case]) -> None:
    reports = list(env.pool.map(lambda case: check(env.client, case), batch))
    env.checked += len(batch)
    failures = [r for r in reports if r is not None]
    env.mismatches += len(failures)
    assert not failures, f"{len(failures)} of {len(batch)} trees differ from Docker:\n\n" + "\n\n".join(
        failures
    )
