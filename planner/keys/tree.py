"""A context tree's manifest lines with its digest, kept in blocks that a patch and a narrowed selection read
without a pass over the whole tree.

A tree maps each path to its manifest line ("kind mode content-hash-or-target"), in path order (a walk sorts its
entries by path, and a patch keeps that order); its digest is `manifest.files_digest` of that mapping. After a
one-file edit of a 100k-file tree, three things used to cost a pass over all of it: digesting the patched tree
(joining and encoding 100k paths and lines, 13 ms), sorting it for narrowing, and building each node's narrowed
selection (30 ms for ten nodes of 10k files). In a run forked from a resident server each such pass costs twice
over: every reference taken to a held string writes its count and copies the page it lies on.

So a tree is a list of blocks of about BLOCK entries, each with its paths and lines, the two encoded and joined
by NUL, and the byte offsets of its entries in them:
- a patch copies the list of blocks and makes again only the blocks a change falls in (an added path goes into
  its block, which splits when it has grown to twice the size; the other blocks are shared with the old tree);
- the digest streams the blocks' bytes through the hash (the same value `files_digest` gives: keys do not
  change);
- a narrowed selection is index ranges of the tree (`Lines`): its digest streams slices of the blocks' bytes,
  and its paths and lines are made only when something reads them (the manifest kept after the answer).
A resident server encodes the trees it holds before it forks a run (`prepare`), so a run finds them encoded.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections.abc import Collection, ItemsView, Iterable, Iterator, Mapping, ValuesView

import xxhash

from planner.keys.manifest import files_digest

BLOCK = 1024  # entries per block as made: an edit encodes ~70 KB again; the digest makes ~200 hash updates


def _encoded(items: list[str]) -> bytes:
    return "\0".join(items).encode("utf-8", "surrogateescape")


def _nexts(joined: bytes) -> array[int]:
    """Where each item of `joined` (items joined by NUL) ends, plus one: where the next one starts."""
    return array(
        "q", itertools.accumulate(map(operator.add, map(len, joined.split(b"\0")), itertools.repeat(1)))
    )


class _Block:
    """A run of entries: their paths and lines, and (made when first asked for) both encoded and where each
    entry starts in them. Its entries never change: a patch makes a new block."""

    __slots__ = ("_encoded", "_nexts", "lines", "paths")

    def __init__(self, paths: list[str], lines: list[str]) -> None:
        self.paths = paths
        self.lines = lines
        self._encoded: tuple[bytes, bytes] | None = None
        self._nexts: tuple[array[int], array[int]] | None = None

    @property
    def encoded(self) -> tuple[bytes, bytes]:
        if self._encoded is None:
            self._encoded = (_encoded(self.paths), _encoded(self.lines))
        return self._encoded

    @property
    def nexts(self) -> tuple[array[int], array[int]]:
        if self._nexts is None:
            paths, lines = self.encoded
            self._nexts = (_nexts(paths), _nexts(lines))
        return self._nexts

    def piece(self, start: int, end: int) -> tuple[bytes, bytes]:
        """Entries start:end of the block, encoded and joined."""
        paths, lines = self.encoded
        if start == 0 and end == len(self.paths):
            return paths, lines
        path_nexts, line_nexts = self.nexts
        return (
            paths[path_nexts[start - 1] if start else 0 : path_nexts[end - 1] - 1],
            lines[line_nexts[start - 1] if start else 0 : line_nexts[end - 1] - 1],
        )


class Tree(Mapping[str, str]):
    """One context tree: path -> manifest line in path order, and its `digest`."""

    __slots__ = ("_blocks", "_digest", "_firsts", "_starts")

    def __init__(self, blocks: list[_Block], digest: str | None = None) -> None:
        self._blocks = [block for block in blocks if block.paths]
        self._firsts = [block.paths[0] for block in self._blocks]
        self._starts = list(itertools.accumulate((len(block.paths) for block in self._blocks), initial=0))
        self._digest = digest

    @classmethod
    def of(cls, paths: list[str], lines: list[str], digest: str | None = None) -> Tree:
        """The tree of sorted `paths` and their `lines`."""
        if len(paths) != len(lines):
            raise ValueError("a tree needs one line per path")
        return cls(
            [_Block(paths[at : at + BLOCK], lines[at : at + BLOCK]) for at in range(0, len(paths), BLOCK)],
            digest,
        )

    @classmethod
    def of_files(cls, files: Mapping[str, str], digest: str | None = None) -> Tree:
        """The tree of `files` (path -> line, in path order)."""
        return cls.of(list(files), list(files.values()), digest)

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = _streamed([block.encoded for block in self._blocks])
        return self._digest

    def prepare(self) -> None:
        """Encode every block now (a resident server, before it forks the runs that read them)."""
        for block in self._blocks:
            block.nexts  # noqa: B018 - made for later
        self.digest  # noqa: B018

    # -- read as a mapping --

    def _find(self, path: str) -> tuple[_Block, int] | None:
        at = bisect.bisect_right(self._firsts, path) - 1
        if at < 0:
            return None
        block = self._blocks[at]
        inner = bisect.bisect_left(block.paths, path)
        if inner == len(block.paths) or block.paths[inner] != path:
            return None
        return block, inner

    def __getitem__(self, path: str) -> str:
        found = self._find(path)
        if found is None:
            raise KeyError(path)
        return found[0].lines[found[1]]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._find(path) is not None

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(block.paths for block in self._blocks)

    def __len__(self) -> int:
        return self._starts[-1]

    def items(self) -> ItemsView[str, str]:
        return _Items(self)

    def values(self) -> ValuesView[str]:
        return _Values(self)

    def lists(self) -> tuple[list[str], list[str]]:
        """The paths and lines as two lists."""
        return (
            list(itertools.chain.from_iterable(block.paths for block in self._blocks)),
            list(itertools.chain.from_iterable(block.lines for block in self._blocks)),
        )

    def joined(self) -> tuple[str, str]:
        """`manifest.join_files` of the tree."""
        return (
            "\0".join("\0".join(block.paths) for block in self._blocks),
            "\0".join("\0".join(block.lines) for block in self._blocks),
        )

    # -- read by index (narrowing) --

    def index(self, path: str) -> int:
        """Where `path` is or would go, as bisect_left over all paths."""
        at = max(bisect.bisect_left(self._firsts, path) - 1, 0)
        while at < len(self._blocks):
            block = self._blocks[at]
            inner = bisect.bisect_left(block.paths, path)
            if inner < len(block.paths):
                return self._starts[at] + inner
            at += 1
        return len(self)

    def paths_between(self, start: int, end: int) -> Iterator[str]:
        """The paths at indices start:end."""
        for block, first, stop in self._pieces(start, end):
            yield from block.paths[first:stop]

    def _pieces(self, start: int, end: int) -> Iterator[tuple[_Block, int, int]]:
        """(block, start, end within it) covering indices start:end."""
        at = bisect.bisect_right(self._starts, start) - 1
        while start < end and at < len(self._blocks):
            base = self._starts[at]
            block = self._blocks[at]
            stop = min(end - base, len(block.paths))
            yield block, start - base, stop
            start = base + stop
            at += 1

    def select(self, ranges: Iterable[tuple[int, int]]) -> Lines:
        """The entries of index `ranges` (maybe overlapping), in path order."""
        merged: list[tuple[int, int]] = []
        for first, end in sorted(ranges):
            if first >= end:
                continue
            if merged and first <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((first, end))
        return Lines(tree=self, ranges=merged)

    # -- a new tree --

    def patched(self, changed: Mapping[str, str], removed: Collection[str], added: Mapping[str, str]) -> Tree:
        """This tree with the lines of `changed` paths replaced, `removed` paths gone and `added` ones put in
        their places: the blocks the changes fall in are made again, the others shared."""
        blocks = self._blocks[:]
        firsts = self._firsts
        made: dict[int, tuple[list[str], list[str]]] = {}  # block index -> its new paths and lines

        def lists_of(at: int) -> tuple[list[str], list[str]]:
            if at not in made:
                made[at] = (blocks[at].paths[:], blocks[at].lines[:])
            return made[at]

        for path, line in changed.items():
            at, inner = self._place(path)
            paths, lines = lists_of(at)
            if inner == len(paths) or paths[inner] != path:
                raise KeyError(path)
            lines[inner] = line
        for path in removed:
            at, _ = self._place(path)
            paths, lines = lists_of(at)
            inner = bisect.bisect_left(paths, path)
            if inner == len(paths) or paths[inner] != path:
                raise KeyError(path)
            del paths[inner]
            del lines[inner]
        for path, line in added.items():
            at = max(bisect.bisect_right(firsts, path) - 1, 0) if firsts else 0
            if not blocks:
                blocks.append(_Block([], []))
            paths, lines = lists_of(at)
            inner = bisect.bisect_left(paths, path)
            if inner < len(paths) and paths[inner] == path:
                raise ValueError(f"{path} is in the tree already")
            paths.insert(inner, path)
            lines.insert(inner, line)
        out: list[_Block] = []
        for at, block in enumerate(blocks):
            if at not in made:
                out.append(block)
                continue
            paths, lines = made[at]
            if len(paths) >= 2 * BLOCK:  # grown: cut again
                out += (
                    _Block(paths[cut : cut + BLOCK], lines[cut : cut + BLOCK])
                    for cut in range(0, len(paths), BLOCK)
                )
            else:
                out.append(_Block(paths, lines))
        return Tree(out)

    def _place(self, path: str) -> tuple[int, int]:
        """The block `path` belongs in and its place in that block (as the tree is, before any change)."""
        at = bisect.bisect_right(self._firsts, path) - 1
        if at < 0:
            raise KeyError(path)
        return at, bisect.bisect_left(self._blocks[at].paths, path)


def _streamed(encoded: list[tuple[bytes, bytes]]) -> str:
    """`files_digest` of the entries whose encoded pieces (paths, lines) these are, in order."""
    hasher = xxhash.xxh3_128()
    for at, (paths, _) in enumerate(encoded):
        if at:
            hasher.update(b"\0")
        hasher.update(paths)
    hasher.update(b"\1")
    for at, (_, lines) in enumerate(encoded):
        if at:
            hasher.update(b"\0")
        hasher.update(lines)
    return hasher.hexdigest()


class Lines(Mapping[str, str]):
    """Manifest lines in path order, read as a mapping: either two aligned lists, or index ranges of a tree (a
    narrowed selection), whose digest streams the tree's encoded blocks and whose lists are made only when read."""

    __slots__ = ("_digest", "_lists", "_ranges", "_tree")

    def __init__(
        self,
        paths: list[str] | None = None,
        lines: list[str] | None = None,
        *,
        tree: Tree | None = None,
        ranges: list[tuple[int, int]] | None = None,
    ) -> None:
        self._lists = (paths, lines) if paths is not None and lines is not None else None
        self._tree = tree
        self._ranges = ranges or []
        self._digest: str | None = None

    def lists(self) -> tuple[list[str], list[str]]:
        """The paths and lines as two lists."""
        if self._lists is None:
            paths: list[str] = []
            lines: list[str] = []
            assert self._tree is not None
            for first, end in self._ranges:
                for block, start, stop in self._tree._pieces(first, end):
                    paths += block.paths[start:stop]
                    lines += block.lines[start:stop]
            self._lists = (paths, lines)
        return self._lists

    @property
    def digest(self) -> str:
        """`files_digest` of the mapping."""
        if self._digest is None:
            if self._lists is None and self._tree is not None:
                pieces = [
                    block.piece(start, stop)
                    for first, end in self._ranges
                    for block, start, stop in self._tree._pieces(first, end)
                ]
                self._digest = _streamed(pieces)
            else:
                paths, lines = self.lists()
                self._digest = files_digest(dict(zip(paths, lines, strict=True)))
        return self._digest

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        if self._lists is None and self._tree is not None:
            at = self._tree.index(path)
            return path in self._tree and any(first <= at < end for first, end in self._ranges)
        return super().__contains__(path)

    def __getitem__(self, path: str) -> str:
        paths, lines = self.lists()
        at = bisect.bisect_left(paths, path)
        if at == len(paths) or paths[at] != path:
            raise KeyError(path)
        return lines[at]

    def __iter__(self) -> Iterator[str]:
        return iter(self.lists()[0])

    def __len__(self) -> int:
        if self._lists is None:
            return sum(end - first for first, end in self._ranges)
        return len(self._lists[0])

    def items(self) -> ItemsView[str, str]:
        return _Items(self)

    def values(self) -> ValuesView[str]:
        return _Values(self)


class _Items(ItemsView[str, str]):
    """Items by the two lists, not a lookup per path."""

    _mapping: Tree | Lines

    def __iter__(self) -> Iterator[tuple[str, str]]:
        paths, lines = self._mapping.lists()
        return zip(paths, lines, strict=True)


class _Values(ValuesView[str]):
    _mapping: Tree | Lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping.lists()[1])
