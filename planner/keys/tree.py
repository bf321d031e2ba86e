"""A context tree's manifest lines with its digest, and the views the edit path reads it through.

A tree is `files`: path -> manifest line ("kind mode content-hash-or-target"), in path order (a walk sorts its
entries by path, and a patch keeps that order). Its digest is `manifest.files_digest` of it. After a one-file
edit of a 100k-file tree, three things used to cost a pass over all of it: digesting the patched tree (joining
and encoding 100k paths and lines, 13 ms), sorting it for narrowing, and building each node's narrowed
selection as a dict (30 ms for ten nodes of 10k files). Here a tree also keeps, made once and then carried
from tree to tree by a patch:
- its paths and lines as two aligned lists (a narrowed selection is slices of them, `Lines`);
- its paths and lines encoded in blocks of BLOCK entries: the digest streams the blocks through the hash, so a
  patch encodes again only the blocks its changes fall in (the digest is the same value `files_digest` gives:
  keys do not change).
A resident server makes these views for the trees it holds before it forks a run (`prepare`), so a run after
an edit finds them made.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, ItemsView, Iterator, Mapping, ValuesView

import xxhash

from planner.keys.manifest import files_digest

BLOCK = (
    1024  # entries per encoded block: an edit re-encodes ~70 KB of lines, the digest makes ~200 hash updates
)

_Blocks = list[tuple[bytes, bytes]]  # per block: its paths joined by NUL, its lines joined by NUL, encoded


def _encoded(items: list[str]) -> bytes:
    return "\0".join(items).encode("utf-8", "surrogateescape")


class Tree:
    """One context tree: `files` in path order and its `digest`; the other views are made when first asked for
    and never change (a tree is not changed in place: a patch makes a new one)."""

    __slots__ = ("_blocks", "_digest", "_lines", "_paths", "files")

    def __init__(
        self,
        files: dict[str, str],
        digest: str | None = None,
        *,
        paths: list[str] | None = None,
        lines: list[str] | None = None,
        blocks: _Blocks | None = None,
    ) -> None:
        self.files = files
        self._digest = digest
        self._paths = paths
        self._lines = lines
        self._blocks = blocks

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = _streamed(self.blocks) if len(self.files) > BLOCK else files_digest(self.files)
        return self._digest

    @property
    def paths(self) -> list[str]:
        """The paths, sorted (the order of `files`)."""
        if self._paths is None:
            self._paths = list(self.files)
        return self._paths

    @property
    def lines(self) -> list[str]:
        """The lines, in the order of `paths`."""
        if self._lines is None:
            self._lines = list(self.files.values())
        return self._lines

    @property
    def blocks(self) -> _Blocks:
        if self._blocks is None:
            paths, lines = self.paths, self.lines
            self._blocks = [
                (_encoded(paths[at : at + BLOCK]), _encoded(lines[at : at + BLOCK]))
                for at in range(0, len(paths), BLOCK)
            ]
        return self._blocks

    def prepare(self) -> None:
        """Make every view now (a resident server, before it forks the runs that read them)."""
        if len(self.files) > BLOCK:
            self.blocks  # noqa: B018 - made for later
        self.digest  # noqa: B018

    def patched(self, changed: Mapping[str, str], removed: Collection[str], added: Mapping[str, str]) -> Tree:
        """This tree with the lines of `changed` paths replaced, `removed` paths gone and `added` ones put in
        their places. Costs the changes, copies of the two lists and of `files`, and the blocks from the first
        place a path was added or removed (entries after it move to other blocks)."""
        paths = self.paths
        lines = self.lines[:]
        dirty: set[int] = set()
        for path, line in changed.items():
            at = bisect.bisect_left(paths, path)
            if at == len(paths) or paths[at] != path:
                raise KeyError(path)
            lines[at] = line
            dirty.add(at // BLOCK)
        first = len(paths)  # the first place entries moved from
        if removed or added:
            paths = paths[:]
            for path in sorted(removed, reverse=True):  # from the last: earlier places do not move
                at = bisect.bisect_left(paths, path)
                if at == len(paths) or paths[at] != path:
                    raise KeyError(path)
                del paths[at]
                del lines[at]
                first = min(first, at)
            for path in sorted(added, reverse=True):
                at = bisect.bisect_left(paths, path)
                if at < len(paths) and paths[at] == path:
                    raise ValueError(f"{path} is in the tree already")
                paths.insert(at, path)
                lines.insert(at, added[path])
                first = min(first, at)
            files = dict(zip(paths, lines, strict=True))
        else:
            files = dict(self.files)
            files.update(changed)
        blocks: _Blocks | None = None
        if self._blocks is not None:
            kept = first // BLOCK
            blocks = self._blocks[:kept]
            for block in dirty:
                if block < kept:
                    at = block * BLOCK
                    blocks[block] = (blocks[block][0], _encoded(lines[at : at + BLOCK]))
            blocks += (
                (_encoded(paths[at : at + BLOCK]), _encoded(lines[at : at + BLOCK]))
                for at in range(kept * BLOCK, len(paths), BLOCK)
            )
        return Tree(files, paths=paths, lines=lines, blocks=blocks)


def _streamed(blocks: _Blocks) -> str:
    """`files_digest` of the tree the blocks encode, from the blocks."""
    hasher = xxhash.xxh3_128()
    for at, (paths, _) in enumerate(blocks):
        if at:
            hasher.update(b"\0")
        hasher.update(paths)
    hasher.update(b"\1")
    for at, (_, lines) in enumerate(blocks):
        if at:
            hasher.update(b"\0")
        hasher.update(lines)
    return hasher.hexdigest()


class Lines(Mapping[str, str]):
    """Manifest lines as two aligned lists in path order (a narrowed selection: slices of a tree's lists), read
    as a mapping without building a dict of them."""

    __slots__ = ("_digest", "lines", "paths")

    def __init__(self, paths: list[str], lines: list[str]) -> None:
        self.paths = paths
        self.lines = lines
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        """`files_digest` of the mapping."""
        if self._digest is None:
            hasher = xxhash.xxh3_128()
            hasher.update(_encoded(self.paths))
            hasher.update(b"\1")
            hasher.update(_encoded(self.lines))
            self._digest = hasher.hexdigest()
        return self._digest

    def __getitem__(self, path: str) -> str:
        at = bisect.bisect_left(self.paths, path)
        if at == len(self.paths) or self.paths[at] != path:
            raise KeyError(path)
        return self.lines[at]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def items(self) -> ItemsView[str, str]:
        return _Items(self)

    def values(self) -> ValuesView[str]:
        return _Values(self)


class _Items(ItemsView[str, str]):
    """A `Lines`' items by its two lists, not a lookup per path."""

    _mapping: Lines

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self._mapping.paths, self._mapping.lines, strict=True)


class _Values(ValuesView[str]):
    _mapping: Lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping.lines)
