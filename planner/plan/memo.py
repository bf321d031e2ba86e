"""Memo: an identical `planner plan --offline`, or an identical `planner apply` whose last run had nothing to
do, answers from that run after proving that nothing the run depended on has moved.

Such a run is a function of the invocation (command line, working directory, environment, planner's code), of
the files it read, and (for apply) of what the daemons answered. The full run records all of it (inputs.py):
files opened or probed, the folders they were looked for in, the folders context walks listed and the entries
they sent, each with its lstat signature; and every Engine API read with a digest of its answer. A memo is
used only when every signature is the same and every read answers the same:
- a file's content cannot change without its mtime/ctime changing, nor be replaced without its inode or ctime;
- a folder's entries cannot be added, removed or renamed without its mtime changing, so a file that did not
  exist (`.env`, `compose.override.yaml`, `Dockerfile.dockerignore`, `planner.yaml`) cannot appear unseen;
- a symlink cannot be retargeted without being replaced in its folder, which is witnessed too.
Nothing is remembered when a witness was written within the racy window of the save (git's racy-clean rule: a
timestamp tick may hide a second write), when a read cannot be replayed (docker-py, the registry), or after a
failure. Anything else - a changed signature, another environment, an unreadable memo - runs in full, and the
full run writes a new memo.

The signatures are checked by signatures.py (chunk digests, two processes for large sets).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import xxhash

from planner.base import inputs
from planner.base.localcache import RACY_WINDOW_NS, cache_root, warn_cache
from planner.keys.signatures import holds, pack_all, seal

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from planner.build.graph import BuildGraph
    from planner.compose.options import ProjectOptions

MEMO_VERSION = 4
# Set by the shell to each command's path, so it differs between `planner ...` and `time planner ...`: left
# out of the invocation key, and checked only when interpolation used it.
SHELL_VOLATILE = ("_",)
KEEP_MEMOS = 16  # one per invocation (environment, options); the oldest go
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def invocation_key(args: Sequence[str], cwd: str, environ: Mapping[str, str]) -> str:
    """Everything besides files and daemons that decides a run: the command line as typed (two spellings of
    the same options only miss), the working directory, the environment, planner's version."""
    from planner import __version__

    parts = [
        f"memo/{MEMO_VERSION}",
        __version__,
        cwd,
        repr(list(args)),
        repr(sorted((k, v) for k, v in environ.items() if k not in SHELL_VOLATILE)),
    ]
    return xxhash.xxh3_128_hexdigest("\0".join(parts).encode("utf-8", "surrogateescape"))


def cache_root_of(path: str) -> str:
    """The cache folder a memo path lies in (`<cache>/memo/<key>.memo`)."""
    return os.path.dirname(os.path.dirname(path))


def memo_path(args: Sequence[str], cwd: str, environ: Mapping[str, str]) -> str:
    return os.path.join(cache_root(environ), "memo", f"{invocation_key(args, cwd, environ)}.memo")


class Answer:
    """What an identical command printed: stdout, stderr; for a plan table, stdout holds the plan JSON to render.
    (A plain class: the memo's hit path imports nothing it can do without, dataclasses included.)"""

    __slots__ = ("stderr", "stdout", "table")

    def __init__(self, stdout: str, stderr: str = "", table: bool = False) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.table = table


def remembered(args: Sequence[str]) -> Answer | None:
    """The answer for this exact command line, if a memo holds; read before the command line is parsed."""
    path = memo_path(args, os.getcwd(), os.environ)
    return load(path, os.environ)


class Resident:
    """Memos a resident server read before forking this process (`held`: path -> (the file's inode, size and
    mtime then, its data, its paths split)), and the memo files this process read or wrote (`used`: the server
    reads them again after it ends). A held memo is used only while its file has the same signature: memos are
    written to a new file and renamed into place, so that is the same content, parsed. Empty in a one-shot
    process."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[tuple[int, int, int], dict[str, Any], list[str]]] = {}
        self.used: list[str] = []


resident = Resident()


def read_memo(path: str) -> tuple[dict[str, Any], list[str]]:
    """A memo file's data and its paths split (the held copy while the file is the one it was read from)."""
    held = resident.held.get(path)
    if held is not None and held[0] == _signature(os.stat(path)):
        return held[1], held[2]
    resident.used.append(path)
    return _read(path)[1:]


def _read(path: str) -> tuple[tuple[int, int, int], dict[str, Any], list[str]]:
    with open(path, "rb") as handle:
        signature = _signature(os.fstat(handle.fileno()))  # of exactly what is read
        data = pickle.load(handle)
    if not isinstance(data, dict):
        raise ValueError("not a memo")
    return signature, data, data["paths"].split("\0")


def _signature(found: os.stat_result) -> tuple[int, int, int]:
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def read_for_holding(path: str) -> tuple[tuple[int, int, int], dict[str, Any], list[str]] | None:
    """A memo file as `Resident.held` keeps it; None when it cannot be read."""
    try:
        return _read(path)
    except Exception:
        return None


def load(path: str, environ: Mapping[str, str], parallel: bool | None = None) -> Answer | None:
    """The remembered answer if every witness and every daemon read still hold; None otherwise."""
    try:
        data, paths = read_memo(path)
        if data.get("version") != MEMO_VERSION:
            return None
        joined: str = data["paths"]
        digests: list[str] = data["digests"]
        responses: list[inputs.Response] = data["responses"]
        answer = Answer(data["stdout"], data["stderr"], data["table"])
        if any(environ.get(name) != value for name, value in data["volatile"].items()):
            return None
    except FileNotFoundError:
        return None
    except Exception:  # damaged or foreign: a miss, and the full run rewrites it
        return None
    if not holds(paths, digests, parallel, joined) or not replays(responses):
        return None
    return answer


def replays(responses: Sequence[inputs.Response]) -> bool:
    """Whether every recorded read answers the same now: Engine API GETs in order, the registry's manifest
    HEADs (a no-op apply that shares its builds asks for each) all at once on threads of their own."""
    if not responses:
        return True
    from planner.engine.http import EngineHTTP
    from planner.engine.manifest_probe import REGISTRY_PREFIX

    heads = [r for r in responses if r[0].startswith(REGISTRY_PREFIX)]
    results: list[bool] = []
    threads = [threading.Thread(target=_replay_head, args=(head, results)) for head in heads]
    for thread in threads:
        thread.start()
    try:
        for host, target, status, digest in responses:
            if host.startswith(REGISTRY_PREFIX):
                continue
            now_status, body = EngineHTTP(host, "", timeout=10).fetch(target)  # targets carry the API version
            if now_status != status or inputs.response_digest(body) != digest:
                return False
    except OSError:
        return False
    finally:
        for thread in threads:
            thread.join()
    return all(results) and len(results) == len(heads)


def _replay_head(response: inputs.Response, results: list[bool]) -> None:
    from planner.engine.manifest_probe import REGISTRY_PREFIX, probe_manifest

    host, target, status, digest = response
    try:
        now_status, now_digest = probe_manifest(host.removeprefix(REGISTRY_PREFIX), target, 10)
    except OSError:
        results.append(False)
        return
    results.append(now_status == status and inputs.response_digest(now_digest.encode()) == digest)


def chain(path: str, anchor: str) -> list[str]:
    """`path` and its parent folders up to the one it shares with `anchor` (symlinks along the way live in
    these folders; a retarget changes one of them)."""
    path, anchor = os.path.normpath(path), os.path.normpath(anchor)
    common = os.path.commonpath([path, anchor])
    folders = [path]
    while path != common and path != os.path.dirname(path):
        path = os.path.dirname(path)
        folders.append(path)
    return folders


def witnesses(log: inputs.InputLog, anchors: Sequence[str], project_dir: str) -> Witnessed:
    """The log's paths plus the folders whose listings the run depended on, with their signatures: first the
    paths looked up (and the folders searched), then what context walks listed and sent. A path found twice
    (walks that overlap, a Dockerfile inside a context) is checked twice: if it changed during the run the two
    signatures differ and the memo can never hold, which is what such a run deserves."""
    extra: set[str] = set(_installation())
    for path in log.looked_up:
        extra.update(chain(os.path.dirname(path), project_dir))
    for anchor in anchors:
        extra.update(chain(anchor, project_dir))
    # folders and files the loaders looked at come first: the usual edits show in the first chunks checked
    seen = {
        path: log.folders[path] if path in log.folders else inputs.lstat_signature(path)
        for path in sorted(extra - log.seen.keys())
    }
    seen.update((path, log.seen[path]) for path in log.looked_up)
    # planner's own code: an edit of it must not be answered by a memo
    for folder, _, names in os.walk(PACKAGE_DIR):
        for name in names:
            if name.endswith(".py"):
                full = os.path.join(folder, name)
                seen.setdefault(full, inputs.lstat_signature(full))
    return Witnessed(seen, log.trees)


class Witnessed:
    """What a memo must check: paths looked up with their signatures (None: the path was absent; its folder
    is witnessed, so it cannot appear unseen), and the walks' blocks of paths with packed signatures."""

    __slots__ = ("seen", "trees")

    def __init__(
        self,
        seen: dict[str, inputs.Signature | None],
        trees: Sequence[tuple[list[str], bytes, Sequence[inputs.Signature]]] = (),
    ) -> None:
        self.seen = seen
        self.trees = trees

    def sealed(self) -> tuple[str, list[str]] | None:
        """The paths joined and the chunk digests to keep; None when a witness is too recent to trust later."""
        present = {witness: sig for witness, sig in self.seen.items() if sig is not None}
        head = pack_all(list(present.values()))
        if head is None:
            return None
        paths = list(present)
        recent: list[inputs.Signature] = list(present.values())
        blocks = [head]
        for tree_paths, packed, fresh in self.trees:
            paths += tree_paths
            blocks.append(packed)
            recent += fresh
        return seal(paths, b"".join(blocks), recent, RACY_WINDOW_NS)


def save(
    path: str,
    seen: Witnessed,
    answer: Answer,
    volatile: Mapping[str, str | None],
    responses: Sequence[inputs.Response] = (),
) -> bool:
    """Write the memo atomically; refuse (False) if a witness was written too recently."""
    sealed = seen.sealed()
    if sealed is None:
        return False
    data = {
        "version": MEMO_VERSION,
        "paths": sealed[0],
        "digests": sealed[1],
        "stdout": answer.stdout,
        "stderr": answer.stderr,
        "table": answer.table,
        "responses": list(responses),
        "volatile": dict(volatile),
    }
    try:
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
        resident.used.append(path)
        _prune(folder)
    except OSError as exc:
        # one line per unusable cache, whichever part of planner finds out first
        warn_cache(cache_root_of(path), f"memo not saved ({exc}); the next identical run repeats the work")
        return False
    return True


def _prune(folder: str) -> None:
    memos = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".memo")]
    memos.sort(key=lambda p: os.stat(p).st_mtime_ns, reverse=True)
    for old in memos[KEEP_MEMOS:]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(old)


class Recorder:
    """Records what a run reads (while `recording()` is active), then remembers its answer."""

    def __init__(self, args: Sequence[str], options: ProjectOptions) -> None:
        self.options = options
        self.path = memo_path(args, options.cwd, options.environ)
        # planner's own cache (stat records, manifests, locks) is read along the way; it is no input
        ignored = [*_interpreter_prefixes(), os.path.dirname(os.path.dirname(self.path)) + os.sep]
        self.log = inputs.InputLog(ignore_prefixes=ignored)

    def recording(self) -> AbstractContextManager[inputs.InputLog]:
        return inputs.recording(self.log)

    def save(self, answer: Answer, roots: Sequence[str], project_dir: str) -> bool:
        """Remember `answer` for this command line; `roots` are the build contexts, whose folders (up to the
        project's) hold symlinks that decide what was walked."""
        if self.log.opaque:
            return False
        start = os.path.abspath(os.path.join(self.options.cwd, self.options.project_directory or "."))
        volatile = {n: self.options.environ.get(n) for n in SHELL_VOLATILE if n in self.log.variables}
        seen = witnesses(self.log, [start, *roots], project_dir)
        return save(self.path, seen, answer, volatile, self.log.responses)

    def save_for(self, answer: Answer, graph: BuildGraph) -> bool:
        """`save` with the build roots a plan of `graph` walked and its project folder."""
        roots = [
            path
            for node in graph.nodes.values()
            for path in [node.build.context, *node.build.additional_contexts.values()]
            if os.path.isabs(path)
        ]
        return self.save(answer, roots, str(graph.stack.project_dir))


def _installation() -> list[str]:
    """The folders packages are installed in: an upgrade or removal changes them, and may change output."""
    import sys
    import sysconfig

    return sorted(
        {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["purelib"], PACKAGE_DIR}
    )


def _interpreter_prefixes() -> list[str]:
    """Modules imported while recording are planner's installation, not the project's input."""
    return [p.rstrip(os.sep) + os.sep for p in _installation() if p]
