"""The input manifest of a content key: everything the key was computed from, in a canonical encoding.

Kept per key in the local cache (store.py) so that `explain` and a rebuild's reasons can say which inputs
differ; the key itself is the digest of `Manifest.lines`.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import xxhash

KEY_VERSION = "planner-key/4"  # 2: the main context narrowed to what the build reads; 3: files_digest;
# 4: every key changes once, so no image built before the fix of issue 27 (a same-size edit built from a stale
# copy the daemon kept) is taken for current


def digest_lines(lines: Iterable[str]) -> str:
    hasher = xxhash.xxh3_128()
    for line in lines:
        hasher.update(line.encode("utf-8", "surrogateescape"))
        hasher.update(b"\n")
    return hasher.hexdigest()


def files_digest(files: dict[str, str]) -> str:
    """The digest of a tree's manifest lines (path -> "kind mode content-hash-or-target", in path order).

    Paths and lines hold no NUL (no file name can), so the paths joined by NUL and the lines joined by NUL name
    the mapping exactly; two joins and one hash, not a hash update per file (a 100k-file tree is digested on
    every edit)."""
    paths, lines = join_files(files)
    hasher = xxhash.xxh3_128()
    hasher.update(paths.encode("utf-8", "surrogateescape"))
    hasher.update(b"\1")
    hasher.update(lines.encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def join_files(files: dict[str, str]) -> tuple[str, str]:
    """A tree's manifest lines as kept in the cache: its paths joined by NUL and its lines joined by NUL (two
    long strings store and load many times faster than a dict of 100k entries)."""
    return "\0".join(files), "\0".join(files.values())


CHUNK_ENTRIES = 2048  # at most, unless one path's run is longer


def chunk_ranges(paths: list[str]) -> list[tuple[int, int]]:
    """Cut sorted `paths` into runs of at most CHUNK_ENTRIES, each the paths that start with some string: a
    run too long is cut by the next character. The cuts depend only on the paths in and around a run, so an edit
    of one file changes the lines of one run, an added or removed file at most the runs of its prefix: a tree's
    lines are kept as such runs (store.py), and the next tree shares every run the edit did not touch."""
    out: list[tuple[int, int]] = []
    todo = [(0, len(paths), 0)]  # (lo, hi, length of the prefix all paths in lo:hi share)
    while todo:
        lo, hi, depth = todo.pop()
        if hi - lo <= CHUNK_ENTRIES:
            if hi > lo:
                out.append((lo, hi))
            continue
        # paths differ: at most the first is the prefix itself, so the others have a character to cut by
        at = lo
        while at < hi:
            if len(paths[at]) <= depth:  # the prefix itself is a path: it sorts first
                out.append((at, at + 1))
                at += 1
                continue
            prefix = paths[at][: depth + 1]
            end = bisect.bisect_right(paths, prefix, at, hi, key=functools.partial(_head, depth + 1))
            todo.append((at, end, depth + 1))
            at = end
    out.sort()
    return out


def _head(length: int, path: str) -> str:
    return path[:length]


def split_files(paths: str, lines: str) -> dict[str, str]:
    """`join_files` undone."""
    return dict(zip(paths.split("\0"), lines.split("\0"), strict=True)) if paths or lines else {}


def file_line(kind: str, mode: int, payload: str) -> str:
    """One context entry in a manifest: its kind, kept mode bits, and content hash (a file) or target (a link,
    a device) or nothing."""
    return f"{kind} {mode:o} {payload}"


def value_hash(value: str) -> str:
    return xxhash.xxh3_64_hexdigest(value.encode("utf-8", "surrogateescape"))


@dataclass
class Manifest:
    """What a key was computed from, kept per key for `planner explain`."""

    node: str
    key: str = ""
    files: Mapping[str, str] = field(default_factory=dict)  # "<context>/<path>" -> "kind mode hash-or-target"
    trees: dict[str, str] = field(default_factory=dict)  # context label -> tree hash (what `files` came from)
    dockerfile: str = ""
    args: dict[str, str] = field(default_factory=dict)  # name -> value hash (values may be secrets)
    volatile_args: list[str] = field(default_factory=list)
    target: str | None = None
    platforms: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # name -> value hash (values may be secrets)
    contexts: dict[str, str] = field(
        default_factory=dict
    )  # additional context -> tree hash / remote reference
    inputs: dict[str, str] = field(default_factory=dict)  # extra input path -> tree hash
    env: dict[str, str] = field(default_factory=dict)  # variable -> value hash ("" when unset)
    upstream: dict[str, str] = field(default_factory=dict)  # node -> key
    bases: dict[str, str] = field(
        default_factory=dict
    )  # external image ref (secret arg values masked) -> identity (image ID, pinned, ...)
    # a masked base ref -> the value hash of the ref(s) it stands for: the key still changes with the secret, and
    # no manifest (kept in the cache, compared by explain and rebuild reasons) holds a secret value, old or new
    masked_bases: dict[str, str] = field(default_factory=dict)
    output: str | None = None
    # how `files` covers the main context: "narrowed" (the paths the build reads), "all" (the build reads all
    # of it), "whole" (a fallback: what it reads cannot be told exactly), "" (a remote context)
    scope: str = ""
    scope_reason: str = ""  # why all or the whole of it counts (not in the key: the scope and files are)
    # external bases whose ONBUILD triggers were unknown: the selection assumes they read nothing, and apply
    # checks before it builds (not in the key: what the build reads is)
    unchecked_bases: list[str] = field(default_factory=list)

    def files_key(self) -> str:
        """Names `files` by what it was made from (its trees and inputs): nodes that share a tree share it."""
        return digest_lines([*map(repr, sorted(self.trees.items())), *map(repr, sorted(self.inputs.items()))])

    def lines(self, trees: dict[str, str]) -> list[str]:
        out = [KEY_VERSION, f"dockerfile {self.dockerfile}"]
        out += [f"target {self.target or ''}", f"platforms {','.join(sorted(self.platforms))}"]
        out += [f"arg {k}={v}" for k, v in sorted(self.args.items())]
        out += [f"label {k}={v}" for k, v in sorted(self.labels.items())]
        out += [f"context {name} {digest}" for name, digest in sorted(trees.items())]
        out += [f"additional {name} {value}" for name, value in sorted(self.contexts.items())]
        out += [f"input {path} {digest}" for path, digest in sorted(self.inputs.items())]
        out += [f"env {name} {digest}" for name, digest in sorted(self.env.items())]
        out += [f"upstream {name} {key}" for name, key in sorted(self.upstream.items())]
        out += [
            _base_line(ref, identity, self.masked_bases.get(ref))
            for ref, identity in sorted(self.bases.items())
        ]
        out.append(f"output {self.output or ''}")
        out.append(f"scope {self.scope}")
        return out


def _base_line(ref: str, identity: str, masked: str | None) -> str:
    """A base's key line; one whose ref was masked also carries the hash of the ref as used (a ref without a
    secret has the line it always had: keys of such stacks do not change)."""
    return f"base {ref} {identity}" if masked is None else f"base {ref} {identity} {masked}"
