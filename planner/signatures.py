"""Proving that paths still have the lstat signatures recorded for them, cheaply.

A signature is (inode, device, mtime_ns, ctime_ns, size of a regular file else 0). Recorded signatures are kept
as one xxh3-128 digest per chunk of paths: a store holds no per-path objects to load, and a check stops at the
first chunk that differs. With many paths the check is split between two forked processes: lstat is a system
call each, and on two cores two processes halve it (threads do not: the GIL).
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from collections.abc import Sequence

import xxhash

from planner.inputs import Signature

PARALLEL_FROM = 20_000  # paths; below this a fork costs more than it saves
CHUNK = 2048  # paths per digest
PACKED = struct.Struct("<QQqqQ")  # a signature as bytes


def holds(paths: Sequence[str], digests: Sequence[str], parallel: bool | None = None) -> bool:
    """Whether every path still has its recorded signature (a path that cannot be read never does).

    Signatures are compared through one xxh3-128 digest per chunk of paths, so that a memo holds no per-path
    objects to load and a check stops at the first chunk that differs."""
    if len(digests) != -(-len(paths) // CHUNK):
        return False  # recorded for another list of paths
    if parallel is None:
        parallel = len(paths) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    middle = len(digests) // 2
    if not parallel or threading.active_count() > 1:  # forking a threaded process is unsafe
        return _chunks_hold(paths, digests, 0, len(digests))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child checks the second half of the chunks and reports one byte
        try:
            os.close(read_end)
            os.write(write_end, b"1" if _chunks_hold(paths, digests, middle, len(digests)) else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        if not _chunks_hold(paths, digests, 0, middle):
            os.kill(pid, signal.SIGKILL)  # the answer is known
            return False
        return os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def _chunks_hold(paths: Sequence[str], digests: Sequence[str], first: int, last: int) -> bool:
    for chunk in range(first, last):
        start = chunk * CHUNK
        if _digest(paths, start, min(start + CHUNK, len(paths))) != digests[chunk]:
            return False
    return True


def _digest(paths: Sequence[str], start: int, stop: int) -> str | None:
    lstat = os.lstat
    pack = PACKED.pack
    hasher = xxhash.xxh3_128()
    update = hasher.update
    regular = 0o100000
    try:
        for index in range(start, stop):
            st = lstat(paths[index])
            size = st.st_size if st.st_mode & 0o170000 == regular else 0
            update(pack(st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns, size))
    except (OSError, struct.error):
        return None
    return hasher.hexdigest()


def recorded_digests(sigs: Sequence[Signature]) -> list[str] | None:
    """The same digests, over signatures recorded by the slow path (None if one cannot be encoded)."""
    digests = []
    for start in range(0, len(sigs), CHUNK):
        hasher = xxhash.xxh3_128()
        try:
            for sig in sigs[start : start + CHUNK]:
                hasher.update(PACKED.pack(*sig))
        except struct.error:
            return None
        digests.append(hasher.hexdigest())
    return digests


def seal(
    paths: Sequence[str], sigs: Sequence[Signature], racy_window_ns: int
) -> tuple[str, list[str]] | None:
    """The paths joined for storage and their chunk digests; None when they cannot be trusted later: a path
    written within the racy window (a second write in the same timestamp tick would not show), or one that
    cannot be stored."""
    now = time.time_ns()
    if any(now - max(sig[2], sig[3]) <= racy_window_ns for sig in sigs) or any("\0" in p for p in paths):
        return None
    digests = recorded_digests(sigs)
    return None if digests is None else ("\0".join(paths), digests)
