"""Snapshots of context walks: a root whose listed folders and sent entries all keep their lstat signatures
would be walked and hashed to the same result, so the last result is reused.

Why that is exact: the walk's result is decided by the names and kinds in each folder it listed (a folder's
mtime changes when an entry is added, removed or renamed), by each sent entry's mode, content or link target
(its ctime or inode changes with any of them) and by the ignore patterns, skips and hash-ignore rules, which
are part of the snapshot's key. So a snapshot is used only when every witness holds (signatures.py), and kept
only when no witness was written within the racy window. The other roots are not walked at all.

A root with a changed entry is walked again folder by folder (walk.Folders): a folder whose signature holds is
not listed again, only the entries it sent are checked by lstat (a content edit, chmod or replacement shows on
the entry itself), and a folder whose signature changed is listed again. Each folder's record is kept when it
and the entries it sent are older than the racy window, whether or not the whole root's results can be kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import xxhash

from planner import inputs, signatures
from planner.keys.walk import Folder, Folders
from planner.localcache import RACY_WINDOW_NS
from planner.store import Store

SNAPSHOT_VERSION = 2
TreeResults = dict[
    tuple[str, str], tuple[str, dict[str, str]]
]  # (node, label) -> (tree hash, manifest lines)


def snapshot_key(real_root: str, walks: Sequence[object]) -> tuple[str, int, str]:
    """The store key of a root walked for `walks` (each described by all that decides its result)."""
    return ("tree", SNAPSHOT_VERSION, xxhash.xxh3_128_hexdigest(repr((real_root, list(walks))).encode()))


def reuse_all(
    store: Store, wanted: Sequence[tuple[tuple[str, int, str], Folders | None]]
) -> list[TreeResults | None]:
    """Each root's snapshot results if all its witnesses hold (and reported to the input log), else None, and
    its `Folders` (when given) receives the per-folder records of the last walk to walk again with. The
    snapshots are loaded first, then all their witnesses checked in one pass (signatures.holds_each: two
    processes when there are many)."""
    loaded: list[tuple[list[str], list[str], bytes, TreeResults] | None] = []
    for key, folders in wanted:
        loaded.append(_load(store, key, folders))
    candidates = [(index, found) for index, found in enumerate(loaded) if found is not None]
    held = signatures.holds_each([(found[0], found[1]) for _, found in candidates])
    answers: list[TreeResults | None] = [None] * len(wanted)
    for (index, (paths, _, packed, results)), ok in zip(candidates, held, strict=True):
        if not ok:
            continue
        if inputs.is_recording():
            inputs.note_tree(paths, list(signatures.PACKED.iter_unpack(packed)))
        answers[index] = results
    return answers


def _load(
    store: Store, key: tuple[str, int, str], folders: Folders | None
) -> tuple[list[str], list[str], bytes, TreeResults] | None:
    """A snapshot's witnesses (paths, chunk digests, packed signatures) and results; its folder records go to
    `folders`. None when there are no whole results to check."""
    try:
        data = store.get(key, "walk snapshot")
        if not isinstance(data, dict):
            return None
        recorded: dict[str, Folder] = data.get("folders") or {}
        if folders is not None and isinstance(recorded, dict):
            folders.previous = recorded
        if data.get("paths") is None:
            return None  # only folder records were kept (some entry was too recent)
        paths: list[str] = data["paths"].split("\0")
        digests: list[str] = data["digests"]
        packed: bytes = data["signatures"]
        results: TreeResults = data["results"]
    except Exception:  # damaged or foreign: walk again
        if folders is not None:
            folders.previous = {}
        return None
    if len(packed) != signatures.PACKED.size * len(paths):
        return None
    return paths, digests, packed, results


def remember(
    store: Store,
    key: tuple[str, int, str],
    witnesses: tuple[list[str], list[inputs.Signature]],
    results: TreeResults,
    folders: Folders | None = None,
) -> None:
    """Keep the results of a walk, unless a witness is too recent to be trusted; and the records of the
    folders that are old enough (the next walk lists the others again)."""
    if store.cache is None:
        return
    paths, sigs = witnesses
    sealed = None if not paths else signatures.seal(paths, sigs, RACY_WINDOW_NS)
    kept: dict[str, Folder] = {}
    if folders is not None:
        settled = time.time_ns() - RACY_WINDOW_NS
        kept = {path: record for path, record in folders.current.items() if folders.newest[path] < settled}
    if sealed is None and not kept:
        return
    data: dict[str, object] = {"folders": kept}
    if sealed is not None:
        data.update(
            paths=sealed[0],
            digests=sealed[1],
            signatures=b"".join(signatures.PACKED.pack(*sig) for sig in sigs),
            results=results,
        )
    store.set(key, data, "walk snapshot (the next run walks again)")
