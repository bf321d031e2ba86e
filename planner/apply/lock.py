"""One apply per project at a time: an advisory file lock that names its holder.

flock is released by the kernel when the holder dies, so a stale lock cannot outlive its process; the holder
line left in the file is only for the message a waiting apply prints.

The lock lives beside the cache (`<cache>/locks/`). When it cannot be made there (a read-only cache, a file at
the cache path), the lock of the same name is taken under the temp folder instead
(`$TMPDIR/planner-locks-<uid>/`, private to the user): applies that share the unusable cache still exclude each
other. Only if that fails too does the apply run unlocked, with a warning.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planner.base.localcache import warn_cache


@contextmanager
def project_lock(path: Path, wait_message: bool = True) -> Iterator[bool]:
    """Hold the lock; yields whether another apply had to be waited for."""
    fd = _open_lock(path)
    if fd is None:
        yield False
        return
    waited = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            if wait_message:
                current = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another apply"
                print(f"planner: waiting for the apply that holds {path.name}: {current}", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        holder: dict[str, object] = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "command": " ".join(sys.argv)}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield waited
    finally:
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing releases the flock


def fallback_path(path: Path) -> Path:
    """The lock of the same name under the temp folder, in a folder of this user's."""
    return Path(tempfile.gettempdir()) / f"planner-locks-{os.getuid()}" / path.name


def _create(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)


def _open_lock(path: Path) -> int | None:
    """The lock file's descriptor: beside the cache, else under the temp folder; None when neither works."""
    try:
        return _create(path)
    except OSError as exc:
        problem = exc
    fallback = fallback_path(path)
    cache_root = str(path.parent.parent)
    try:
        fallback.parent.mkdir(mode=0o700, exist_ok=True)
        folder = os.lstat(fallback.parent)
        if not stat.S_ISDIR(folder.st_mode) or folder.st_uid != os.getuid() or folder.st_mode & 0o022:
            raise PermissionError(f"{fallback.parent} is not a private folder of this user")
        fd = _create(fallback)
    except OSError as second:
        warn_cache(cache_root, f"apply lock {path} cannot be made ({problem}), nor {fallback} ({second}); "
                               "running without it: do not run two applies of this project at once")  # fmt: skip
        return None
    warn_cache(cache_root, f"apply lock {path} cannot be made ({problem}); using {fallback}")
    return fd
