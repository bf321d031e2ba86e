"""Walking a build context exactly as Docker sends it.

Rules (the docker CLI's context walk, which the engine here builds from, and what `COPY . /x` then holds):
- a path is sent unless `.dockerignore` excludes it (last matching pattern wins, parents count through the
  parent directory's per-pattern results: `PatternMatcher.hits`);
- an excluded directory is skipped whole, unless an exception pattern starts with it; then the walk goes on
  inside, and only re-included entries are sent (their parent folders appear implicitly: mode 0755, plus the
  setgid bit when the folder holding them has it, as Linux gives a new folder inside a setgid one);
- symlinks are sent as links (never followed); regular files with content and permission bits; directories,
  empty ones too; fifos and devices as such; sockets never.
Several matchers over one root are served by a single traversal ("multiple contexts sharing a tree are
walked once").
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from planner.base import inputs
from planner.base.errors import InputError
from planner.build.dockerignore import PatternMatcher
from planner.keys import signatures

IMPLICIT_DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a build context."""

    path: str  # context-relative, "/"-separated
    kind: str  # "f" file, "d" directory, "l" symlink, "p" fifo, "c"/"b" device
    mode: int  # permission bits as Docker keeps them (07777)
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    device: int = 0
    target: str = ""  # symlink target, or "major:minor" for devices


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    if stat.S_ISFIFO(mode):
        return "p"
    if stat.S_ISCHR(mode):
        return "c"
    if stat.S_ISBLK(mode):
        return "b"
    return None  # sockets: the docker tar writer skips them


def _entry(path: str, full: str, st: os.stat_result, kind: str) -> Entry:
    target = ""
    if kind == "l":
        target = os.readlink(full)
    elif kind in "cb":
        target = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return Entry(
        path,
        kind,
        stat.S_IMODE(st.st_mode),
        st.st_size if kind == "f" else 0,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_dev,
        target,
    )


def entry_of(path: str, full: str, st: os.stat_result) -> Entry | None:
    """The entry a walk sends for `full` (context path `path`) as lstat found it; None for what it never sends
    (a socket)."""
    kind = _kind(st.st_mode)
    return None if kind is None else _entry(path, full, st, kind)


class _Filter:
    """One matcher's view during the shared traversal."""

    def __init__(self, matcher: PatternMatcher, skip: Sequence[str]) -> None:
        self.matcher = matcher
        self.skip = tuple(skip)
        self.entries: list[Entry] = []
        self.active_excluded: set[str] = set()  # excluded dirs we walk into for re-included children

    def skipped(self, path: str) -> bool:
        return any(path == s or path.startswith(s + "/") for s in self.skip)


# A folder's decisions as the walk made them, compactly (a snapshot loads them on every edit): the names of the
# child entries that matter ("\0"-joined), their kinds (a letter each), per child the matchers that send it (a
# bit mask, as one character), and for the folders walked into: (child index, the hits to walk into it with, the
# matchers for which it is an excluded folder walked into); with the folder's signature and the pattern hits it
# was entered with.
Decisions = tuple[str, str, str, tuple[tuple[int, dict[int, tuple[bool, ...]], tuple[int, ...]], ...]]
Folder = tuple[inputs.Signature, tuple[tuple[int, tuple[bool, ...]], ...], Decisions]
MAX_MATCHERS = 20  # a mask is one character (below 0x110000): more matchers over one root are not recorded


def _indices(mask: int) -> tuple[int, ...]:
    return tuple(index for index in range(MAX_MATCHERS) if mask >> index & 1)


_MASKS: dict[str, tuple[int, ...]] = {}  # mask character -> matcher indices


class Folders:
    """Per-folder decisions of the last walk of a root (`previous`, from its snapshot) and of this one
    (`current`): what each matcher sends of a folder and which sub-folders it walks into.

    Those decisions depend only on the names and kinds in the folder and on the pattern hits it was entered with.
    So a folder is listed (and matched) again only when its own signature changed (an entry added, removed or
    renamed in it changes its mtime and ctime; a chmod its ctime) or it was entered with other hits. Its sent
    entries are stat'ed again in every walk, kept folder or not, so a content edit, a chmod, a replaced file or a
    retargeted link shows in the entry exactly as in a walk from scratch; an entry of another kind than recorded
    (changed after the folder's signature was taken) has the folder listed again. A record whose folder was
    written within the racy window is not to be given as `previous` (keys/compute.py leaves those out).
    """

    def __init__(self, previous: dict[str, Folder] | None = None) -> None:
        self.previous: dict[str, Folder] = previous or {}
        self.current: dict[str, Folder] = {}
        self.listed = 0  # folders listed again (scandir and matching), for tests and the bench
        self.kept = 0  # folders whose recorded decisions were used


def walk_contexts(
    root: Path,
    matchers: Sequence[PatternMatcher],
    skips: Sequence[Sequence[str]],
    witnesses: Witnesses | None = None,
    folders: Folders | None = None,
    below: tuple[str, dict[int, tuple[bool, ...]]] | None = None,
) -> list[list[Entry]]:
    """Entries of `root` as each matcher would send them (sorted by path), from one traversal.

    `skips[i]` are context-relative paths left out for matcher i (outputs of upstream nodes, hashed by key).
    `witnesses`, when given, receives what the result depends on: the folders listed and the entries sent,
    with their signatures (the input log gets the same while it records). `folders`, when given, holds the
    last walk's per-folder results to reuse and receives this walk's (the result is the same either way).
    `below` (a folder's context path and the pattern hits each matcher enters it with): only what lies below
    that folder is walked, as a walk of the whole root walks it, for a patch (keys/patch.py) to add; the input
    log is not told (the patch reports the whole root's witnesses)."""
    try:
        real_root = os.path.realpath(root)
        if not inputs.is_dir(real_root):
            raise InputError(f"build context is not a directory: {root}")
    except OSError as exc:
        raise InputError(f"cannot read build context {root}: {exc}") from None
    filters = [_Filter(m, s) for m, s in zip(matchers, skips, strict=True)]
    recording = (inputs.is_recording() and below is None) or witnesses is not None
    listed: list[tuple[str, inputs.Signature]] = []
    no_hits: list[tuple[bool, ...]] = [tuple(False for _ in f.matcher.patterns) for f in filters]
    # (relative dir, absolute dir, {filter index: that filter's pattern hits for the dir}, its signature as
    # its parent's listing saw it, or None)
    stack: list[_Pending] = [("", real_root, {i: no_hits[i] for i in range(len(filters))}, None)]
    if below is not None:
        stack = [(below[0], os.path.join(real_root, below[0]), below[1], None)]
    memory = folders if folders is not None else Folders()
    previous = memory.previous
    while stack:
        rel_dir, abs_dir, wanting, folder_sig = stack.pop()
        if folder_sig is None:
            try:
                folder_sig = inputs.signature(os.lstat(abs_dir))
            except OSError as exc:
                raise InputError(f"cannot read {abs_dir}: {exc.strerror}") from None
        if recording:
            listed.append((abs_dir, folder_sig))
        entered = tuple(sorted(wanting.items()))
        record = previous.get(rel_dir)
        found = None
        if record is not None and record[0] == folder_sig and record[1] == entered:
            found = _kept(rel_dir, abs_dir, record[2], len(filters))
        if found is None:
            found = _listed(rel_dir, abs_dir, wanting, filters)
            memory.listed += 1
        else:
            memory.kept += 1
        decisions, sent, walked, entering = found
        for index, entries in enumerate(sent):
            filters[index].entries.extend(entries)
        for index, path in walked:
            filters[index].active_excluded.add(path)
        stack.extend(entering)
        if folders is not None and len(filters) <= MAX_MATCHERS:
            memory.current[rel_dir] = (folder_sig, entered, decisions)
    results = []
    for view in filters:
        implicit = _implicit_folders(view) if view.active_excluded else []
        # Folders that exist only to hold generated outputs appear once a producer ran: they are no input.
        holders = {folder for skipped in view.skip for folder in _ancestors(skipped)}
        entries = [*view.entries, *implicit]
        if holders:
            entries = [e for e in entries if not (e.kind == "d" and e.path in holders)]
        entries.sort(key=_path_key)
        results.append(entries)
    if recording:
        paths, sigs = _depends_on(real_root, listed, results)
        packed = signatures.pack_all(sigs)
        if below is None:
            inputs.note_tree(paths, packed, sigs)
        if witnesses is not None:
            witnesses.paths.extend(paths)
            witnesses.sigs.extend(sigs)
            witnesses.packed = (
                None if packed is None or witnesses.packed is None else witnesses.packed + packed
            )
            witnesses.listed += len(listed)
    return results


_Pending = tuple[str, str, dict[int, tuple[bool, ...]], "inputs.Signature | None"]
# A folder's walk: its decisions (to record), the entries each matcher sends of it, the excluded folders walked
# into (matcher index, path), the folders to walk next.
_Found = tuple[Decisions, list[list[Entry]], list[tuple[int, str]], list[_Pending]]
_FORMAT = {"f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK, "p": stat.S_IFIFO, "c": stat.S_IFCHR,
           "b": stat.S_IFBLK}  # fmt: skip


def _kept(rel_dir: str, abs_dir: str, recorded: Decisions, matchers: int) -> _Found | None:
    """A folder whose signature holds: its recorded decisions, each sent entry stat'ed now; None when the folder
    must be listed after all (an entry is gone or of another kind: the folder changed after its signature was
    taken)."""
    lstat = os.lstat
    folder = abs_dir if abs_dir.endswith("/") else abs_dir + "/"  # os.path.join's result, without its cost
    prefix = rel_dir + "/" if rel_dir else ""
    sent: list[list[Entry]] = [[] for _ in range(matchers)]
    joined, kinds, masks, folders = recorded
    names = joined.split("\0") if joined else []
    if not len(names) == len(kinds) == len(masks):
        return None
    signatures: dict[int, inputs.Signature] = {}
    only = sent[0] if matchers == 1 else None
    for position, name in enumerate(names):
        mask = masks[position]
        if mask == "\0":
            continue  # only walked into
        kind = kinds[position]
        full = folder + name
        try:
            st = lstat(full)
        except OSError:
            return None
        if st.st_mode & 0o170000 != _FORMAT[kind]:
            return None
        if kind == "f":
            entry = Entry(
                prefix + name, "f", st.st_mode & 0o7777, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                st.st_dev,
            )  # fmt: skip
        else:
            entry = _entry(prefix + name, full, st, kind)
            if kind == "d":
                signatures[position] = (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns, 0)
        if only is not None:
            only.append(entry)
            continue
        indices = _MASKS.get(mask)
        if indices is None:
            indices = _MASKS[mask] = _indices(ord(mask))
        for index in indices:
            sent[index].append(entry)
    walked: list[tuple[int, str]] = []
    entering: list[_Pending] = []
    for position, enter_with, walked_by in folders:
        path = prefix + names[position]
        walked.extend((index, path) for index in walked_by)
        entering.append((path, folder + names[position], enter_with, signatures.get(position)))
    return recorded, sent, walked, entering


def _listed(
    rel_dir: str, abs_dir: str, wanting: dict[int, tuple[bool, ...]], filters: list[_Filter]
) -> _Found:
    """A folder listed: what each matcher sends of it and which sub-folders it walks into."""
    try:
        with os.scandir(abs_dir) as iterator:
            listing = [(d.name, d.path, d.stat(follow_symlinks=False)) for d in iterator]
    except PermissionError as exc:
        raise InputError(f"cannot read {abs_dir}: {exc.strerror}") from None
    names: list[str] = []
    kinds: list[str] = []
    masks: list[str] = []
    folders: list[tuple[int, dict[int, tuple[bool, ...]], tuple[int, ...]]] = []
    sent: list[list[Entry]] = [[] for _ in filters]
    walked: list[tuple[int, str]] = []
    entering: list[_Pending] = []
    prefix = rel_dir + "/" if rel_dir else ""
    for name, full, st in listing:
        kind = _kind(st.st_mode)
        if kind is None:
            continue
        path = prefix + name
        enter_with: dict[int, tuple[bool, ...]] | None = None
        entry: Entry | None = None
        mask = 0
        walked_by: tuple[int, ...] = ()
        for index, parent_hits in wanting.items():
            view = filters[index]
            if view.skip and view.skipped(path):
                continue
            matcher = view.matcher
            hits = parent_hits
            if matcher.patterns:
                hits = matcher.hits(path, parent_hits)
                if matcher.decide(hits):
                    if kind == "d" and matcher.descend_into(path):
                        walked_by = (*walked_by, index)
                        walked.append((index, path))
                        enter_with = {**(enter_with or {}), index: hits}
                    continue
            if entry is None:
                entry = _entry(path, full, st, kind)
            mask |= 1 << index
            sent[index].append(entry)
            if kind == "d":
                enter_with = {**(enter_with or {}), index: hits}
        if entry is None and enter_with is None:
            continue  # nothing of it is sent or walked into: the folder's signature alone speaks for it
        if enter_with is not None:
            folders.append((len(names), enter_with, walked_by))
            entering.append((path, full, enter_with, inputs.signature(st)))
        names.append(name)
        kinds.append(kind)
        masks.append(chr(mask) if len(filters) <= MAX_MATCHERS else "\0")
    decisions: Decisions = ("\0".join(names), "".join(kinds), "".join(masks), tuple(folders))
    return decisions, sent, walked, entering


def relist(
    rel_dir: str,
    abs_dir: str,
    entered: tuple[tuple[int, tuple[bool, ...]], ...],
    matchers: Sequence[PatternMatcher],
    skips: Sequence[Sequence[str]],
) -> Decisions | None:
    """One folder listed again as a walk with these matchers and skips would list it when entered with these
    pattern hits (a folder record's), for a patch to compare with what it recorded; None if it cannot be read."""
    filters = [_Filter(m, s) for m, s in zip(matchers, skips, strict=True)]
    try:
        return _listed(rel_dir, abs_dir, dict(entered), filters)[0]
    except (OSError, InputError):
        return None


@dataclass
class Witnesses:
    """What a walk's result depends on, absolute paths with their signatures (also `packed`, None when one
    cannot be packed): the `listed` folders first, then the entries sent."""

    paths: list[str] = field(default_factory=list)
    sigs: list[inputs.Signature] = field(default_factory=list)
    packed: bytes | None = b""
    listed: int = 0


def _depends_on(
    real_root: str, listed: list[tuple[str, inputs.Signature]], results: list[list[Entry]]
) -> tuple[list[str], list[inputs.Signature]]:
    """What this walk's result depends on: the folders it listed, the entries it sent."""
    sent = {e.path: e for entries in results for e in entries if e.inode}  # implicit folders have no stat
    folder = real_root if real_root.endswith("/") else real_root + "/"  # as os.path.join, without its cost
    paths = [p for p, _ in listed] + [folder + p for p in sent]
    sigs = [s for _, s in listed] + [
        (e.inode, e.device, e.mtime_ns, e.ctime_ns, e.size) for e in sent.values()
    ]
    return paths, sigs


def _implicit_folders(view: _Filter) -> list[Entry]:
    """Excluded folders Docker still creates because re-included entries live in them."""
    needed = {folder for e in view.entries for folder in _ancestors(e.path) if folder in view.active_excluded}
    modes = {e.path: e.mode for e in view.entries if e.kind == "d"}
    implicit = []
    # parents first: an implicit folder inside a setgid one gets the bit, and passes it on
    for folder in sorted(needed, key=lambda f: f.count("/")):
        mode = IMPLICIT_DIR_MODE | (modes.get(posixpath.dirname(folder), 0) & stat.S_ISGID)
        modes[folder] = mode
        implicit.append(Entry(folder, "d", mode))
    return implicit


def _path_key(entry: Entry) -> str:
    return entry.path


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def walk_context(root: Path, matcher: PatternMatcher, skip: Sequence[str] = ()) -> list[Entry]:
    return walk_contexts(root, [matcher], [skip])[0]
