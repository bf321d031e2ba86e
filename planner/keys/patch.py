"""Patching a root's last walk when few of its witnesses changed: one edited, saved-over, added or removed file
costs its own lstat and hash and a listing of its folder, not a walk of the root.

Why it is exact: a walk's result depends on the decisions made in each folder it listed (which children each
matcher sends and which sub-folders it walks into, with which pattern hits: walk.Folders), on the ignore rules
(part of the snapshot's key) and on each sent entry's mode, content or link target (walk.py). The snapshot check
proved every other witness holds, so only these can differ:
- a sent entry whose signature changed: its line is made again from its lstat and content now;
- a listed folder whose signature changed (a name added, removed or renamed in it, or a file saved over by
  rename): it is listed again with the pattern hits it was entered with, and its decisions compared with those
  recorded. The same decisions: nothing of the walk changes but that folder's signature. Files or links added
  or removed (or sent by other matchers now): their lines are added to or removed from the trees of the
  matchers concerned, which are sorted again as a walk sorts them. Anything else — a sub-folder added, removed
  or walked into otherwise, a child of another kind, a change in a tree whose walk left paths out (outputs of
  other nodes) or walked into excluded folders (whose implied folders depend on what they hold), a folder or
  entry gone that was not listed as removed, or no record of the folder — is left to the folder-by-folder walk.
The tree digests are recomputed, and the snapshot's witnesses take the new signatures, lose the paths no longer
sent and gain the new ones (a change after this check shows against them next time, as after a walk).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.base import inputs
from planner.base.errors import InputError
from planner.build.dockerignore import PatternMatcher
from planner.keys import signatures
from planner.keys.manifest import file_line
from planner.keys.snapshot import Snapshot, Stale, TreeResults
from planner.keys.statcache import hash_file
from planner.keys.tree import Tree
from planner.keys.walk import (
    MAX_MATCHERS,
    Decisions,
    Entry,
    Folder,
    Folders,
    Witnesses,
    entry_of,
    relist,
    walk_contexts,
)

# Changed witnesses a patch takes on: at least MAX_PATCHED, up to a quarter of the root's witnesses. A patch
# costs per change what a walk costs per entry (an lstat, a hash), and a walk also lstats every other entry:
# 2000 files changed in a 100k-file root are patched in 0.71 s and walked in 1.75 s. Beyond a quarter a walk's
# stat cache and its parallel hashing of large files pay.
MAX_PATCHED = 512
PATCHED_SHARE = 4


@dataclass(frozen=True)
class Filter:
    """One distinct set of rules the root was walked with, in the walk's order (a folder record's masks count
    them so): the matcher and skips of the walk, the hash-ignore rules its tree was cut with, and the results
    (node, label) that share its tree."""

    matcher: PatternMatcher
    skip: tuple[str, ...]
    hash_ignore: PatternMatcher | None
    results: tuple[tuple[str, str], ...]


Patched = tuple[Snapshot, list[tuple[int, inputs.Signature]]]


def patch(real_root: str, stale: Stale, filters: Sequence[Filter]) -> Patched | None:
    """The snapshot a walk of `real_root` would give now, with the signatures that are new in it (witness
    index, signature); None when the root must be walked."""
    kept = stale.snapshot
    if len(stale.changes) > max(MAX_PATCHED, len(kept.paths) // PATCHED_SHARE):
        return None
    prefix = real_root if real_root.endswith("/") else real_root + "/"
    # parents first: a folder under one that is gone is gone with it
    folders = sorted((index for index in stale.changes if index < kept.listed), key=kept.paths.__getitem__)
    relisted = _Relisted(kept, prefix, filters)
    for index in folders:
        if relisted.gone(kept.paths[index][len(prefix) :]):
            continue
        if not relisted.folder(index):
            return None
    if not relisted.walk_new():
        return None
    changed: dict[int, Entry] = {}
    for index in stale.changes:
        if index < kept.listed:
            continue
        path = kept.paths[index]
        if not path.startswith(prefix):
            return None
        relative = path[len(prefix) :]
        try:
            entry = entry_of(relative, path, os.lstat(path))
        except OSError:
            if relative in relisted.unsent or relisted.gone(relative):
                continue  # removed, and its folder was listed again
            return None  # gone: its folder changed too
        if entry is None or (entry.kind == "d" and relative not in relisted.records):
            return None  # a folder sent whose listing was not checked again
        changed[index] = entry
    added: dict[str, Entry] = {}
    for relative in set().union(*relisted.added) if relisted.added else ():
        entry = relisted.walked.get(relative)
        if entry is None:
            try:
                entry = entry_of(relative, prefix + relative, os.lstat(prefix + relative))
            except OSError:
                return None
            if entry is None or entry.kind != relisted.kinds[relative]:
                return None
        added[relative] = entry
    lines = {entry.path: _line(entry, prefix) for entry in [*changed.values(), *added.values()]}
    results = _patched_results(kept.results, lines, relisted, filters)
    if results is None:
        return None
    return _witnessed(kept, prefix, changed, added, relisted, results)


class _Relisted:
    """The changed listed folders, each listed again: their new records, and per filter the context paths of
    files and links added to or removed from what it sends."""

    def __init__(self, kept: Snapshot, prefix: str, filters: Sequence[Filter]) -> None:
        self.kept = kept
        self.prefix = prefix
        self.filters = filters
        self.records: dict[str, Folder] = {}
        self.signatures: dict[int, inputs.Signature] = {}  # witness index -> the folder's signature now
        self.added: list[set[str]] = [set() for _ in filters]
        self.removed: list[set[str]] = [set() for _ in filters]
        self.kinds: dict[str, str] = {}  # added path -> its kind as listed
        self.unsent: set[str] = set()  # paths no filter sends any more
        self.sent: set[str] = set()  # paths some filter sends now and none did
        self._excluded: dict[int, set[str]] | None = None  # per filter, the excluded folders it walked into
        self.removed_folders: list[str] = []  # sub-folders gone: all below them goes too
        self._gone: tuple[set[str], tuple[str, ...]] = (set(), ())  # the same, to test paths against
        self.new_folders: list[tuple[str, dict[int, tuple[bool, ...]]]] = []  # (path, hits entered with)
        self.walked: dict[str, Entry] = {}  # what the walks of new folders sent, by path
        self.listed: list[tuple[str, inputs.Signature]] = []  # the folders those walks listed
        self.below: list[tuple[str, inputs.Signature]] = []  # the entries they sent (witnesses)

    def folder(self, index: int) -> bool:
        """List the folder of witness `index` again; False when the change is not one a patch can make."""
        path = self.kept.paths[index]
        root = self.prefix[:-1] or "/"
        if path == root:
            relative = ""
        elif path.startswith(self.prefix):
            relative = path[len(self.prefix) :]
        else:
            return False
        record = self.kept.records().get(relative)
        if record is None or len(self.filters) > MAX_MATCHERS:
            return False
        try:
            st = os.lstat(path)  # before listing: a change while listing shows next time
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            return False
        decisions = relist(
            relative, path, record[1], [f.matcher for f in self.filters], [f.skip for f in self.filters]
        )
        if decisions is None:
            return False
        before, walked_before = _children(record[2])
        after, walked_after = _children(decisions)
        if any(
            walked_before[name] != walked_after[name] for name in walked_before.keys() & walked_after.keys()
        ):
            return False  # a sub-folder walked into otherwise
        prefix = relative + "/" if relative else ""
        new = walked_after.keys() - walked_before.keys()
        gone = walked_before.keys() - walked_after.keys()
        for name in new | gone:
            if (walked_after[name] if name in new else walked_before[name])[1]:
                return False  # an excluded folder walked into for what is re-included in it
        for name in before.keys() | after.keys():
            was, now = before.get(name, ("", 0)), after.get(name, ("", 0))
            if was == now:
                continue
            if was[1] and now[1] and was[0] != now[0]:
                return False  # another kind
            if "d" in (was[0], now[0]) and not (
                (name in new and not was[1]) or (name in gone and not now[1])
            ):
                return False  # a folder sent otherwise, not one added or removed
            child = prefix + name
            for which in range(len(self.filters)):
                sent_before, sent_now = was[1] >> which & 1, now[1] >> which & 1
                if sent_before == sent_now:
                    continue
                if self.filters[which].skip or self._implies(which, child):
                    return False  # implied folders and left-out outputs depend on what is sent
                (self.added if sent_now else self.removed)[which].add(child)
            if now[1]:
                self.kinds[child] = now[0]
                if not was[1]:
                    self.sent.add(child)
            elif was[1]:
                self.unsent.add(child)
        self.removed_folders += (prefix + name for name in gone)
        self.new_folders += ((prefix + name, walked_after[name][0]) for name in new)
        signature = inputs.signature(st)
        self.signatures[index] = signature
        self.records[relative] = (signature, record[1], decisions)
        return True

    def gone(self, relative: str) -> bool:
        """Whether the context path lies in a sub-folder found removed."""
        if not self.removed_folders:
            return False
        if len(self._gone[1]) != len(self.removed_folders):
            self._gone = (set(self.removed_folders), tuple(folder + "/" for folder in self.removed_folders))
        return relative in self._gone[0] or relative.startswith(self._gone[1])

    def walk_new(self) -> bool:
        """Walk each new sub-folder as a walk of the root would; False when a walk there walked into an excluded
        folder (Docker implies folders from what is re-included, above as well as below)."""
        if not self.new_folders:
            return True
        real_root = self.prefix[:-1] or "/"
        matchers = [f.matcher for f in self.filters]
        skips = [f.skip for f in self.filters]
        for relative, hits in self.new_folders:
            if self.gone(relative):
                continue
            witnesses = Witnesses()
            folders = Folders()
            try:
                sent = walk_contexts(
                    Path(real_root), matchers, skips, witnesses, folders, below=(relative, hits)
                )
            except (OSError, InputError):
                return False
            if witnesses.packed is None:
                return False
            if any(by for record in folders.current.values() for _, _, by in record[2][3]):
                return False
            for which, entries in enumerate(sent):
                for entry in entries:
                    self.added[which].add(entry.path)
                    self.walked[entry.path] = entry
            count = witnesses.listed
            self.listed += zip(witnesses.paths[:count], witnesses.sigs[:count], strict=True)
            self.below += zip(witnesses.paths[count:], witnesses.sigs[count:], strict=True)
            self.records.update(folders.current)
        return True

    def _implies(self, which: int, child: str) -> bool:
        """Whether `child` lies in a folder that filter `which` excluded and walked into for re-included entries:
        the folders Docker still creates for those (walk._implicit_folders) depend on what is sent there."""
        if self._excluded is None:
            self._excluded = {}
            for relative, record in self.kept.records().items():
                joined, _, _, walked = record[2]
                names = joined.split("\0")
                for at, _, by in walked:
                    path = f"{relative}/{names[at]}" if relative else names[at]
                    for filtered in by:
                        self._excluded.setdefault(filtered, set()).add(path)
        excluded = self._excluded.get(which)
        if not excluded:
            return False
        parts = child.split("/")
        return any("/".join(parts[:depth]) in excluded for depth in range(1, len(parts)))


_Walked = tuple[
    dict[int, tuple[bool, ...]], tuple[int, ...]
]  # the hits a sub-folder is entered with, excluded by


def _children(decisions: Decisions) -> tuple[dict[str, tuple[str, int]], dict[str, _Walked]]:
    """A folder's decisions by child name: (kind, mask of the filters that send it), and the sub-folders walked
    into with the hits and the filters for which they are excluded."""
    joined, kinds, masks, folders = decisions
    names = joined.split("\0") if joined else []
    children = {name: (kinds[at], ord(masks[at])) for at, name in enumerate(names)}
    return children, {names[at]: (hits, by) for at, hits, by in folders}


def _line(entry: Entry, prefix: str) -> str:
    return file_line(
        entry.kind, entry.mode, hash_file(prefix + entry.path) if entry.kind == "f" else entry.target
    )


def _patched_results(
    last: TreeResults, lines: dict[str, str], relisted: _Relisted, filters: Sequence[Filter]
) -> TreeResults | None:
    """The trees with the changed lines, and each filter's added and removed paths; None if a line's kind is
    not the one recorded (a walk decides)."""
    which = {result: at for at, f in enumerate(filters) for result in f.results}
    results: TreeResults = {}
    made: dict[tuple[int, int], Tree] = {}  # (id(last tree), filter) -> patched tree
    for where, tree in last.items():
        at = which.get(where)
        if at is None:  # a result of no filter (never so): a walk decides
            return None
        patched = made.get((id(tree), at))
        if patched is None:
            files = tree
            for path, line in lines.items():
                if path in files and files[path][:1] != line[:1]:
                    return None
            hit = {path: line for path, line in lines.items() if path in files and files[path] != line}
            removed = [path for path in relisted.removed[at] if path in files]
            if relisted.removed_folders:
                removed += [
                    path for path in files if relisted.gone(path) and path not in relisted.removed[at]
                ]
            ignore = filters[at].hash_ignore
            added = {
                path: lines[path]
                for path in relisted.added[at]
                if ignore is None or not ignore.excluded(path)
            }
            patched = tree.patched(hit, removed, added) if hit or removed or added else tree
            made[(id(tree), at)] = patched
        results[where] = patched
    return results


def _witnessed(
    kept: Snapshot,
    prefix: str,
    changed: dict[int, Entry],
    added: dict[str, Entry],
    relisted: _Relisted,
    results: TreeResults,
) -> Patched:
    """The patched snapshot: the listed folders with their signatures now, the sent entries without those no
    longer sent and with the new ones at the end; and the witnesses whose signatures are new."""
    size = signatures.PACKED.size
    packed = bytearray(kept.packed)
    recent: list[tuple[int, inputs.Signature]] = []
    for index, sig in [*relisted.signatures.items(), *((i, _signature(e)) for i, e in changed.items())]:
        packed[index * size : (index + 1) * size] = signatures.PACKED.pack(*sig)
        recent.append((index, sig))
    paths = kept.paths
    listed = kept.listed
    if relisted.listed and not (relisted.unsent or relisted.removed_folders):
        # only folders added: they go after the listed ones, and the entries move up by as many
        count = len(relisted.listed)
        recent = [(index if index < listed else index + count, sig) for index, sig in recent]
        recent += ((listed + at, sig) for at, (_, sig) in enumerate(relisted.listed))
        paths = [*paths[:listed], *(path for path, _ in relisted.listed), *paths[listed:]]
        new = b"".join(signatures.PACKED.pack(*sig) for _, sig in relisted.listed)
        packed = bytearray(packed[: listed * size] + new + packed[listed * size :])
        listed += count
    elif relisted.unsent or relisted.removed_folders or relisted.listed:
        gone = {prefix + relative for relative in relisted.unsent}
        drop = {prefix + folder for folder in relisted.removed_folders}
        below = tuple(folder + "/" for folder in drop)
        kept_listed = [
            index
            for index in range(kept.listed)
            if paths[index] not in drop and not paths[index].startswith(below)
        ]
        kept_sent = [
            index
            for index in range(kept.listed, len(paths))
            if paths[index] not in gone and not paths[index].startswith(below)
        ]
        renumbered = {old: new for new, old in enumerate(kept_listed)}
        start = len(kept_listed) + len(relisted.listed)
        renumbered.update((old, start + new) for new, old in enumerate(kept_sent))
        recent = [(renumbered[index], sig) for index, sig in recent if index in renumbered]
        recent += ((len(kept_listed) + at, sig) for at, (_, sig) in enumerate(relisted.listed))
        paths = [paths[index] for index in kept_listed]
        paths += (path for path, _ in relisted.listed)
        paths += (kept.paths[index] for index in kept_sent)
        packed = bytearray(
            b"".join(
                [
                    *(packed[index * size : (index + 1) * size] for index in kept_listed),
                    *(signatures.PACKED.pack(*sig) for _, sig in relisted.listed),
                    *(packed[index * size : (index + 1) * size] for index in kept_sent),
                ]
            )
        )
        listed = len(kept_listed) + len(relisted.listed)
    if relisted.sent or relisted.below:
        paths = paths[:] if paths is kept.paths else paths
        for relative in sorted(relisted.sent):
            sig = _signature(added[relative])
            recent.append((len(paths), sig))
            paths.append(prefix + relative)
            packed += signatures.PACKED.pack(*sig)
        for path, sig in relisted.below:
            recent.append((len(paths), sig))
            paths.append(path)
            packed += signatures.PACKED.pack(*sig)
    folders: dict[str, Folder] | None = kept.folders  # as loaded: not decoded, not encoded again
    encoded = kept.encoded
    if relisted.records or relisted.removed_folders:
        records = {**kept.records(), **relisted.records}
        folders = {relative: record for relative, record in records.items() if not relisted.gone(relative)}
        encoded = None
    joined, members = (kept.joined, kept.members) if paths is kept.paths else (None, None)
    return Snapshot(paths, bytes(packed), listed, results, folders, [], encoded, joined, members), recent


def _signature(entry: Entry) -> inputs.Signature:
    return (entry.inode, entry.device, entry.mtime_ns, entry.ctime_ns, entry.size)
