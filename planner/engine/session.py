"""The build context through a BuildKit session, as the docker CLI sends it with BuildKit.

Protocol (moby 20.10 with its BuildKit v0.8; see docs/design-notes.md, "The builder"):
- `POST /session` with `Upgrade: h2c`, `Connection: Upgrade` and the `X-Docker-Expose-Session-*` headers (id,
  name, shared key, one `...-Grpc-Method` per method served) is answered `101`; from then on the daemon speaks
  HTTP/2 on that socket as the gRPC *client* and planner is the gRPC server (buildkit `session/manager.go`,
  `session/grpc.go`). The daemon checks the session's health (`/grpc.health.v1.Health/Check`) every few seconds
  and drops a session that fails it.
- `POST /build?version=2&remote=client-session&session=ID&dockerfile=NAME`: the Dockerfile frontend reads the
  Dockerfile from the local source `dockerfile` and the context from the local source `context` (first only
  `.dockerignore`, by `followpaths`), each one `/moby.filesync.v1.FileSync/DiffCopy` call with the gRPC metadata
  `dir-name` (plus `followpaths`, `include-patterns`, `exclude-patterns`).
- DiffCopy is fsutil's protocol (`send.go`/`receive.go`, `types/wire.proto`, `types/stat.proto`): the sender sends
  one PACKET_STAT per entry (ids counted from 0 in send order, directories before their children, siblings in
  byte order), then an empty PACKET_STAT; the receiver asks for file contents with PACKET_REQ(id), answered by
  PACKET_DATA(id, chunk)... and an empty PACKET_DATA(id); the receiver ends with PACKET_FIN, answered by FIN.

What is served for `context` is planner's walk (the entries the key was computed from), whatever exclude patterns
the daemon sends: `.dockerignore` was already applied by that walk. The Dockerfile travels in `dockerfile` only,
so an injected Dockerfile never reaches COPY. File contents are hashed again while sent (context_tar's
verification): a file changed after planning fails the call and the build (ContextChanged).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import queue
import secrets
import socket
import stat as statmod
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from planner.base.errors import RuntimeFailure, exception_text
from planner.engine.context_tar import _Verifying
from planner.engine.http import connect
from planner.engine.protobuf import bytes_field as _bytes_field
from planner.engine.protobuf import fields as _fields
from planner.engine.protobuf import int_field as _int_field
from planner.engine.protobuf import message_field as _message_field
from planner.engine.sent_metadata import fresh_mtime_ns, sent_mtime_ns
from planner.keys.walk import Entry

SERVICE_FILESYNC = "moby.filesync.v1.FileSync"
METHOD_DIFFCOPY = f"/{SERVICE_FILESYNC}/DiffCopy"
METHOD_TARSTREAM = f"/{SERVICE_FILESYNC}/TarStream"
METHOD_HEALTH = "/grpc.health.v1.Health/Check"
METHODS = (METHOD_DIFFCOPY, METHOD_TARSTREAM, METHOD_HEALTH)
CONTEXT_DIR = "context"
DOCKERFILE_DIR = "dockerfile"
SESSION_DOCKERFILE = "Dockerfile"

PACKET_STAT, PACKET_REQ, PACKET_DATA, PACKET_FIN, PACKET_ERR = 0, 1, 2, 3, 4
_CHUNK = 1 << 20  # one PACKET_DATA (the daemon's gRPC limit for a message is larger)

# Go's os.FileMode bits, which fsutil's Stat.mode carries
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20
GO_MODE_TYPE = (
    GO_MODE_DIR | GO_MODE_SYMLINK | GO_MODE_DEVICE | GO_MODE_NAMED_PIPE | GO_MODE_CHAR_DEVICE | 1 << 24
)


class SessionFailed(RuntimeFailure):
    """The daemon did not open a BuildKit session (or the session broke)."""


# --- protobuf: the few messages of fsutil and grpc.health, encoded by hand (wire format: protobuf.py) ---------


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class Stat:
    """fsutil.types.Stat: 1 path, 2 mode (Go FileMode), 3 uid, 4 gid, 5 size, 6 modTime (ns), 7 linkname,
    8 devmajor, 9 devminor (10 xattrs: never sent)."""

    path: bytes
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    mod_time: int = 0
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0

    def encode(self) -> bytes:
        return b"".join(
            (
                _bytes_field(1, self.path),
                _int_field(2, self.mode),
                _int_field(3, self.uid),
                _int_field(4, self.gid),
                _int_field(5, self.size),
                _int_field(6, self.mod_time),
                _bytes_field(7, self.linkname),
                _int_field(8, self.devmajor),
                _int_field(9, self.devminor),
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Stat:
        values: dict[int, int | bytes] = dict(_fields(data))

        def number(n: int) -> int:
            value = values.get(n, 0)
            return _int64(value) if isinstance(value, int) else 0

        def text(n: int) -> bytes:
            value = values.get(n, b"")
            return value if isinstance(value, bytes) else b""

        return cls(
            text(1), number(2), number(3), number(4), number(5), number(6), text(7), number(8), number(9)
        )

    @property
    def is_regular(self) -> bool:
        return not self.mode & GO_MODE_TYPE


@dataclass(frozen=True)
class Packet:
    """fsutil.types.Packet: 1 type, 2 stat, 3 ID, 4 data."""

    type: int
    stat: Stat | None = None
    id: int = 0
    data: bytes = b""

    def encode(self) -> bytes:
        return b"".join(
            (
                _int_field(1, self.type),
                _message_field(2, self.stat.encode()) if self.stat is not None else b"",
                _int_field(3, self.id),
                _bytes_field(4, self.data),
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        kind, stat, ident, payload = 0, None, 0, b""
        for number, value in _fields(data):
            if number == 1 and isinstance(value, int):
                kind = value
            elif number == 2 and isinstance(value, bytes):
                stat = Stat.decode(value)
            elif number == 3 and isinstance(value, int):
                ident = value
            elif number == 4 and isinstance(value, bytes):
                payload = value
        return cls(kind, stat, ident, payload)


def go_mode(entry: Entry) -> int:
    """Go's os.FileMode for an entry: permission bits, setuid/setgid/sticky as Go's own bits, the type."""
    mode = entry.mode & 0o777
    if entry.mode & statmod.S_ISUID:
        mode |= GO_MODE_SETUID
    if entry.mode & statmod.S_ISGID:
        mode |= GO_MODE_SETGID
    if entry.mode & statmod.S_ISVTX:
        mode |= GO_MODE_STICKY
    return (
        mode
        | {
            "f": 0,
            "d": GO_MODE_DIR,
            "l": GO_MODE_SYMLINK,
            "p": GO_MODE_NAMED_PIPE,
            "c": GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
            "b": GO_MODE_DEVICE,
        }[entry.kind]
    )


def entry_stat(entry: Entry, digest: str | None = None) -> Stat:
    """What the docker CLI sends for a path (uid and gid reset to 0, as its session does), but for a regular
    file's time: one that moves with its bytes (sent_metadata.sent_mtime_ns; `digest`: its content hash)."""
    major = minor = 0
    if entry.kind in "cb" and entry.target:
        first, _, second = entry.target.partition(":")
        major, minor = int(first), int(second)
    return Stat(
        path=os.fsencode(entry.path),
        mode=go_mode(entry),
        size=entry.size if entry.kind == "f" else 0,
        mod_time=sent_mtime_ns(entry, digest) if entry.kind == "f" else entry.mtime_ns,
        linkname=os.fsencode(entry.target) if entry.kind == "l" else b"",
        devmajor=major,
        devminor=minor,
    )


def fsutil_order(path: str) -> tuple[bytes, ...]:
    """fsutil's walk order (its receiver rejects any other): a folder before its children, siblings by the bytes
    of their names, depth first (`a`, `a/b`, `a.txt`)."""
    return tuple(os.fsencode(part) for part in path.split("/"))


# --- what a session serves ---------------------------------------------------------------------------------------

Reader = Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class SourceEntry:
    stat: Stat
    read: Reader | None = None  # regular files: the content, verified while read


@dataclass
class Source:
    """One local source (`dir-name`): entries in fsutil order."""

    entries: list[SourceEntry]

    def select(self, follow: Sequence[str], include: Sequence[str]) -> list[SourceEntry]:
        """The entries a request with `followpaths` / `include-patterns` asks for (all without them), with the
        folders above them. Exclude patterns are not applied: the walk already applied `.dockerignore`."""
        wanted = [p.strip("/") for p in [*follow, *include] if p.strip("/")]
        if not wanted:
            return list(self.entries)

        def chosen(path: str) -> bool:
            for pattern in wanted:
                if path == pattern or path.startswith(pattern + "/") or pattern.startswith(path + "/"):
                    return True
                if fnmatch.fnmatchcase(path, pattern):
                    return True
            return False

        picked = {path for path in (os.fsdecode(e.stat.path) for e in self.entries) if chosen(path)}
        # every folder above a picked entry, as fsutil's own sender emits them: a wildcard (`*/x.txt`) picks
        # `c/x.txt` without `c`, and BuildKit's receiver then fails with "changes out of order"
        above = {"/".join(path.split("/")[:n]) for path in picked for n in range(1, path.count("/") + 1)}
        return [e for e in self.entries if os.fsdecode(e.stat.path) in picked | above]


def _file_reader(root: str, entry: Entry, expected: str | None) -> Reader:
    def read() -> Iterator[bytes]:
        from planner.base.names import printable
        from planner.engine.context_tar import ContextChanged

        reader = _Verifying(os.path.join(root, entry.path), expected, entry.path)
        try:
            if os.fstat(reader.handle.fileno()).st_size != entry.size:
                raise ContextChanged(f"{printable(entry.path)} changed after planning; run again")
            while chunk := reader.read(_CHUNK):
                yield chunk
            reader.verify()
        finally:
            reader.close()

    return read


def context_source(root: str, entries: Iterable[Entry], expected: Mapping[str, str]) -> Source:
    ordered = sorted(entries, key=lambda e: fsutil_order(e.path))
    return Source(
        [
            SourceEntry(
                entry_stat(e, expected.get(e.path)),
                _file_reader(root, e, expected.get(e.path)) if e.kind == "f" else None,
            )
            for e in ordered
        ]
    )


def dockerfile_source(name: str, text: bytes) -> Source:
    """A folder holding only the Dockerfile, under `name`, with a time no earlier send used: the daemon keeps
    the last `dockerfile` transfer per shared key and would build from a same-size older text it holds
    (issue 27); with a fresh time it must ask for the bytes, and builders.py fails a build that did not."""
    stat = Stat(path=os.fsencode(name), mode=0o644, size=len(text), mod_time=fresh_mtime_ns())
    return Source([SourceEntry(stat, lambda: iter([text]))])


# --- gRPC over HTTP/2, server side -------------------------------------------------------------------------------


def _grpc_frame(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


_END = object()


@dataclass
class _Call:
    stream_id: int
    path: str
    metadata: dict[str, list[str]]
    inbound: queue.Queue[object] = field(default_factory=queue.Queue)
    buffer: bytearray = field(default_factory=bytearray)
    reset: bool = False


class _CallFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Transfer:
    """One DiffCopy the daemon made: which source, how many files it asked for, whether it ended with FIN."""

    dir_name: str
    requested: int = 0
    finished: bool = False


def files_read(transfers: Iterable[Transfer], dir_name: str) -> int:
    """How many files the daemon asked for from the source `dir_name` over a session's transfers."""
    return sum(t.requested for t in transfers if t.dir_name == dir_name)


class BuildSession:
    """A BuildKit session on the daemon's unix socket or plain TCP (`host`, as DOCKER_HOST writes it), serving
    `sources` by name (`context`, `dockerfile`): the docker CLI opens it on the API connection either way."""

    def __init__(self, host: str, sources: Mapping[str, Source], shared_key: str, api_version: str) -> None:
        self.id = secrets.token_hex(16)
        self.host = host
        self.sources = dict(sources)
        self.shared_key = shared_key
        self.api_version = api_version
        self.errors: list[str] = []
        self.transfers: list[Transfer] = []
        self.sock: socket.socket | None = None
        self.lock = threading.Condition()
        self.outbox: queue.Queue[bytes | None] = queue.Queue()
        self.calls: dict[int, _Call] = {}
        self.closed = False
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding=None)
        )

    # connection --------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        try:
            sock = connect(self.host, timeout)
        except OSError as exc:
            raise SessionFailed(f"POST /session failed: {exception_text(exc)}") from None
        try:
            lines = [
                f"POST /v{self.api_version}/session HTTP/1.1",
                "Host: docker",
                "Upgrade: h2c",
                "Connection: Upgrade",
                "Content-Length: 0",
                f"X-Docker-Expose-Session-Uuid: {self.id}",
                "X-Docker-Expose-Session-Name: planner",
                f"X-Docker-Expose-Session-Sharedkey: {self.shared_key}",
                *(f"X-Docker-Expose-Session-Grpc-Method: {m}" for m in METHODS),
            ]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            head, _, rest = answer.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if " 101 " not in status + " ":
                body = rest.decode(errors="replace").strip()
                raise SessionFailed(f"POST /session answered {status!r} {body[:200]}".rstrip())
        except OSError as exc:
            sock.close()
            raise SessionFailed(f"POST /session failed: {exception_text(exc)}") from None
        except SessionFailed:
            sock.close()
            raise
        sock.settimeout(None)
        self.sock = sock
        with self.lock:
            self.conn.initiate_connection()
            self._flush()
        threading.Thread(target=self._write_loop, name="session-writer", daemon=True).start()
        threading.Thread(target=self._read_loop, args=(rest,), name="session-reader", daemon=True).start()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.lock.notify_all()
            for call in self.calls.values():
                call.inbound.put(_END)
        self.outbox.put(None)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()

    def __enter__(self) -> BuildSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flush(self) -> None:
        """Queue what h2 wants to send (caller holds the lock: keeps frames in order)."""
        data = self.conn.data_to_send()
        if data:
            self.outbox.put(data)

    def _write_loop(self) -> None:
        assert self.sock is not None
        while (data := self.outbox.get()) is not None:
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                return

    def _read_loop(self, initial: bytes) -> None:
        assert self.sock is not None
        data = initial
        try:
            while True:
                if data:
                    with self.lock:
                        events = self.conn.receive_data(data)
                        for event in events:
                            self._on_event(event)
                        self._flush()
                        self.lock.notify_all()
                data = self.sock.recv(1 << 16)
                if not data:
                    break
        except (OSError, h2.exceptions.ProtocolError) as exc:
            if not self.closed:
                self.errors.append(f"the session connection failed: {exception_text(exc)}")
        finally:
            self.close()

    def _on_event(self, event: h2.events.Event) -> None:
        ev = h2.events
        if isinstance(event, ev.RequestReceived):
            headers = [
                (bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in event.headers or []
            ]
            path = next((v for k, v in headers if k == ":path"), "")
            metadata: dict[str, list[str]] = {}
            for name, value in headers:
                if not name.startswith(":"):
                    metadata.setdefault(name.lower(), []).append(value)  # one header field per value
            call = _Call(event.stream_id, path, _decode_metadata(metadata))
            self.calls[event.stream_id] = call
            threading.Thread(
                target=self._serve, args=(call,), name=f"session-call-{event.stream_id}", daemon=True
            ).start()
        elif isinstance(event, ev.DataReceived):
            with contextlib.suppress(Exception):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            found = self.calls.get(event.stream_id)
            if found is not None:
                found.buffer += event.data
                while len(found.buffer) >= 5:
                    length = int.from_bytes(found.buffer[1:5], "big")
                    if len(found.buffer) < 5 + length:
                        break
                    found.inbound.put(bytes(found.buffer[5 : 5 + length]))
                    del found.buffer[: 5 + length]
        elif isinstance(event, ev.StreamEnded):
            found = self.calls.get(event.stream_id)
            if found is not None:
                found.inbound.put(_END)
        elif isinstance(event, ev.StreamReset):
            found = self.calls.get(event.stream_id)
            if found is not None:
                found.reset = True
                found.inbound.put(_END)
        elif isinstance(event, ev.ConnectionTerminated):
            self.closed = True
            for call in self.calls.values():
                call.inbound.put(_END)

    # one call -------------------------------------------------------------------------------------------------

    def _send_headers(self, call: _Call, headers: list[tuple[str, str]], end: bool = False) -> None:
        with self.lock:
            if self.closed or call.reset:
                raise _CallFailed(1, "the call was cancelled")
            self.conn.send_headers(call.stream_id, headers, end_stream=end)
            self._flush()

    def _send(self, call: _Call, payload: bytes) -> None:
        """gRPC messages (already framed), respecting HTTP/2 flow control."""
        view = memoryview(payload)
        while view:
            with self.lock:
                while True:
                    if self.closed or call.reset:
                        raise _CallFailed(1, "the call was cancelled")
                    window = self.conn.local_flow_control_window(call.stream_id)
                    if window > 0:
                        break
                    self.lock.wait(1)
                size = min(window, self.conn.max_outbound_frame_size, len(view))
                self.conn.send_data(call.stream_id, view[:size].tobytes())
                self._flush()
            view = view[size:]

    def _serve(self, call: _Call) -> None:
        try:
            if call.path not in (METHOD_DIFFCOPY, METHOD_HEALTH):
                self._send_headers(
                    call,
                    [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12"),
                     ("grpc-message", _grpc_message(f"{call.path} is not served by planner"))],
                    end=True,
                )  # fmt: skip
                return
            self._send_headers(call, [(":status", "200"), ("content-type", "application/grpc")])
            if call.path == METHOD_HEALTH:
                self._send(call, _grpc_frame(_int_field(1, 1)))  # HealthCheckResponse{status: SERVING}
            else:
                self._diffcopy(call)
            self._send_headers(call, [("grpc-status", "0")], end=True)
        except _CallFailed as failed:
            with contextlib.suppress(_CallFailed, Exception):
                self._send_headers(
                    call,
                    [("grpc-status", str(failed.code)), ("grpc-message", _grpc_message(failed.message))],
                    end=True,
                )
        except Exception as exc:  # a bug must fail the build, not hang it
            self.errors.append(exception_text(exc))
            with contextlib.suppress(Exception):
                self._send_headers(
                    call,
                    [("grpc-status", "13"), ("grpc-message", _grpc_message(exception_text(exc)))],
                    end=True,
                )
        finally:
            with self.lock:
                self.calls.pop(call.stream_id, None)

    def _diffcopy(self, call: _Call) -> None:
        dir_name = (call.metadata.get("dir-name") or [""])[0]
        source = self.sources.get(dir_name)
        if source is None:
            raise _CallFailed(5, f'no access allowed to dir "{dir_name}"')
        transfer = Transfer(dir_name)
        self.transfers.append(transfer)
        entries = source.select(
            call.metadata.get("followpaths", []), call.metadata.get("include-patterns", [])
        )
        files: dict[int, SourceEntry] = {}
        batch = bytearray()
        for index, item in enumerate(entries):
            if item.stat.is_regular:
                files[index] = item
            batch += _grpc_frame(Packet(PACKET_STAT, stat=item.stat).encode())
            if len(batch) > 1 << 16:
                self._send(call, bytes(batch))
                batch.clear()
        batch += _grpc_frame(Packet(PACKET_STAT).encode())  # the end of the listing
        self._send(call, bytes(batch))
        while True:
            message = call.inbound.get()
            if message is _END:
                if call.reset or self.closed:
                    raise _CallFailed(1, "the call was cancelled")
                return  # the receiver closed its side without FIN: nothing more to send
            assert isinstance(message, bytes)
            packet = Packet.decode(message)
            if packet.type == PACKET_REQ:
                wanted = files.pop(packet.id) if packet.id in files else None
                if wanted is None or wanted.read is None:
                    raise _CallFailed(3, f"invalid file id {packet.id}")
                transfer.requested += 1
                try:
                    for chunk in wanted.read():
                        self._send(call, _grpc_frame(Packet(PACKET_DATA, id=packet.id, data=chunk).encode()))
                except _CallFailed:
                    raise
                except Exception as exc:
                    text = getattr(exc, "message", None) or exception_text(exc)
                    self.errors.append(text)
                    with contextlib.suppress(_CallFailed):
                        self._send(call, _grpc_frame(Packet(PACKET_ERR, data=text.encode()).encode()))
                    raise _CallFailed(2, text) from None
                self._send(call, _grpc_frame(Packet(PACKET_DATA, id=packet.id).encode()))
            elif packet.type == PACKET_FIN:
                self._send(call, _grpc_frame(Packet(PACKET_FIN).encode()))
                transfer.finished = True
                return
            elif packet.type == PACKET_ERR:
                text = packet.data.decode(errors="replace")
                raise _CallFailed(2, f"error from receiver: {text}")


def _decode_metadata(metadata: dict[str, list[str]]) -> dict[str, list[str]]:
    """buildkit percent-encodes non-ASCII values and says so with `<key>-encoded: 1` (newer versions)."""
    out: dict[str, list[str]] = {}
    for key, values in metadata.items():
        if (metadata.get(key + "-encoded") or ["0"])[0] in ("1", "true"):
            out[key] = [urllib.parse.unquote_plus(v) for v in values]
        else:
            out[key] = values
    return out


def _grpc_message(text: str) -> str:
    return urllib.parse.quote(text, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")


def shared_key(context: str) -> str:
    """Like the docker CLI's: a hash of the context folder, so repeated builds of one context transfer only the
    files that changed (the daemon keeps the last transfer per shared key)."""
    return hashlib.sha256(
        ("planner:" + os.path.abspath(context)).encode(errors="surrogateescape")
    ).hexdigest()
