"""Content hashes of files, remembered by stat so an unchanged tree is not read again.

The cache only accelerates: each context root keeps one record `path -> (size, mtime_ns, ctime_ns, inode,
device, hash)`, read and written as a whole (one diskcache get/set per root, not one per file). An entry is
trusted only when every stat field matches; a file changed within the last two seconds is hashed but not
remembered (its mtime may not move on a second write in the same tick: git's "racy clean" problem). A
corrupt or unreadable cache directory is replaced with a warning, never trusted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import xxhash

from planner.base.errors import InputError
from planner.base.localcache import RACY_WINDOW_NS
from planner.keys.store import Store
from planner.keys.walk import Entry

CACHE_VERSION = 1
CHUNK = 1 << 20
PARALLEL_FROM_BYTES = 1 << 20  # files this large are hashed in parallel
Record = tuple[int, int, int, int, int, str]


def hash_file(path: str) -> str:
    """xxh3-128 of a file's content."""
    try:
        with open(path, "rb", buffering=0) as handle:
            first = handle.read(CHUNK)
            if len(first) < CHUNK:
                return xxhash.xxh3_128_hexdigest(first)
            digest = xxhash.xxh3_128(first)
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
            return digest.hexdigest()
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied (Docker could not send it either)") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _hash_all(paths: list[str], sizes: list[int], jobs: int) -> list[str]:
    """Content hashes in order. Large files are hashed on a thread pool (xxhash is CPU-bound there); small ones
    in order on this thread: their cost is the read's latency, and on a cold cache parallel readers were
    measured slower than one (bench/plan_offline.py, cold hashing)."""
    digests: list[str | None] = [None] * len(paths)
    large = [i for i, size in enumerate(sizes) if size >= PARALLEL_FROM_BYTES]
    if len(large) > 1 and jobs > 1:
        from concurrent.futures import ThreadPoolExecutor  # only then: its import costs more than most plans

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for index, digest in zip(large, pool.map(hash_file, [paths[i] for i in large]), strict=True):
                digests[index] = digest
    for index, path in enumerate(paths):
        if digests[index] is None:
            digests[index] = hash_file(path)
    return [d for d in digests if d is not None]


class StatCache:
    """Per-root stat → content-hash records on top of diskcache (or in memory when no directory is given)."""

    def __init__(
        self, directory: Path | None, racy_window_ns: int = RACY_WINDOW_NS, store: Store | None = None
    ) -> None:
        self.racy_window_ns = racy_window_ns
        if store is None:
            store = Store.open(directory) if directory is not None else Store.memory()
        self.store = store
        self.loaded: dict[str, dict[str, Record]] = {}
        self.dirty: set[str] = set()
        self.files_hashed = 0
        self.bytes_hashed = 0

    def _records(self, root: str) -> dict[str, Record]:
        if root not in self.loaded:
            records = self.store.get(("stat", CACHE_VERSION, root), "stat cache")
            self.loaded[root] = records if isinstance(records, dict) else {}
        return self.loaded[root]

    def hashes(self, root: str, entries: Iterable[Entry], jobs: int = 4) -> dict[str, str]:
        """Content hash per regular-file entry path (relative to `root`)."""
        records = self._records(root)
        now = time.time_ns()
        result: dict[str, str] = {}
        missing: list[Entry] = []
        for entry in entries:
            if entry.kind != "f":
                continue
            record = records.get(entry.path)
            if record is not None and record[:5] == (
                entry.size, entry.mtime_ns, entry.ctime_ns, entry.inode, entry.device
            ):  # fmt: skip
                result[entry.path] = record[5]
            else:
                missing.append(entry)
        if missing:
            digests = _hash_all(
                [os.path.join(root, e.path) for e in missing], [e.size for e in missing], jobs
            )
            for entry, digest in zip(missing, digests, strict=True):
                result[entry.path] = digest
                self.files_hashed += 1
                self.bytes_hashed += entry.size
                if now - max(entry.mtime_ns, entry.ctime_ns) > self.racy_window_ns:
                    records[entry.path] = (
                        entry.size,
                        entry.mtime_ns,
                        entry.ctime_ns,
                        entry.inode,
                        entry.device,
                        digest,
                    )
                    self.dirty.add(root)
                elif entry.path in records:
                    del records[entry.path]
                    self.dirty.add(root)
        return result

    def save(self) -> None:
        """Write back the roots whose records changed."""
        for root in self.dirty:
            self.store.set(
                ("stat", CACHE_VERSION, root), self.loaded[root], "stat cache (the next run hashes again)"
            )
        self.dirty.clear()

    def close(self) -> None:
        self.store.close()
