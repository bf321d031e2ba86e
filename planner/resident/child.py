"""The forked child: become the client's process, run its command line as `planner` would, report the exit code.

Everything a one-shot process takes from its start is taken from the request: standard streams (the client's
own file descriptors, wrapped with its encodings and buffering), directory, environment, umask, argv. Signal
dispositions are an interpreter's defaults (Ctrl-C raises KeyboardInterrupt), but for signals the client's
interpreter found ignored as it started (nohup, a background job): those stay ignored. The run ends as the
interpreter would end it: non-daemon threads joined, streams flushed (a closed pipe: exit code 120), an
uncaught exception printed with exit code 1."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from planner.resident.client import FORWARDED

# The forwarded signals are blocked by the server across the fork, until the run's dispositions are set
# (run_command): a Ctrl-C the client forwards that early is delivered then, not to the server's dispositions.
_DEFAULTS = (*(signum for signum in FORWARDED if signum != signal.SIGINT), signal.SIGCHLD, signal.SIGUSR1)


def become(run: dict[str, Any], fds: list[int]) -> int:
    """Take the client's place (called first in the child); the server's log, kept for what the run writes
    after its answer (let_go)."""
    log = os.dup(2)
    ignored = set(run.get("ignored", ()))
    signal.signal(signal.SIGINT, signal.SIG_IGN if signal.SIGINT in ignored else signal.default_int_handler)
    for signum in _DEFAULTS:
        signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    streams = run["streams"]
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        stream = _wrapped(fd, "r" if fd == 0 else "w", streams[fd])
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    os.umask(int(run["umask"]))
    os.chdir(run["cwd"])
    os.environ.clear()
    os.environ.update(run["environ"])
    time.tzset()  # local time as the client's TZ says
    sys.argv = [str(run["argv0"]), *run["argv"]]
    return log


def _wrapped(fd: int, mode: str, like: dict[str, Any] | None) -> Any:
    like = like or {}
    raw = io.FileIO(fd, mode, closefd=False)
    buffered: io.BufferedIOBase = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered,
        encoding=like.get("encoding") or "utf-8",
        errors=like.get("errors") or "strict",
        line_buffering=bool(like.get("line_buffering")),
    )


def run_command(argv: list[str]) -> int:
    """Run `planner argv` in this process; its exit code."""
    from planner.cli.main import run

    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        run(argv)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120
    return code


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def let_go(log: int) -> None:
    """Close the client's streams (a pipe reader waits for every writer to close): what the run writes after
    its answer goes to the server's log."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
