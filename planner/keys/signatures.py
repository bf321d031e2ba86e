"""Proving that paths still have the lstat signatures recorded for them, cheaply.

A signature is (inode, device, mtime_ns, ctime_ns, size of a regular file else 0), packed as 40 bytes. Two ways
to check a list of paths:
- `holds`: against one xxh3-128 digest per chunk of paths (the memo keeps no per-path objects to load); the
  check stops at the first chunk that differs.
- `differences`: against the packed signatures themselves (a walk snapshot keeps them), so that a check that
  fails also says which paths changed and what they are now: a root with one edited file is then patched, not
  walked again.
The signatures are read by planner._lstat (planner/_lstat.c, built at install where a C compiler is found): all
of a list's paths in one call, in threads that share the system calls between the cores. Without it they are
read here, path by path, and a check of many paths is split between two forked processes (threads would not
share the work: the GIL is held around each lstat).
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import xxhash

from planner.base.inputs import Signature

try:
    from planner import _lstat
except ImportError:  # not built: no C compiler at install
    _reader = None
else:
    _reader = _lstat.read

PARALLEL_FROM = 20_000  # paths; below this a fork costs more than it saves
CHUNK = 2048  # paths per digest
PACKED = struct.Struct("<QQqqQ")  # a signature as bytes
SIZE = PACKED.size
_REGULAR = 0o100000

# Which paths of one checked list differ now: index -> the signature now (None: the path cannot be read).
Changes = dict[int, "Signature | None"]
_T = TypeVar("_T")
_R = TypeVar("_R")


def holds(
    paths: Sequence[str], digests: Sequence[str], parallel: bool | None = None, joined: str | None = None
) -> bool:
    """Whether every path still has its recorded signature (a path that cannot be read never does). A check
    that fails still reads every path: the walk snapshots are checked next (`differences`), over mostly the same
    paths, and take what was read here instead of an lstat pass of their own (`joined`: the paths joined by NUL,
    as kept, by which they find theirs)."""
    if len(digests) != -(-len(paths) // CHUNK):
        return False
    read = _read_all(paths, joined)
    if read is not None:
        now, unread = read
        step = CHUNK * SIZE
        if unread == 0 and all(
            xxhash.xxh3_128_hexdigest(now[chunk * step : (chunk + 1) * step]) == digest
            for chunk, digest in enumerate(digests)
        ):
            return True
        _carried.append((paths, now, joined))
        return False
    chunks = list(range(len(digests)))

    def check(part: Sequence[int]) -> tuple[bool, list[bytes]]:
        read: list[bytes] = []
        same = True
        for chunk in part:
            start = chunk * CHUNK
            now = _packed(paths, start, min(start + CHUNK, len(paths)))
            joined = b"".join(now)
            if len(joined) != len(now) * SIZE:  # a path that cannot be read: zeros in its place
                same, joined = False, b"".join(sig or _UNREAD for sig in now)
            elif same and xxhash.xxh3_128_hexdigest(joined) != digests[chunk]:
                same = False
            read.append(joined)
        return same, read

    answers = _split(chunks, check, len(paths), parallel)
    if all(ok for ok, _ in answers):
        return True
    # a check that failed tells the snapshot checks what it read (the halves are in order)
    _carried.append((paths, b"".join(block for _, read in answers for block in read), joined))
    return False


def differences(
    checks: Sequence[tuple[Sequence[str], bytes]],
    parallel: bool | None = None,
    joined: Sequence[str | None] = (),
) -> list[Changes | None]:
    """For each list of paths with its packed recorded signatures: None when every path holds, else the paths
    that differ now (index -> signature now). A list a failed memo check read moments ago (as one run of its
    paths) is compared with what it read; the others are read in one pass, in two processes when there are
    many paths. `joined`: each list's paths joined by NUL where the caller has them (a faster match)."""
    answers: list[Changes | None] = [None] * len(checks)
    unread: list[int] = []
    carried = _carried[:]
    _carried.clear()
    cursors: dict[int, tuple[int, int]] = {}  # carried entry -> (offset, index) just past the last run found
    for which, (paths, packed) in enumerate(checks):
        as_joined = joined[which] if which < len(joined) else None
        now = _read_before(carried, paths, as_joined, cursors)
        if now is None:
            read = _read_all(paths, as_joined)
            now = None if read is None else read[0]
        if now is None:
            unread.append(which)
        else:
            answers[which] = _compared(now, packed, range(0, len(paths), CHUNK), len(paths)) or None

    def check(part: Sequence[tuple[int, int]]) -> list[tuple[int, int, Signature | None]]:
        found: list[tuple[int, int, Signature | None]] = []
        for which, chunk in part:
            paths, packed = checks[which]
            start, stop = chunk * CHUNK, min((chunk + 1) * CHUNK, len(paths))
            now = b"".join(sig or _UNREAD for sig in _packed(paths, start, stop))
            found += ((which, index, sig) for index, sig in _compared(now, packed, [start], stop).items())
        return found

    work = [(which, chunk) for which in unread for chunk in range(-(-len(checks[which][0]) // CHUNK))]
    total = sum(len(checks[which][0]) for which in unread)
    for part in _split(work, check, total, parallel) if work else []:
        for which, index, sig in part:
            changes = answers[which]
            if changes is None:
                changes = answers[which] = {}
            changes[index] = sig
    return answers


def _compared(now: bytes, packed: bytes, starts: Iterable[int], count: int) -> Changes:
    """The indices whose signature in `now` (zeros: unreadable) differs from `packed`, chunk by chunk from each
    of `starts` (`now` begins at the first start)."""
    found: Changes = {}
    base = None
    for start in starts:
        base = start if base is None else base
        stop = min(start + CHUNK, count)
        recorded = packed[start * SIZE : stop * SIZE]
        if now[(start - base) * SIZE : (stop - base) * SIZE] == recorded and _UNREAD not in recorded:
            continue  # (zeros in what was recorded: compared path by path, as an unreadable path may match)
        for index in range(start, stop):
            sig = now[(index - base) * SIZE : (index - base + 1) * SIZE]
            if sig == _UNREAD:
                found[index] = None
            elif sig != packed[index * SIZE : (index + 1) * SIZE]:
                found[index] = PACKED.unpack(sig)
    return found


def _read_before(
    carried: Sequence[tuple[Sequence[str], bytes, str | None]],
    paths: Sequence[str],
    joined: str | None,
    cursors: dict[int, tuple[int, int]],
) -> bytes | None:
    """The signatures a failed memo check read for exactly these paths in this order, if it read them. With
    both lists' paths joined by NUL the match is a substring search between NULs (comparing 100k-entry lists
    costs 30 ms), from where the last list was found (`cursors`): the roots' lists come in the order the memo
    read them, so twenty roots cost one pass over its paths, not twenty."""
    if not paths:
        return None
    for entry, (read_paths, now, read_joined) in enumerate(carried):
        if joined is not None and read_joined is not None:
            found = _run_of(read_joined, joined, *cursors.get(entry, (0, 0)))
            if found is None and entry in cursors:
                found = _run_of(read_joined, joined)  # out of order: from the start
            if found is not None:
                at, cursors[entry] = found[0], (found[1], found[0] + len(paths))
                return now[at * SIZE : (at + len(paths)) * SIZE]
            continue
        at = -1
        for _ in range(
            8
        ):  # the first path (the root folder) may also be a looked-up witness, before the walks
            try:
                at = read_paths.index(paths[0], at + 1)
            except ValueError:
                break
            if read_paths[at : at + len(paths)] == paths:
                return now[at * SIZE : (at + len(paths)) * SIZE]
    return None


def _run_of(whole: str, part: str, start: int = 0, index: int = 0) -> tuple[int, int] | None:
    """Where `part`'s entries appear whole and in order in `whole` (both entries joined by NUL), searching from
    offset `start`, which is where entry `index` of `whole` begins: the index of `part`'s first entry there
    and the offset just past `part` (and its NUL); None when they do not. Candidates are found by `part`'s
    first entry, then compared whole (a search for the whole 4 MB needle costs ten times more)."""
    head, sep, _ = part.partition("\0")
    needle = head + sep
    offset = whole.find(needle, start)
    while offset != -1:
        end = offset + len(part)
        if (
            (offset == 0 or whole[offset - 1] == "\0")
            and whole.startswith(part, offset)
            and (end == len(whole) or whole[end] == "\0")
        ):
            return index + whole.count("\0", start, offset), end + 1
        offset = whole.find(needle, offset + 1)
    return None


def _split(
    work: Sequence[_T],
    check: Callable[[Sequence[_T]], _R],
    paths: int,
    parallel: bool | None,
) -> list[_R]:
    """`check` over the work, split between this process and a forked child when it pays; the child's answer
    comes back pickled through a pipe."""
    if parallel is None:
        parallel = paths >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    if not parallel or len(work) < 2 or threading.active_count() > 1:  # forking a threaded process is unsafe
        return [check(work)]
    try:
        return _forked(work, check)
    except ChildLost:  # nothing is proven by half a check: this process does all of it
        return [check(work)]


def _forked(work: Sequence[_T], check: Callable[[Sequence[_T]], _R]) -> list[_R]:
    middle = len(work) // 2
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child checks the second half
        try:
            os.close(read_end)
            found = check(work[middle:])
            payload = pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ours = check(work[:middle])
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


# What `holds` read in this process, as (paths, their signatures packed, zeros for one that cannot be read): a
# memo check that fails has just read the signatures of the paths the walk snapshots are checked for next;
# reading them again moments later would tell the same, as a change after either read shows next time against
# what was recorded.
_carried: list[tuple[Sequence[str], bytes, str | None]] = []
_UNREAD = bytes(PACKED.size)  # no path has inode 0 and times 0


def _read_all(paths: Sequence[str], joined: str | None) -> tuple[bytes, int] | None:
    """Every path's signature now, packed (zeros for one that cannot be read), and how many could not be read,
    by the C reader; None without it (or for a path it cannot be given: one holding a NUL)."""
    if _reader is None:
        return None
    try:
        encoded = os.fsencode(joined if joined is not None else "\0".join(paths))
        return _reader(encoded, len(paths), _threads(len(paths)))
    except ValueError:
        return None


def _threads(paths: int) -> int:
    """Threads for the C reader: twice the cores this process may run on (measured on two cores: 0.15 s for
    100k paths with four threads, 0.19 s with two, 0.29 s with one); one for a few paths."""
    if paths < THREADS_FROM:
        return 1
    affinity = getattr(os, "sched_getaffinity", None)  # Linux: the cores this process may run on
    cores = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    return min(8, 2 * cores)


THREADS_FROM = 1024  # paths; below this starting a thread costs about what it saves


def _packed(paths: Sequence[str], start: int, stop: int) -> list[bytes]:
    """The signatures of paths[start:stop] now, packed (b"" for a path that cannot be read)."""
    lstat = os.lstat
    pack = PACKED.pack
    out: list[bytes] = []
    append = out.append
    for index in range(start, stop):
        path = paths[index]
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
