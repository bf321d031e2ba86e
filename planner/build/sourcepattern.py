"""Dockerfile source paths as BuildKit matches them (Go `filepath.Match`, component by component), and whether a
source may read a given path: what keys/narrow.py selects with, and what the graph draws edges from."""

from __future__ import annotations

import re

from planner.build.dockerfile import Source

_WILDCARD_CHARS = "*?["


def has_wildcards(component: str) -> bool:
    return any(c in component for c in _WILDCARD_CHARS)


def go_pattern(pattern: str) -> re.Pattern[str]:
    """A Go `filepath.Match` pattern as a regular expression (full match). Raises ValueError for a pattern Go
    calls malformed (`ErrBadPattern`). Escapes (`\\`) are not expected: the analyser refuses them."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            ranges: list[tuple[str, str]] = []
            while True:
                if i >= n:
                    raise ValueError("unterminated [")
                if pattern[i] == "]" and ranges:
                    i += 1
                    break
                lo = pattern[i]
                if lo in "-]\\":
                    raise ValueError(f"bad range start {lo!r}")
                i += 1
                hi = lo
                if i < n and pattern[i] == "-":
                    i += 1
                    if i >= n or pattern[i] in "-]\\":
                        raise ValueError("bad range end")
                    hi = pattern[i]
                    i += 1
                ranges.append((lo, hi))
            parts = "".join(
                re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
                for lo, hi in ranges
                if lo <= hi
            )
            if negated:
                out.append(f"[^{parts}]" if parts else "(?s:.)")
            else:
                out.append(f"[{parts}]" if parts else "(?!)")
        elif c == "\\":
            raise ValueError("escapes are not analysed")
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def source_meets(source: Source, path: str) -> bool:
    """Whether `source` may read `path` (context-relative) or something under it, or lies under it: each
    component of the source matches the path's (a wildcard by Go's rules; a malformed one matches anything)."""
    if source.path == "":
        return True
    for wanted, found in zip(source.path.split("/"), path.split("/"), strict=False):
        if source.pattern and has_wildcards(wanted):
            try:
                if not go_pattern(wanted).fullmatch(found):
                    return False
            except ValueError:
                continue
        elif wanted != found:
            return False
    return True
