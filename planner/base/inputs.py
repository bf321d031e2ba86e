"""What a planning run read, with the lstat signature each path had when it was read.

Sources feed the log while it records: every file opened for reading (a Python audit hook on `open`, so no
reader can be forgotten: compose files, env files, rules, Dockerfiles, ignore files, hash inputs), every file
looked for (loaders probe through `is_file`/`is_dir`/`exists` here), every folder a context walk listed and
every entry it sent, the variables interpolation used, and every Engine API read with a digest of its answer.
The memo (memo.py) later proves that a run would read the same things by comparing them again; see there for
why lstat is enough.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

Signature = tuple[int, int, int, int, int]  # inode, device, mtime_ns, ctime_ns, size (regular files; else 0)
Response = tuple[str, str, int, str]  # daemon host, request target, status, xxh3-128 of the body

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PSEUDO = ("/proc/", "/sys/", "/dev/")


def signature(st: os.stat_result) -> Signature:
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns, size)


def lstat_signature(path: str) -> Signature | None:
    """The path's signature now; None when it cannot be read (missing, no permission)."""
    try:
        return signature(os.lstat(path))
    except OSError:
        return None


class InputLog:
    """Paths and their signatures, the first one seen kept (the state before the path was read)."""

    def __init__(self, ignore_prefixes: Iterable[str] = ()) -> None:
        self.seen: dict[str, Signature | None] = {}  # files opened or probed by name
        self.looked_up: list[str] = []  # the same, in order: the folders searched are witnessed too
        # what context walks listed and sent: paths, their signatures packed (signatures.PACKED), and those of
        # them not known to be older than the racy window
        self.trees: list[tuple[list[str], bytes, Sequence[Signature]]] = []
        self._in_trees: set[str] = set()
        self._unindexed: list[list[str]] = []  # trees not yet in _in_trees (a 100k-path set costs 10 ms: made
        # when asked); trees that came with a set of their paths (a resident server made it) are not copied
        self._indexed: list[frozenset[str]] = []
        self.variables: set[str] = set()  # names interpolation looked up
        self.folders: dict[str, Signature | None] = {}  # every folder above a looked-up path, at first look
        self.responses: list[Response] = []  # Engine API reads, to replay
        self.opaque: list[str] = []  # what was consulted that cannot be replayed (then nothing is remembered)
        self.ignore_prefixes = tuple(ignore_prefixes)

    def note_tree(
        self,
        paths: list[str],
        packed: bytes | None,
        recent: Sequence[Signature],
        members: frozenset[str] | None = None,
    ) -> None:
        if packed is None:
            self.opaque.append("a context entry whose signature cannot be stored")
            return
        self.trees.append((paths, packed, recent))
        if members is not None:
            self._indexed.append(members)
        else:
            self._unindexed.append(paths)

    def in_trees(self, path: str) -> bool:
        """Whether a context walk listed or sent `path`."""
        if self._unindexed:
            for paths in self._unindexed:
                self._in_trees.update(paths)
            self._unindexed.clear()
        return path in self._in_trees or any(path in members for members in self._indexed)

    def note_looked_up(self, path: str) -> None:
        """A file opened or probed by name: its own signature, and its target's when it is a symlink (a
        change of the target's content does not show on the link)."""
        path = os.path.abspath(path)
        if path in self.seen or self.in_trees(path) or path.startswith((*_PSEUDO, *self.ignore_prefixes)):
            return  # a walk's signature came first: hashing opens what walks listed
        try:
            st: os.stat_result | None = os.lstat(path)
        except OSError:
            st = None
        sig = signature(st) if st is not None else None
        self.seen[path] = sig
        self.looked_up.append(path)
        folder = os.path.dirname(path)
        while folder not in self.folders:  # as they were before the look-up: a file added later shows
            self.folders[folder] = lstat_signature(folder)
            if folder == os.path.dirname(folder):
                break
            folder = os.path.dirname(folder)
        if st is not None and stat.S_ISLNK(st.st_mode):
            self.note_looked_up(os.path.realpath(path))


class _State:
    """The log being recorded into (one at a time), and whether the audit hook is in place."""

    log: InputLog | None = None
    hook_installed = False


_state = _State()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    log = _state.log
    if log is None or event != "open":
        return
    path, mode, flags = args
    if not isinstance(path, str):
        return  # an fd or bytes path: nothing the planner reads by name
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return
    if isinstance(flags, int) and flags & _WRITE_FLAGS:
        return
    log.note_looked_up(path)


@contextmanager
def recording(log: InputLog) -> Iterator[InputLog]:
    """Record into `log` while the block runs (audit hooks cannot be removed, so the hook checks this)."""
    if not _state.hook_installed:
        sys.addaudithook(_audit)
        _state.hook_installed = True
    previous, _state.log = _state.log, log
    try:
        yield log
    finally:
        _state.log = previous


def note_tree(
    paths: list[str], packed: bytes | None, recent: Sequence[Signature], members: frozenset[str] | None = None
) -> None:
    """A context walk reports the folders it listed and the entries it sent (absolute paths) with their packed
    signatures, and which of those may be within the racy window (all, for a walk made now); `members`: the
    same paths as a set, where the caller holds one."""
    log = _state.log
    if log is not None:
        log.note_tree(paths, packed, recent, members)


def note_variables(names: Iterable[str]) -> None:
    """Environment variables read by name (rules' `hash.env`), like those interpolation looks up."""
    log = _state.log
    if log is not None:
        log.variables.update(names)


def tracked(lookup: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """`lookup`, reporting each variable name it is asked for to the active log."""
    log = _state.log

    def recorded(name: str) -> str | None:
        if log is not None:
            log.variables.add(name)
        return lookup(name)

    return recorded


def note_response(host: str, target: str, status: int, body: bytes) -> None:
    """An Engine API GET and what it answered: a later run may reuse this run's decisions only if the same
    request answers the same bytes."""
    log = _state.log
    if log is not None:
        log.responses.append((host, target, status, response_digest(body)))


def response_digest(body: bytes) -> str:
    """xxh3-128 of an Engine API answer, blind to the order of listed items: the daemon lists images with
    equal creation times in random order (its readers sort what they need)."""
    import json

    import xxhash

    try:
        data = json.loads(body)
    except ValueError:
        return xxhash.xxh3_128_hexdigest(body)
    if isinstance(data, list):
        data = sorted(data, key=lambda item: json.dumps(item, sort_keys=True))
    return xxhash.xxh3_128_hexdigest(json.dumps(data, sort_keys=True).encode())


def note_opaque(what: str) -> None:
    """Something was consulted that cannot be checked again cheaply (docker-py, the registry)."""
    log = _state.log
    if log is not None:
        log.opaque.append(what)


def is_recording() -> bool:
    return _state.log is not None


def _probed(path: str | os.PathLike[str]) -> None:
    log = _state.log
    if log is not None:
        log.note_looked_up(os.fspath(path))


# Existence checks of loaders go through these, so a file that later appears where one was looked for is seen.
def is_file(path: str | os.PathLike[str]) -> bool:
    _probed(path)
    return os.path.isfile(path)


def is_dir(path: str | os.PathLike[str]) -> bool:
    _probed(path)
    return os.path.isdir(path)


def exists(path: str | os.PathLike[str]) -> bool:
    _probed(path)
    return os.path.exists(path)
