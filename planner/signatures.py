"""Proving that paths still have the lstat signatures recorded for them, cheaply.

A signature is (inode, device, mtime_ns, ctime_ns, size of a regular file else 0), packed as 40 bytes. Two ways
to check a list of paths:
- `holds`: against one xxh3-128 digest per chunk of paths (the memo keeps no per-path objects to load); the
  check stops at the first chunk that differs.
- `differences`: against the packed signatures themselves (a walk snapshot keeps them), so that a check that
  fails also says which paths changed and what they are now: a root with one edited file is then patched, not
  walked again.
With many paths a check is split between two forked processes: lstat is a system call each, and on two cores two
processes halve it (threads do not: the GIL).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import xxhash

from planner.inputs import Signature

PARALLEL_FROM = 20_000  # paths; below this a fork costs more than it saves
CHUNK = 2048  # paths per digest
PACKED = struct.Struct("<QQqqQ")  # a signature as bytes
_REGULAR = 0o100000

# Which paths of one checked list differ now: index -> the signature now (None: the path cannot be read).
Changes = dict[int, "Signature | None"]
_T = TypeVar("_T")
_R = TypeVar("_R")


def holds(paths: Sequence[str], digests: Sequence[str], parallel: bool | None = None) -> bool:
    """Whether every path still has its recorded signature (a path that cannot be read never does)."""
    if len(digests) != -(-len(paths) // CHUNK):
        return False
    chunks = list(range(len(digests)))

    def check(part: Sequence[int]) -> tuple[bool, list[tuple[int, list[bytes]]]]:
        read: list[tuple[int, list[bytes]]] = []
        for chunk in part:
            start = chunk * CHUNK
            now = _packed(paths, start, min(start + CHUNK, len(paths)))
            read.append((start, now))
            if b"" in now or xxhash.xxh3_128_hexdigest(b"".join(now)) != digests[chunk]:
                return False, read
        return True, read

    def failed(ours: tuple[bool, list[tuple[int, list[bytes]]]]) -> bool:
        return not ours[0]

    def shrink(
        theirs: tuple[bool, list[tuple[int, list[bytes]]]],
    ) -> tuple[bool, list[tuple[int, list[bytes]]]]:
        return theirs if not theirs[0] else (True, [])  # a check that holds carries nothing back

    answers = _split(chunks, check, len(paths), parallel, decided=failed, shrink=shrink)
    for _, read in answers:  # a check that failed tells the snapshot checks what it read
        _carried.extend((paths, start, now) for start, now in read)
    return all(ok for ok, _ in answers)


def differences(
    checks: Sequence[tuple[Sequence[str], bytes]], parallel: bool | None = None
) -> list[Changes | None]:
    """For each list of paths with its packed recorded signatures: None when every path holds, else the paths
    that differ now (index -> signature now). All lists in one pass; two processes when there are many paths."""
    size = PACKED.size
    known = _carried_signatures()
    work = [
        (which, chunk) for which, (paths, _) in enumerate(checks) for chunk in range(-(-len(paths) // CHUNK))
    ]

    def check(part: Sequence[tuple[int, int]]) -> list[tuple[int, int, Signature | None]]:
        found: list[tuple[int, int, Signature | None]] = []
        for which, chunk in part:
            paths, packed = checks[which]
            start, stop = chunk * CHUNK, min((chunk + 1) * CHUNK, len(paths))
            now = _packed(paths, start, stop, known)
            if b"".join(now) == packed[start * size : stop * size]:
                continue
            for offset, sig in enumerate(now):
                index = start + offset
                if sig != packed[index * size : (index + 1) * size]:
                    found.append((which, index, PACKED.unpack(sig) if sig else None))
        return found

    answers: list[Changes | None] = [None] * len(checks)
    total = sum(len(paths) for paths, _ in checks)
    if known:  # the halves should hold as many paths to lstat each, not as many chunks
        work = _balanced(work, lambda unit: _unknown(checks[unit[0]][0], unit[1], known))
    for part in _split(work, check, total, parallel):
        for which, index, sig in part:
            changes = answers[which]
            if changes is None:
                changes = answers[which] = {}
            changes[index] = sig
    return answers


def _unknown(paths: Sequence[str], chunk: int, known: dict[str, bytes]) -> int:
    return sum(1 for path in paths[chunk * CHUNK : (chunk + 1) * CHUNK] if path not in known)


def _balanced(work: Sequence[_T], cost: Callable[[_T], int]) -> list[_T]:
    """The work reordered so that its first half (by count, as `_split` cuts it) costs about what the second
    does: costly units alternate between the halves."""
    ranked = sorted(work, key=cost, reverse=True)
    return ranked[0::2] + ranked[1::2]


def _split(
    work: Sequence[_T],
    check: Callable[[Sequence[_T]], _R],
    paths: int,
    parallel: bool | None,
    decided: Callable[[_R], bool] | None = None,
    shrink: Callable[[_R], _R] | None = None,
) -> list[_R]:
    """`check` over the work, split between this process and a forked child when it pays; the child's answer
    (`shrink`ed first) comes back pickled through a pipe. `decided(ours)` true: the child's half cannot change
    the answer."""
    if parallel is None:
        parallel = paths >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    if not parallel or len(work) < 2 or threading.active_count() > 1:  # forking a threaded process is unsafe
        return [check(work)]
    try:
        return _forked(work, check, decided, shrink)
    except ChildLost:  # nothing is proven by half a check: this process does all of it
        return [check(work)]


def _forked(
    work: Sequence[_T],
    check: Callable[[Sequence[_T]], _R],
    decided: Callable[[_R], bool] | None,
    shrink: Callable[[_R], _R] | None,
) -> list[_R]:
    middle = len(work) // 2
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child checks the second half
        try:
            os.close(read_end)
            found = check(work[middle:])
            payload = pickle.dumps(
                found if shrink is None else shrink(found), protocol=pickle.HIGHEST_PROTOCOL
            )
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ours = check(work[:middle])
        if decided is not None and decided(ours):
            os.kill(pid, signal.SIGKILL)
            return [ours]
        received = bytearray()
        while chunk := os.read(read_end, 1 << 16):
            received += chunk
        try:
            theirs: _R = pickle.loads(received)
        except Exception:  # the child died: nothing is proven
            raise ChildLost from None
        return [ours, theirs]
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


class ChildLost(OSError):
    """The process that checked half the paths ended without an answer."""


# What `holds` read in this process, as (paths, first index, packed signatures): a memo check that fails has
# just read the signatures of many of the paths the walk snapshots are checked for next.
_carried: list[tuple[Sequence[str], int, list[bytes]]] = []


def _carried_signatures() -> dict[str, bytes]:
    """The signatures earlier checks in this run read, by path (and forgotten here): reading them again moments
    later would tell the same, as a change after either read shows next time against what was recorded."""
    known: dict[str, bytes] = {}
    for paths, start, now in _carried:
        known.update(zip(paths[start : start + len(now)], now, strict=True))
    _carried.clear()
    return known


def _packed(
    paths: Sequence[str], start: int, stop: int, known: dict[str, bytes] | None = None
) -> list[bytes]:
    """The signatures of paths[start:stop] now, packed (b"" for a path that cannot be read); those in `known`
    as read moments ago."""
    lstat = os.lstat
    pack = PACKED.pack
    out: list[bytes] = []
    append = out.append
    get = (known or {}).get
    for index in range(start, stop):
        path = paths[index]
        sig = get(path)
        if sig is not None:
            append(sig)
            continue
        try:
            st = lstat(path)
            size = st.st_size if st.st_mode & 0o170000 == _REGULAR else 0
            append(pack(st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns, size))
        except (OSError, struct.error):
            append(b"")
    return out


def pack_all(sigs: Sequence[Signature]) -> bytes | None:
    """The signatures packed one after another (None if one cannot be encoded)."""
    pack = PACKED.pack
    try:
        return b"".join([pack(*sig) for sig in sigs])
    except struct.error:
        return None


def chunk_digests(packed: bytes) -> list[str]:
    """One digest per chunk of packed signatures (what `holds` compares with)."""
    step = CHUNK * PACKED.size
    return [xxhash.xxh3_128_hexdigest(packed[at : at + step]) for at in range(0, len(packed), step)]


def recorded_digests(sigs: Sequence[Signature]) -> list[str] | None:
    """The digests `holds` compares with, over signatures recorded by the slow path (None if one cannot be
    encoded)."""
    packed = pack_all(sigs)
    return None if packed is None else chunk_digests(packed)


def racy(indexed: Iterable[tuple[int, Signature]], racy_window_ns: int) -> list[int]:
    """The indices of the signatures written within the racy window: a second write in the same timestamp tick
    would not show, so such a signature cannot be trusted later."""
    limit = time.time_ns() - racy_window_ns
    return [at for at, sig in indexed if max(sig[2], sig[3]) >= limit]


def settled(sigs: Sequence[Signature], racy_window_ns: int) -> bool:
    """Whether no signature was written within the racy window."""
    return not racy(enumerate(sigs), racy_window_ns)


def seal(
    paths: Sequence[str], packed: bytes, recent: Sequence[Signature], racy_window_ns: int
) -> tuple[str, list[str]] | None:
    """The paths joined for storage and the chunk digests of their packed signatures; None when they cannot be
    trusted later: a path written within the racy window (of `recent`, those not known to be older), or one
    that cannot be stored."""
    if not settled(recent, racy_window_ns) or len(packed) != PACKED.size * len(paths):
        return None
    joined = "\0".join(paths)
    if joined.count("\0") != max(len(paths) - 1, 0):
        return None  # a path holds the separator
    return joined, chunk_digests(packed)
