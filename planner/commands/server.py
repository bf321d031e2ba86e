"""`planner server start|stop|status`: the resident server of a cache folder (planner/resident/).

Start spawns `python -P -m planner.resident.server` in its own session, with its output in the cache folder's
`server.log`, and waits until it answers; stop asks it to stop and waits until its socket is gone."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.base.errors import RuntimeFailure, UsageError
from planner.base.localcache import cache_root
from planner.resident import wire
from planner.resident.client import IDLE, LOG, SOCKET_PATH_LIMIT, holder, socket_path, spawn

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
HELD = 3  # the server's exit code when another server holds the cache folder's lock


@dataclass
class Status:
    cache_dir: str
    answer: dict[str, Any] | None  # None: no server answers


def ask(path: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """The server's answer to a control message; None when no server answers at `path`."""
    if not os.path.exists(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10.0)
    try:
        sock.connect(path)
        wire.send(sock, message)
        answer, _ = wire.receive(sock)
        return answer
    except (OSError, wire.WireError):
        return None
    finally:
        sock.close()


def status(environ: Mapping[str, str]) -> Status:
    return Status(cache_root(environ), ask(socket_path(environ), {"status": True}))


def start(environ: Mapping[str, str], idle: float = IDLE) -> Status:
    """Start the cache folder's server unless one answers already (its status either way)."""
    if idle <= 0:
        raise UsageError("--idle-timeout must be more than 0 seconds")
    cache_dir = cache_root(environ)
    path = socket_path(environ)
    if len(path.encode()) > SOCKET_PATH_LIMIT:
        raise UsageError(
            f"the server's socket path {path} is longer than {SOCKET_PATH_LIMIT} bytes; "
            "set PLANNER_CACHE_DIR to a shorter folder"
        )
    running = ask(path, {"status": True})
    if running is not None and not running.get("stopping"):
        return Status(cache_dir, running)
    if running is not None:  # stopping (its planner code changed, say): a new one starts once it is gone
        _gone(path, int(running.get("pid", 0)), time.monotonic() + STOP_TIMEOUT)
    log_path = os.path.join(cache_dir, LOG)
    try:
        process = spawn(cache_dir, idle, environ)
    except OSError as exc:
        raise RuntimeFailure(f"cannot start the server: {exc}") from None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        answer = ask(path, {"status": True})
        if answer is not None:
            return Status(cache_dir, answer)
        code = process.poll()
        if code is not None:
            answer = ask(path, {"status": True})  # lost a race with another start: that one serves
            if answer is not None:
                return Status(cache_dir, answer)
            if code == HELD:
                raise RuntimeFailure(
                    f"another server (pid {holder(cache_dir)}) holds {cache_dir} but does not answer on "
                    f"{path}; end that process, then start again"
                )
            raise RuntimeFailure(f"the server exited with code {code} as it started; see {log_path}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeFailure(f"the server did not answer within {START_TIMEOUT:.0f} s; see {log_path}")


def stop(environ: Mapping[str, str]) -> Status:
    """Ask the server to stop; it does once its runs end (the answer it gave, or None when none ran)."""
    path = socket_path(environ)
    answer = ask(path, {"stop": True})
    if answer is None:
        return Status(cache_root(environ), None)
    _gone(path, int(answer.get("pid", 0)), time.monotonic() + STOP_TIMEOUT)
    return Status(cache_root(environ), answer)


def _gone(path: str, pid: int, deadline: float) -> None:
    """Wait until a stopping server's socket is gone and the process has ended (or the deadline passed)."""
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours (the server is our child when we started it): reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
