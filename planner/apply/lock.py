"""One apply per project at a time: an advisory file lock that names its holder.

flock is released by the kernel when the holder dies, so a stale lock cannot outlive its process; the holder
line left in the file is only for the message a waiting apply prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def project_lock(path: Path, wait_message: bool = True) -> Iterator[bool]:
    """Hold the lock; yields whether another apply had to be waited for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
