"""The client half: hand this run to the resident server of its cache folder, if one is running.

Imported by `planner` before anything else, so stdlib only, and a run without a server costs one stat (the
socket is not there). A server that is gone (its socket left behind), that declines (another user, interpreter,
planner code...), or standard streams that cannot be passed: the run goes on in this process, as if no server
ran. Once the server has forked the run, the run is the child's: this process forwards Ctrl-C and termination
to it and ends with its exit code (or the signal that ended it)."""

from __future__ import annotations

import os
import signal
import socket
import sys

from planner.resident import wire

TYPE_CHECKING = False  # typing, contextlib and collections.abc cost 8 ms to import: this module does without
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

FORWARDED = (int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGHUP), int(signal.SIGQUIT))
# In the cache folder: the server's socket, its output, and the lock that makes it the folder's one server
# (holding the holder's pid).
SOCKET, LOG, LOCK = "server.sock", "server.log", "server.lock"


def socket_path(environ: Mapping[str, str]) -> str:
    from planner.base.localcache import cache_root

    return os.path.join(cache_root(environ), SOCKET)


def holder(cache_dir: str) -> str:
    """The pid the lock file names (the server that holds the folder), or "unknown"."""
    try:
        with open(os.path.join(cache_dir, LOCK)) as lock:
            return lock.read().strip() or "unknown"
    except OSError:
        return "unknown"


MODES = ("", "off", "auto")
AUTOSTART_EVERY = 60.0  # seconds between attempts to start a server where none answers (PLANNER_SERVER=auto)
IDLE = 3 * 3600.0  # a server's default idle timeout


def handed_over(args: list[str]) -> int | None:
    """The exit code of the run the server made of `args`, or None when this process must run it.

    PLANNER_SERVER: unset or empty, a server is used where one runs; `off`, never; `auto`, one is also started
    (in the background, for the runs after this one) where none runs."""
    mode = os.environ.get("PLANNER_SERVER", "")
    if mode not in MODES:
        sys.stderr.write(f"planner: PLANNER_SERVER={mode!r}: expected off, auto or nothing\n")
        raise SystemExit(2)
    if mode == "off" or (args and args[0] == "server"):
        return None
    path = socket_path(os.environ)
    if not os.path.exists(path):
        if mode == "auto":
            _autostart(os.path.dirname(path))
        return None
    request = _request(args)
    if request is None:
        return None
    forwarder = _Forwarder(request["run"]["ignored"])  # from now: a signal before the run starts is kept
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        wire.send(sock, request, [0, 1, 2])
        answer, _ = wire.receive(sock)
    except (OSError, wire.WireError):
        answer = {"declined": "no answer"}  # gone (a socket left behind) or declined while starting
    if "pid" not in answer:
        _debug(f"the server declined: {answer.get('declined')}")
        sock.close()
        forwarder.release()  # the run goes on here: a signal kept is delivered to this process now
        return None
    return forwarder.follow(sock, int(answer["pid"]))


def server_command(cache_dir: str, idle: float) -> list[str]:
    """How a server of `cache_dir` is started (`-P`: no script folder first on its module path)."""
    return [sys.executable, "-P", "-m", "planner.resident.server", cache_dir, "--idle", str(idle)]


def spawn(cache_dir: str, idle: float, environ: Mapping[str, str]) -> Any:
    """Start a server in its own session, its output appended to CACHE/server.log (the Popen)."""
    import subprocess

    os.makedirs(cache_dir, exist_ok=True)
    with open(os.path.join(cache_dir, LOG), "ab") as log:
        return subprocess.Popen(
            server_command(cache_dir, idle),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            env=dict(environ),
            start_new_session=True,
        )


def _autostart(cache_dir: str) -> None:
    """Start a server for the next runs, at most once a minute (a server that cannot start is not started
    again at every run); nothing is waited for, and nothing said."""
    import time

    stamp = os.path.join(cache_dir, "server.autostart")
    try:
        if time.time() - os.stat(stamp).st_mtime < AUTOSTART_EVERY:
            return
    except OSError:
        pass
    if len(os.path.join(cache_dir, SOCKET).encode()) > SOCKET_PATH_LIMIT:
        return
    try:
        os.makedirs(cache_dir, exist_ok=True)
        with open(stamp, "w"):
            pass
        spawn(cache_dir, IDLE, os.environ)
    except OSError:
        pass


# A Unix socket's path must fit sockaddr_un (108 bytes with its NUL).
SOCKET_PATH_LIMIT = 107


def _request(args: list[str]) -> dict[str, Any] | None:
    from planner.resident.identity import of_this_process

    streams = []
    for fd, stream in enumerate((sys.stdin, sys.stdout, sys.stderr)):
        try:
            os.fstat(fd)
        except OSError:
            return None  # a closed standard stream cannot be passed: run here
        streams.append(_stream(stream))
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    return {
        "run": {
            "argv": args,
            "argv0": sys.argv[0] if sys.argv else "planner",
            "cwd": cwd,
            "environ": dict(os.environ),
            "umask": umask,
            # dispositions the interpreter kept from its parent (nohup, a background job): the run keeps them
            "ignored": [int(signum) for signum in FORWARDED if signal.getsignal(signum) == signal.SIG_IGN],
            "streams": streams,
        },
        "identity": of_this_process(),
    }


def _stream(stream: Any) -> dict[str, Any] | None:
    if stream is None:
        return None
    return {
        "encoding": getattr(stream, "encoding", None),
        "errors": getattr(stream, "errors", None),
        "line_buffering": bool(getattr(stream, "line_buffering", False)),
    }


class _Forwarder:
    """Forwards the signals this process does not ignore to the run; until the run's pid is known it keeps
    them (a Ctrl-C while the server forks is not lost, and not a traceback of the client's)."""

    def __init__(self, ignored: list[int]) -> None:
        self.pid: int | None = None
        self.kept: list[int] = []
        self.previous = {
            signum: signal.signal(signum, self.forward) for signum in FORWARDED if signum not in ignored
        }

    def forward(self, signum: int, frame: object) -> None:
        if self.pid is None:
            self.kept.append(signum)
            return
        try:  # noqa: SIM105 (contextlib costs 3 ms to import)
            os.kill(self.pid, signum)
        except OSError:
            pass

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def release(self) -> None:
        self.restore()
        for signum in self.kept:
            os.kill(os.getpid(), signum)

    def follow(self, sock: socket.socket, pid: int) -> int:
        """Forward signals to the run until the server reports how it ended."""
        self.pid = pid
        for signum in self.kept:
            self.forward(signum, None)
        try:
            answer, _ = wire.receive(sock)
        except (OSError, wire.WireError):
            sys.stderr.write("planner: the planner server stopped before the run it was given ended\n")
            return 1
        finally:
            sock.close()
            self.restore()
        if "signal" in answer:
            _end_by(int(answer["signal"]))
        return int(answer.get("exit", 1))


def _end_by(signum: int) -> None:
    """End as the run ended: killed by the same signal (a shell then says so and sets 128+N)."""
    sys.stdout.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _debug(message: str) -> None:
    if os.environ.get("PLANNER_SERVER_DEBUG"):
        sys.stderr.write(f"planner: server: {message}\n")
