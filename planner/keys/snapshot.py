"""Snapshots of context walks: a root whose listed folders and sent entries all keep their lstat signatures
would be walked and hashed to the same result, so the last result is reused.

Why that is exact: the walk's result is decided by the names and kinds in each folder it listed (a folder's
mtime changes when an entry is added, removed or renamed), by each sent entry's mode, content or link target
(its ctime or inode changes with any of them) and by the ignore patterns, skips and hash-ignore rules, which
are part of the snapshot's key. So a snapshot is used only when every witness holds (signatures.py); a witness
written within the racy window when the snapshot was kept counts as changed whatever its signature says. The
other roots are not walked at all.

A root whose witnesses do not all hold comes back `Stale`, saying which witnesses changed, and is patched
(keys/patch.py): changed entries hashed again, changed folders listed again, new folders walked. What a patch
cannot do is left to a walk folder by folder (walk.Folders): a folder whose signature holds is not listed again,
only the entries it sent are checked by lstat, and a folder whose signature changed is listed again. Every
folder's record is kept with the snapshot; the records of folders written within the racy window (`racy`) are
never walked with (a second change in the same tick would not show in their signature): a patch lists such a
folder again anyway, and a walk ignores its record.
"""

from __future__ import annotations

import marshal
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import xxhash

from planner.base import inputs
from planner.base.localcache import RACY_WINDOW_NS
from planner.keys import signatures
from planner.keys.store import Store
from planner.keys.tree import Tree
from planner.keys.walk import Folder

SNAPSHOT_VERSION = (
    6  # 3: per-path signatures (a failed check says which changed); 4: packed results; 5: racy;
)
# 6: folder records encoded apart (decoded only when a folder changed)
TreeResults = dict[tuple[str, str], Tree]  # (node, label) -> its tree


@dataclass
class Snapshot:
    """A root's walk as kept: its witnesses (the `listed` folders first, then the entries sent) with their
    packed signatures, its results, the per-folder records to walk again with, and the witnesses that were
    written within the racy window when it was kept (`racy`, indices): their signature may hide a second write
    in the same timestamp tick, so the next run treats them as changed whatever their signature says (git's
    racy-clean rule: such an entry's content is read again until it is old enough).

    The folder records are thousands of small tuples that only a changed folder needs: they stay encoded as
    loaded (`encoded`) until `records()` is asked for, and are kept again as loaded when nothing changed them;
    likewise the paths joined as loaded (`joined`), while the paths are the same."""

    paths: list[str]
    packed: bytes
    listed: int
    results: TreeResults
    folders: dict[str, Folder] | None = None
    racy: list[int] = field(default_factory=list)
    encoded: bytes | None = None
    joined: str | None = None
    members: frozenset[str] | None = None  # the paths as a set, made by a resident server for its runs

    def records(self) -> dict[str, Folder]:
        if self.folders is None:
            self.folders = _decoded(self.encoded)
        return self.folders


@dataclass
class Held:
    """A snapshot every witness of which holds: its results are what a walk would give."""

    results: TreeResults


@dataclass
class Absent:
    """No whole snapshot: only the folder records kept for the root (maybe none) to walk with."""

    folders: dict[str, Folder]


@dataclass
class Stale:
    """A snapshot some of whose witnesses changed (index into `snapshot.paths` -> the signature now, None when
    the path is gone)."""

    snapshot: Snapshot
    changes: signatures.Changes


@dataclass
class Resident:
    """Snapshots a resident server read before forking this process (`held`, by key), and the keys this process
    read from the store or kept (`used`: the server reads them again after it ends). A held snapshot may be older
    than the store's: like any snapshot it is only used once each of its witnesses is proven by lstat, so an
    older one costs a larger patch, never a stale key. Empty in a one-shot process."""

    held: dict[tuple[str, int, str], Snapshot] = field(default_factory=dict)
    used: list[tuple[str, int, str]] = field(default_factory=list)


resident = Resident()


def snapshot_key(real_root: str, walks: Sequence[object]) -> tuple[str, int, str]:
    """The store key of a root walked for `walks` (each described by all that decides its result)."""
    return ("tree", SNAPSHOT_VERSION, xxhash.xxh3_128_hexdigest(repr((real_root, list(walks))).encode()))


Reuse = Held | Stale | Absent


def reuse_all(store: Store, keys: Sequence[tuple[str, int, str]]) -> list[Reuse]:
    """What each root's snapshot gives: `Held` when all its witnesses hold (reported to the input log), `Stale`
    when some changed, `Absent` when there is none. The snapshots are loaded first, then all their witnesses
    checked in one pass (signatures.differences: two processes when there are many)."""
    loaded = [_load(store, key) for key in keys]
    candidates = [(index, found) for index, found in enumerate(loaded) if isinstance(found, Snapshot)]
    changed = signatures.differences(
        [(found.paths, found.packed) for _, found in candidates],
        joined=[found.joined for _, found in candidates],
    )
    answers: list[Reuse] = [found if isinstance(found, Absent) else Absent({}) for found in loaded]
    for (index, found), differing in zip(candidates, changed, strict=True):
        changes = differing
        if found.racy:  # read again whatever their signatures say
            changes = dict(differing or {})
            for at in found.racy:
                changes.setdefault(
                    at, signatures.PACKED.unpack_from(found.packed, at * signatures.PACKED.size)
                )
        if changes is not None:
            answers[index] = Stale(found, changes)
            continue
        if inputs.is_recording():
            inputs.note_tree(found.paths, found.packed, (), found.members)  # sealed before: none is recent
        answers[index] = Held(found.results)
    return answers


def _load(store: Store, key: tuple[str, int, str]) -> Snapshot | Absent:
    """A snapshot; or only its folder records when no whole results were kept."""
    held = resident.held.get(key)
    if held is not None:
        return held
    resident.used.append(key)
    return _read(store, key)


def _read(store: Store, key: tuple[str, int, str]) -> Snapshot | Absent:
    """`_load` from the store itself."""
    try:
        data = store.get(key, "walk snapshot")
        if not isinstance(data, dict):
            return Absent({})
        encoded = data.get("folders")
        if not isinstance(encoded, bytes):
            return Absent({})
        if data.get("paths") is None:
            return Absent({})
        joined = data["paths"]
        found = Snapshot(
            joined.split("\0"),
            data["signatures"],
            data["listed"],
            _unpacked(data["results"]),
            None,
            list(data["racy"]),
            encoded,
            joined,
        )
    except Exception:  # damaged or foreign: walk again
        return Absent({})
    count = len(found.paths)
    if len(found.packed) != signatures.PACKED.size * count or not 0 <= found.listed <= count:
        return Absent({})
    if any(not 0 <= at < count for at in found.racy):
        return Absent({})
    return found


# Folder records are plain tuples, strings, integers and dicts: marshal writes them four times as fast as pickle
# and reads them twice as fast. Its format belongs to the interpreter, which the encoded records name.
_ENCODING = f"marshal {marshal.version} {sys.version_info[0]}.{sys.version_info[1]}\n".encode()


def _encoded(records: dict[str, Folder]) -> bytes:
    return _ENCODING + marshal.dumps(records)


def _decoded(encoded: bytes | None) -> dict[str, Folder]:
    """Folder records as kept; none when they cannot be read (the folders are listed again)."""
    if not encoded or not encoded.startswith(_ENCODING):
        return {}
    try:
        records = marshal.loads(encoded[len(_ENCODING) :])
    except Exception:
        return {}
    return records if isinstance(records, dict) else {}


def remember(
    store: Store,
    key: tuple[str, int, str],
    kept: Snapshot,
    fresh: Iterable[tuple[int, inputs.Signature]],
) -> None:
    """Keep a root's snapshot and its folder records (the caller keeps only old ones). `fresh`: the witnesses
    (index, signature) not known to be older than the racy window; those still within it are kept as `racy`."""
    if store.cache is None:
        return
    joined = kept.joined if kept.joined is not None else "\0".join(kept.paths)
    if not kept.paths or joined.count("\0") != len(kept.paths) - 1:
        return  # a signature that cannot be packed (or a NUL in a path): the next run walks
    encoded = kept.encoded if kept.folders is None else _encoded(kept.folders)
    data: dict[str, object] = {
        "folders": encoded,
        "paths": joined,
        "signatures": kept.packed,
        "listed": kept.listed,
        "results": _packed(kept.results),
        "racy": signatures.racy(fresh, RACY_WINDOW_NS),
    }
    store.set(key, data, "walk snapshot (the next run walks again)")
    resident.used.append(key)


def read_for_holding(store: Store, key: tuple[str, int, str]) -> Snapshot | None:
    """A snapshot as the store has it, its folder records decoded and its trees' views made (for a resident
    server to hold: the runs it forks find them made)."""
    found = _read(store, key)
    if not isinstance(found, Snapshot):
        return None
    found.records()
    found.members = frozenset(found.paths)
    for tree in {id(tree): tree for tree in found.results.values()}.values():
        tree.prepare()
    return found


# Results as kept: each distinct tree once, as (digest, its paths joined by NUL, its lines joined by NUL), and
# which walk has which tree. Two long strings load and store many times faster than a dict of 100k entries.
_Kept = tuple[list[tuple[str, str, str]], dict[tuple[str, str], int]]


def _packed(results: TreeResults) -> _Kept:
    trees: list[tuple[str, str, str]] = []
    index: dict[int, int] = {}
    where: dict[tuple[str, str], int] = {}
    for walk, tree in results.items():
        if id(tree) not in index:
            index[id(tree)] = len(trees)
            trees.append((tree.digest, *tree.joined()))
        where[walk] = index[id(tree)]
    return trees, where


def _unpacked(kept: _Kept) -> TreeResults:
    trees, where = kept
    made = [_tree(digest, paths, lines) for digest, paths, lines in trees]
    return {walk: made[at] for walk, at in where.items()}


def _tree(digest: str, paths: str, lines: str) -> Tree:
    """A kept tree, with the lists its dict was made from (narrowing and patches read those)."""
    if not paths and not lines:
        return Tree([], digest)
    return Tree.of(paths.split("\0"), lines.split("\0"), digest)
