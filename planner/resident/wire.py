"""Messages between the client and the server: one dict of plain values each, marshalled, after its length
(4 bytes, big-endian).

Stdlib only: the client imports it before anything else (json would cost 3 ms more to import). Marshal is
no format for strangers: the server reads a message only from a peer of its own user (SO_PEERCRED), who could
as well run anything as that user."""

from __future__ import annotations

import marshal
import os
import socket

TYPE_CHECKING = False  # typing costs 4 ms to import
if TYPE_CHECKING:
    from typing import Any

_LENGTH = 4  # bytes, big-endian
# Each message starts with this: a client and a server of different planner versions may meet (an upgrade while
# a server runs); one that reads another protocol's message hangs up (the client then runs in-process, the
# server stops).
MAGIC = b"planner-resident-1\n"
LIMIT = 16 * 2**20  # a request holds an environment and a command line: far below this


class WireError(Exception):
    """The other side closed the socket, or sent something that is not a message."""


class Foreign(WireError):
    """A message of another protocol version."""


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    try:
        data = marshal.dumps(message)
    except ValueError as exc:  # a value marshal cannot write (an enum, say): a bug, not a reason to crash
        raise WireError(f"cannot send {exc}") from None
    framed = MAGIC + len(data).to_bytes(_LENGTH, "big") + data
    if fds:
        sent = socket.send_fds(sock, [framed], fds)
        framed = framed[sent:]
    sock.sendall(framed)


def receive(sock: socket.socket, with_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """The next message and the file descriptors sent with it (at most `with_fds`)."""
    fds: list[int] = []
    size = len(MAGIC) + _LENGTH
    try:
        if with_fds:
            head, fds, _, _ = socket.recv_fds(sock, size, with_fds)
            if not head:
                raise WireError("closed")
            head += _exactly(sock, size - len(head))
        else:
            head = _exactly(sock, size)
        if not head.startswith(MAGIC):
            raise Foreign(f"not a planner-resident-1 message ({head[: len(MAGIC)]!r})")
        length = int.from_bytes(head[len(MAGIC) :], "big")
        if length > LIMIT:
            raise WireError(f"a message of {length} bytes")
        message = marshal.loads(_exactly(sock, length))
        if not isinstance(message, dict):
            raise WireError("not a message")
    except (ValueError, EOFError, TypeError) as exc:
        _close(fds)
        raise WireError(f"not a message ({exc})") from None
    except BaseException:
        _close(fds)
        raise
    return message, fds


def _exactly(sock: socket.socket, count: int) -> bytes:
    chunks = []
    while count:
        chunk = sock.recv(count)
        if not chunk:
            raise WireError("closed")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
