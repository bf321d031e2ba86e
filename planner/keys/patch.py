"""Patching a root's last walk when only entries it sent changed: one edited file costs its own hash, not a
walk of the root.

Why it is exact: a walk's result depends on the names and kinds in the folders it listed, on the ignore rules
(part of the snapshot's key) and on each sent entry's mode, content or link target (walk.py). When every listed
folder still has its signature, no name was added, removed or renamed, so every decision of the walk stands and
the entries are the same paths of the same kinds; what can differ is only the lines of the entries whose own
signature changed. Those are made again from their lstat and content now, the tree digests recomputed, and the
snapshot's witnesses take the new signatures (a change after this check shows against them next time, as after
a walk). Anything else — a folder changed, an entry gone or of another kind, a folder among the changed entries —
is left to the folder-by-folder walk.
"""

from __future__ import annotations

import os

from planner import inputs, signatures
from planner.keys.manifest import file_line, files_digest
from planner.keys.snapshot import Snapshot, Stale, TreeResults
from planner.keys.statcache import hash_file
from planner.keys.walk import Entry, entry_of

MAX_PATCHED = 512  # changed entries; more than this and a walk (with the stat cache) is as cheap


def patch(real_root: str, stale: Stale) -> tuple[Snapshot, list[tuple[int, inputs.Signature]]] | None:
    """The snapshot a walk of `real_root` would give now, with the signatures that are new in it (witness
    index, signature); None when the root must be walked."""
    kept = stale.snapshot
    if len(stale.changes) > MAX_PATCHED or any(index < kept.listed for index in stale.changes):
        return None
    prefix = real_root if real_root.endswith("/") else real_root + "/"
    changed: dict[int, Entry] = {}
    for index in stale.changes:
        path = kept.paths[index]
        if not path.startswith(prefix):
            return None
        try:
            entry = entry_of(path[len(prefix) :], path, os.lstat(path))
        except OSError:
            return None  # gone: its folder changed too
        if entry is None or entry.kind == "d":
            return None
        changed[index] = entry
    lines = {
        entry.path: file_line(
            entry.kind, entry.mode, hash_file(kept.paths[index]) if entry.kind == "f" else entry.target
        )
        for index, entry in changed.items()
    }
    results: TreeResults = {}
    made: dict[int, tuple[str, dict[str, str]]] = {}  # id(last tree) -> its patched tree (nodes share trees)
    for where, tree in kept.results.items():
        patched = made.get(id(tree))
        if patched is None:
            files = tree[1]
            for path, line in lines.items():
                if path in files and files[path][:1] != line[:1]:
                    return None  # another kind than the walk recorded
            hit = [path for path, line in lines.items() if path in files and files[path] != line]
            if hit:
                files = dict(files)
                for path in hit:
                    files[path] = lines[path]
                patched = (files_digest(files), files)
            else:
                patched = tree
            made[id(tree)] = patched
        results[where] = patched
    packed = bytearray(kept.packed)
    size = signatures.PACKED.size
    recent: list[tuple[int, inputs.Signature]] = []
    for index, entry in changed.items():
        sig = (entry.inode, entry.device, entry.mtime_ns, entry.ctime_ns, entry.size)
        packed[index * size : (index + 1) * size] = signatures.PACKED.pack(*sig)
        recent.append((index, sig))
    return Snapshot(kept.paths, bytes(packed), kept.listed, results, kept.folders), recent
