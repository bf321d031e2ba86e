"""Narrowing a node's key to the context paths its build reads: a selection over the shared tree of its root.

The tree (path -> manifest line, one walk per root and ignore set, shared by every node) is not walked again:
each node selects from it the subtree of every source its build reads (dockerfile.context_reads), the way
BuildKit's copy resolves them (tonistiigi/fsutil `copy.ResolveWildcards`):
- a source is cleaned and rooted at the context (`path.Join("/", src)`);
- without wildcards it names one path: that path and everything under it;
- with wildcards it splits at the first component holding `*`, `?` or `[` into a literal folder and a pattern;
  every path under the folder whose folder-relative path matches the pattern (Go `filepath.Match`: `*` and `?`
  never match `/`) is selected with everything under it;
- BuildKit follows symlinks in a source path (`FollowSymlinks`): a source that passes through or names a
  symlink is not narrowed (the whole context counts), since its target may lie anywhere in the context;
- a source that matches nothing selects nothing: a file that appears and matches changes the selection;
- the folder a wildcard searches is recorded by its kind only (whether it exists decides whether the build
  fails, its mode decides nothing).
The ignore files and the Dockerfile, when they are in the tree, are always selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from planner.build.dockerfile import Source
from planner.build.sourcepattern import go_pattern, has_wildcards
from planner.keys.tree import Lines, Tree


class Whole(Exception):
    """The whole context counts (the message says why): a source reads all of it (`exact`), or the sources
    cannot be narrowed exactly (a fallback)."""

    def __init__(self, message: str, exact: bool = False) -> None:
        super().__init__(message)
        self.exact = exact


def _subtree(tree: Tree, path: str) -> list[tuple[int, int]]:
    """`path` and everything under it, as index ranges of the tree."""
    ranges = []
    at = tree.index(path)
    if path in tree:
        ranges.append((at, at + 1))
    start = tree.index(path + "/")
    end = tree.index(path + "0")  # "0" follows "/": every "path/..." lies in between
    if start < end:
        ranges.append((start, end))
    return ranges


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def _kind(line: str | None) -> str | None:
    return line.split(" ", 1)[0] if line else None


def select(tree: Tree, sources: Sequence[Source], always: Iterable[str] = ()) -> Lines:
    """The part of a tree the sources read, in path order. Raises Whole when a source selects the whole context
    or cannot be narrowed exactly."""
    files = tree
    chosen: list[tuple[int, int]] = []
    searched: dict[str, str] = {}
    for source in sources:
        where = f"line {source.line}: {source.instruction} {source.path or '.'}"
        if source.path == "":
            raise Whole(f"{where} reads the whole context", exact=True)
        parts = source.path.split("/")
        split = len(parts)
        if source.pattern:
            split = next((i for i, part in enumerate(parts) if has_wildcards(part)), len(parts))
        folder = "/".join(parts[:split])
        literal_chain = _ancestors(source.path) if split == len(parts) else [*_ancestors(folder), folder]
        for ancestor in literal_chain:
            if ancestor and _kind(files.get(ancestor)) == "l":
                raise Whole(f"{where} goes through the symlink {ancestor}")
        if split == len(parts):
            if _kind(files.get(source.path)) == "l":
                raise Whole(f"{where} is a symlink (BuildKit copies what it points to)")
            chosen += _subtree(tree, source.path)
            continue
        try:
            matcher = go_pattern("/".join(parts[split:]))
        except ValueError as exc:
            raise Whole(f"{where}: a malformed pattern ({exc})") from None
        if folder:
            kind = _kind(files.get(folder))
            if kind is None:
                continue  # the build fails: nothing to read
            searched[folder] = f"{kind} (searched)"
            start = tree.index(folder + "/")
            end = tree.index(folder + "0")
            offset = len(folder) + 1
        else:
            start, end, offset = 0, len(tree), 0
        matched: set[str] = set()
        for path in tree.paths_between(start, end):
            if matched and any(a in matched for a in _ancestors(path)):
                continue  # inside a matched folder: selected with it (BuildKit does not look inside)
            if matcher.fullmatch(path[offset:]) is None:
                continue
            if _kind(files[path]) == "l":
                raise Whole(f"{where} matches the symlink {path} (BuildKit copies what it points to)")
            chosen += _subtree(tree, path)
            matched.add(path)
    for path in always:
        if path in files:
            chosen += _subtree(tree, path)[:1]
    selected = tree.select(chosen)
    if any(folder not in selected for folder in searched):
        paths, lines = selected.lists()
        kept = dict(zip(paths, lines, strict=True))
        for folder, line in searched.items():
            kept.setdefault(folder, line)
        ordered = sorted(kept.items())
        selected = Lines([path for path, _ in ordered], [line for _, line in ordered])
    return selected
