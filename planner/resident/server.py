"""The server half: one process per cache folder that has imported planner and holds walk snapshots, forking a
child per run (child.py) and reporting each child's end to its client.

Started by `planner server start` (commands/server.py) as `python -P -m planner.resident.server CACHE`: its own
session, its output in CACHE/server.log, one per cache folder (CACHE/server.lock), gone after `--idle` seconds
with no run, on `planner server stop`, or when a request finds planner's code changed since it started.

The loop is single-threaded (a fork copies only the forking thread: a lock another thread held would stay held in
every child). It waits on the listening socket, each run's pidfd (the child ended), the pipe its child reports
on (the exit code, before the child lets go of the client's streams) and the client's socket (the client is
gone: the run is interrupted, as Ctrl-C would). Between runs it reads the snapshots the last children used or
kept (keys/snapshot.py `Resident`), so the next child need not.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from planner.base import deferred
from planner.resident import child, identity, wire
from planner.resident.client import FORWARDED, IDLE, LOCK, SOCKET, holder

# What a plain `plan` or `apply` imports (main.py's fast path); typer and the other commands load in the child,
# under the client's environment, as they would in a one-shot run.
PRELOADED = (
    "planner.plan.memo",
    "planner.cli.commandline",
    "planner.cli.render",
    "planner.plan.pipeline",
    "planner.build.stack",
    "planner.compose.loader",
    "planner.keys.compute",
    "planner.keys.patch",
    "planner.keys.narrow",
    "planner.keys.snapshot",
    "planner.plan.decide",
    "planner.plan.observe",
    "planner.apply.run",
    "planner.engine.connect",
    "planner.engine.daemon",
    "docker",
)
HELD_LIMIT = 64  # snapshots and memos held (least recently used dropped): a few projects' roots and commands
REQUEST_TIMEOUT = 10.0
CHECK_EVERY = 5.0  # seconds between checks that the socket path is still this server's
_CREDENTIALS = struct.Struct("3i")


@dataclass
class Run:
    pid: int
    pidfd: int
    report: int  # the read end of the child's report pipe
    conn: socket.socket
    command: str = ""
    forked: float = 0.0  # time.monotonic() at the fork
    interrupt: int = signal.SIGINT  # how the run is ended when its client is gone
    replied: bool = False
    pending: bytes = b""  # a report line not yet whole
    used: list[tuple[str, Any]] = field(default_factory=list)  # ("snapshot", key) or ("memo", path)


class Server:
    def __init__(self, cache_dir: str, idle: float) -> None:
        self.cache_dir = cache_dir
        self.idle = idle
        self.path = os.path.join(cache_dir, SOCKET)
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.inode = 0
        self.runs: dict[int, Run] = {}
        self.stopping: str | None = None
        self.started = time.time()
        self.last_active = time.monotonic()
        self.served = 0
        self.identity = identity.of_this_process()
        self.stamp = identity.code_stamp()
        self.held: OrderedDict[tuple[str, Any], Any] = OrderedDict()  # ("snapshot", key) / ("memo", path)
        self.to_read: list[tuple[str, Any]] = []
        self.terminated = False
        self.wake_read, self.wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        self.wake_write.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ, ("wake", None))

    def on_signal(self, signum: int, frame: object) -> None:
        """SIGTERM: stop as `planner server stop` would (the loop wakes by the signal's wakeup byte)."""
        self.terminated = True

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self.wake_read.recv(256):
                pass
        if self.terminated:
            self.stop("terminated")

    # -- start and stop --

    def listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a dead server's: this one holds the lock
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        self.inode = os.stat(self.path).st_ino
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))

    def serve(self) -> None:
        log(f"serving {self.path} (pid {os.getpid()})")
        while not (self.stopping and not self.runs):
            timeout = None if self.runs else max(0.0, self.last_active + self.idle - time.monotonic())
            timeout = CHECK_EVERY if timeout is None else min(timeout, CHECK_EVERY)
            if self.to_read and not self.runs:
                timeout = 0.0
            events = self.selector.select(timeout)
            for key, _ in events:
                what, run = key.data
                if run is None:
                    self._woken() if what == "wake" else self._accept()
                elif run.pid not in self.runs:
                    continue  # its run ended earlier in this batch
                elif what == "report":
                    self._reported(run)
                elif what == "ended":
                    self._ended(run)
                else:
                    self._client_gone(run)
            if not self._reachable():
                self.stop("its socket was removed or replaced")
            if not events:
                if self.to_read and not self.runs:
                    self._read_held()
                elif not self.runs and time.monotonic() >= self.last_active + self.idle:
                    self.stopping = f"idle for {self.idle:.0f} s"
        log(f"stopped: {self.stopping}")
        self.close()

    def _reachable(self) -> bool:
        """Whether the socket path is still this server's (no client could reach it otherwise)."""
        if self.listener is None:
            return True
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def close(self) -> None:
        if self.listener is not None:
            reachable = self._reachable()
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            if reachable:  # not another's
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)

    def stop(self, why: str) -> None:
        if self.stopping is None:
            self.stopping = why
        if self.listener is not None:
            self.close()  # no new client finds it; runs going on end as they would

    # -- requests --

    def _accept(self) -> None:
        if self.listener is None:  # stopped earlier in this batch of events
            return
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(True)
        conn.settimeout(REQUEST_TIMEOUT)
        uid = _peer_uid(conn)
        if uid != os.getuid():  # before reading: only the server's own user is heard
            self._decline(conn, f"the client runs as user {uid}, the server as {os.getuid()}")
            return
        try:
            request, fds = wire.receive(conn, with_fds=3)
        except (OSError, wire.WireError) as exc:
            log(f"request unreadable: {exc}")
            conn.close()
            if isinstance(exc, wire.Foreign):
                self.stop("a client of another planner version")
            return
        try:
            self._answer(conn, request, fds)
        except (OSError, wire.WireError) as exc:
            log(f"client lost: {exc}")
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)

    def _answer(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        self.last_active = time.monotonic()
        if request.get("status"):
            if self.stopping is None and identity.code_stamp() != self.stamp:
                self.stop("planner's code changed")  # as a run would find: `server start` then starts anew
            wire.send(conn, self.status())
            conn.close()
            return
        if request.get("stop"):
            wire.send(conn, {"stopping": True, "pid": os.getpid()})
            conn.close()
            self.stop("asked to")
            return
        if self.stopping:
            self._decline(conn, f"the server is stopping ({self.stopping})")
            return
        mismatch = identity.mismatch(request.get("identity") or {}, self.identity)
        if mismatch:
            self._decline(conn, mismatch)
            return
        if identity.code_stamp() != self.stamp:
            self._decline(conn, "planner's code or installed packages changed since the server started")
            self.stop("planner's code changed")
            return
        run = request.get("run")
        if not isinstance(run, dict) or len(fds) != 3:
            self._decline(conn, "not a run")
            return
        self._fork(conn, run, fds)

    def _decline(self, conn: socket.socket, why: str) -> None:
        log(f"declined: {why}")
        with contextlib.suppress(OSError):
            wire.send(conn, {"declined": why})
        conn.close()

    def _fork(self, conn: socket.socket, run: dict[str, Any], fds: list[int]) -> None:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        forked = time.monotonic()
        # a signal the client forwards before the child has the client's dispositions waits (child.py)
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        pid = os.fork()
        if pid == 0:  # the child: never returns to the server's loop
            try:
                os.close(read_end)
                self._release_for_child(conn)
                _child_main(run, fds, write_end)
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        os.close(write_end)
        conn.settimeout(None)
        argv = run.get("argv") or []
        started = Run(pid, os.pidfd_open(pid), read_end, conn, str(argv[0]) if argv else "", forked)
        if signal.SIGINT in run.get("ignored", ()):  # as a killed one-shot process: it would be gone
            started.interrupt = signal.SIGKILL
        self.runs[pid] = started
        self.served += 1
        self.selector.register(started.pidfd, selectors.EVENT_READ, ("ended", started))
        self.selector.register(started.report, selectors.EVENT_READ, ("report", started))
        try:
            wire.send(conn, {"pid": pid})
        except OSError:  # the client is gone already: its run is interrupted, as a killed client's
            log(f"client of run {pid} gone before it started: interrupting it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
            return
        self.selector.register(conn, selectors.EVENT_READ, ("client", started))

    def _release_for_child(self, conn: socket.socket) -> None:
        """Close in the child what belongs to the server: the listening socket, other runs' descriptors."""
        if self.listener is not None:
            self.listener.close()
        for other in self.runs.values():
            other.conn.close()
            os.close(other.pidfd)
            if other.report != -1:
                os.close(other.report)
        conn.close()
        self.selector.close()
        signal.set_wakeup_fd(-1)
        self.wake_read.close()
        self.wake_write.close()

    # -- runs ending --

    def _reported(self, run: Run, until_end: bool = False) -> None:
        """Read what the child reports, one JSON line each: its exit code (answered at once), then the snapshots
        it used. At the end of the pipe (the child is gone), stop watching it."""
        while run.report != -1:
            data = os.read(run.report, 65536)
            if not data:
                self.selector.unregister(run.report)
                os.close(run.report)
                run.report = -1
                break
            run.pending += data
            *lines, run.pending = run.pending.split(b"\n")
            for line in lines:
                self._report_line(run, line)
            if not until_end:
                break

    def _report_line(self, run: Run, line: bytes) -> None:
        try:
            report = json.loads(line)
        except ValueError:
            return
        if "exit" in report and not run.replied:
            self._reply(run, {"exit": int(report["exit"])})
        if "used" in report:
            run.used = [("snapshot", tuple(key)) for key in report["used"]]
            run.used += [("memo", path) for path in report.get("memos", [])]

    def _ended(self, run: Run) -> None:
        _, status = os.waitpid(run.pid, 0)
        self._reported(run, until_end=True)
        if not run.replied:
            if os.WIFSIGNALED(status):
                self._reply(run, {"signal": os.WTERMSIG(status)})
            else:
                self._reply(run, {"exit": os.waitstatus_to_exitcode(status)})
        self.selector.unregister(run.pidfd)
        os.close(run.pidfd)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(run.conn)
        run.conn.close()
        del self.runs[run.pid]
        self.to_read.extend(key for key in run.used if key not in self.to_read)
        self.last_active = time.monotonic()

    def _reply(self, run: Run, answer: dict[str, Any]) -> None:
        run.replied = True
        how = f"exit {answer['exit']}" if "exit" in answer else f"signal {answer.get('signal')}"
        log(
            f"run {run.pid} ({run.command or 'no command'}): {how} after {time.monotonic() - run.forked:.3f} s"
        )
        with contextlib.suppress(OSError, wire.WireError):
            wire.send(run.conn, answer)

    def _client_gone(self, run: Run) -> None:
        """The client's socket is readable: it never sends after its request, so it is gone (killed). The run
        is interrupted as Ctrl-C would interrupt it (killed, when its client ignored Ctrl-C)."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(run.conn)
        if not run.replied:
            log(f"client of run {run.pid} gone: interrupting it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, run.interrupt)

    # -- snapshots and memos --

    def _read_held(self) -> None:
        """Read again what the last runs used or kept: their walk snapshots and memos."""
        from planner.keys import snapshot
        from planner.plan import memo

        wanted, self.to_read = self.to_read, []
        store = _quiet_store(self.cache_dir) if any(k == "snapshot" for k, _ in wanted) else None
        try:
            for kind, key in wanted:
                found: Any
                if kind == "snapshot":
                    found = snapshot.read_for_holding(store, key) if store is not None else None
                else:
                    found = memo.read_for_holding(key)
                self.held.pop((kind, key), None)
                if found is not None:
                    self.held[(kind, key)] = found
                while len(self.held) > HELD_LIMIT:
                    self.held.popitem(last=False)
        finally:
            if store is not None:
                store.close()
        snapshot.resident.held = {key: v for (kind, key), v in self.held.items() if kind == "snapshot"}
        memo.resident.held = {key: v for (kind, key), v in self.held.items() if kind == "memo"}
        gc.collect()
        gc.freeze()  # the children need not scan (and copy) what the server holds

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "socket": self.path,
            "started": self.started,
            "runs": self.served,
            "running": len(self.runs),
            "snapshots": sum(1 for kind, _ in self.held if kind == "snapshot"),
            "memos": sum(1 for kind, _ in self.held if kind == "memo"),
            "idle": self.idle,
            "stopping": self.stopping,
        }


def _child_main(run: dict[str, Any], fds: list[int], report: int) -> None:
    code = 1
    try:
        log = child.become(run, fds)
        deferred.hold()
        code = child.run_command(list(run["argv"]))
        os.write(report, json.dumps({"exit": code}).encode() + b"\n")
        child.let_go(log)
        deferred.run_held()
        sys.stdout.flush()
        sys.stderr.flush()
        from planner.keys import snapshot
        from planner.plan import memo

        used = {"used": snapshot.resident.used, "memos": memo.resident.used}
        os.write(report, json.dumps(used).encode() + b"\n")
        os.close(report)
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(code)


def _quiet_store(cache_dir: str) -> Any:
    """The cache, opened without Store.open's warnings: a warning given once per process would otherwise be
    given by the server, and by none of its children."""
    from pathlib import Path

    import diskcache

    from planner.keys.store import SIZE_LIMIT, Store

    try:
        return Store(Path(cache_dir), diskcache.Cache(cache_dir, size_limit=SIZE_LIMIT))
    except Exception as exc:
        log(f"cache unreadable, no snapshot held: {exc}")
        return None


def _peer_uid(conn: socket.socket) -> int:
    _, uid, _ = _CREDENTIALS.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
    return int(uid)


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} planner server: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m planner.resident.server")
    parser.add_argument("cache_dir")
    parser.add_argument("--idle", type=float, default=IDLE)
    args = parser.parse_args(argv)
    os.makedirs(args.cache_dir, exist_ok=True)
    lock = os.open(os.path.join(args.cache_dir, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another server holds this cache folder (pid {holder(args.cache_dir)})")
        raise SystemExit(3) from None
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())
    for name in PRELOADED:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    server = Server(args.cache_dir, args.idle)
    signal.set_wakeup_fd(server.wake_write.fileno())
    signal.signal(signal.SIGTERM, server.on_signal)
    server.listen()
    gc.collect()
    gc.freeze()
    try:
        server.serve()
    finally:
        server.close()


if __name__ == "__main__":
    main()
