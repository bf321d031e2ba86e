"""Messages between the client and the server: one JSON object each, after its length (4 bytes, big-endian).

Stdlib only: the client imports it before anything else."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

_LENGTH = struct.Struct(">I")
LIMIT = 16 * 2**20  # a request holds an environment and a command line: far below this


class WireError(Exception):
    """The other side closed the socket, or sent something that is not a message."""


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogateescape")
    framed = _LENGTH.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [framed], fds)
        framed = framed[sent:]
    sock.sendall(framed)


def receive(sock: socket.socket, with_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """The next message and the file descriptors sent with it (at most `with_fds`)."""
    fds: list[int] = []
    if with_fds:
        head, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, with_fds)
        if not head:
            _close(fds)
            raise WireError("closed")
        try:
            head += _exactly(sock, _LENGTH.size - len(head))
        except WireError:
            _close(fds)
            raise
    else:
        head = _exactly(sock, _LENGTH.size)
    (length,) = _LENGTH.unpack(head)
    if length > LIMIT:
        _close(fds)
        raise WireError(f"a message of {length} bytes")
    try:
        message = json.loads(_exactly(sock, length).decode("utf-8", "surrogateescape"))
    except (ValueError, WireError) as exc:
        _close(fds)
        raise WireError(f"not a message ({exc})") from None
    if not isinstance(message, dict):
        _close(fds)
        raise WireError("not a message")
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
    import os

    for fd in fds:
        os.close(fd)
