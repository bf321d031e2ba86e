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
    return holds_each([(paths, digests)], parallel)[0]


def holds_each(
    checks: Sequence[tuple[Sequence[str], Sequence[str]]], parallel: bool | None = None
) -> list[bool]:
    """`holds` for several lists of paths at once (every context root's snapshot, say), in one pass: with many
    paths in all, two processes split the chunks of all the lists between them."""
    answers = [len(digests) == -(-len(paths) // CHUNK) for paths, digests in checks]
    work = [
        (which, chunk)
        for which, (_, digests) in enumerate(checks)
        if answers[which]
        for chunk in range(len(digests))
    ]
    total = sum(len(paths) for paths, _ in checks)
    if parallel is None:
        parallel = total >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    if not parallel or len(work) < 2 or threading.active_count() > 1:  # forking a threaded process is unsafe
        return _each_holds(checks, work, answers)
    middle = len(work) // 2
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child checks the second half of the chunks and reports each list's answer as one byte
        try:
            os.close(read_end)
            theirs = _each_holds(checks, work[middle:], list(answers))
            os.write(write_end, bytes(b"1"[0] if ok else b"0"[0] for ok in theirs))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ours = _each_holds(checks, work[:middle], list(answers))
        if not any(ours):
            os.kill(pid, signal.SIGKILL)  # every list already differs: the answer is known
            return ours
        reported = b""
        while len(reported) < len(checks):
            got = os.read(read_end, len(checks) - len(reported))
            if not got:
                return [False] * len(checks)  # the child died: nothing is proven
            reported += got
        return [mine and theirs == b"1"[0] for mine, theirs in zip(ours, reported, strict=True)]
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def _each_holds(
    checks: Sequence[tuple[Sequence[str], Sequence[str]]],
    work: Sequence[tuple[int, int]],
    answers: list[bool],
) -> list[bool]:
    for which, chunk in work:
        if not answers[which]:
            continue  # a chunk of this list already differs
        paths, digests = checks[which]
        start = chunk * CHUNK
        answers[which] = _digest(paths, start, min(start + CHUNK, len(paths))) == digests[chunk]
    return answers


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
