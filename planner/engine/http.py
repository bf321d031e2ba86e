"""A minimal Engine API client for the read-only calls of every plan (list images, inspect), over the unix
socket or plain TCP with nothing but a socket: a no-op run must not pay for importing docker-py and requests
(~0.1 s), nor even http.client (~40 ms, the memo's replay uses this too). TLS daemons (DOCKER_TLS_VERIFY /
https) go through docker-py instead.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from planner.base import inputs
from planner.engine.observation import Reach

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineHTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def resolve_host(url: str | None, environ: Mapping[str, str] | None = None) -> str:
    env = environ if environ is not None else os.environ
    return url or env.get("DOCKER_HOST") or DEFAULT_SOCKET


def supported(url: str | None) -> bool:
    """Whether this light client can talk to the daemon (else use docker-py)."""
    return reach(url) != "other"


def reach(url: str | None, environ: Mapping[str, str] | None = None) -> Reach:
    """How planner reaches a daemon, which sets how the Engine API builder can hand BuildKit a context:
    - "unix": a local socket: a BuildKit session on it, or a context tar the daemon fetches from this host's
      loopback (a daemon on a local socket shares it);
    - "tcp": plain TCP: a BuildKit session over the API connection; the daemon may be on another host, so it
      cannot fetch anything from this one's loopback;
    - "other": TLS (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, as docker-py reads them) or ssh://: docker-py's
      transports, on which planner opens no session."""
    env = environ if environ is not None else os.environ
    host = resolve_host(url, env)
    if host.startswith("unix://"):
        return "unix"
    if host.startswith(("tcp://", "http://")) and not (
        env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH")
    ):
        return "tcp"
    return "other"


def connect(host: str, timeout: float) -> socket.socket:
    """A connected socket to a daemon on a unix socket or plain TCP (`reach` is "unix" or "tcp")."""
    if host.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = host[len("unix://") :]
    else:
        name, port = host_and_port(host)
        sock = socket.socket(socket.AF_INET6 if ":" in name else socket.AF_INET)
        address = (name or "localhost", port or 2375)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def host_and_port(url: str) -> tuple[str, int | None]:
    """The host and port of `tcp://`, `http://` or `https://` URL (`[::1]:5000` for IPv6), without importing
    urllib.parse (12 ms a memo check does not need). Raises ValueError for a port that is not a number."""
    netloc = url.partition("://")[2].split("/", 1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        name, _, rest = netloc[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, colon, port = netloc.partition(":")
    return name, int(port) if colon else None


class EngineHTTP:
    def __init__(self, url: str | None, api_version: str, timeout: float = 60) -> None:
        self.host = resolve_host(url)
        self.prefix = f"/v{api_version}"
        self.timeout = timeout

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        import urllib.parse

        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        target = f"{self.prefix}{path}{query}"
        status, body = self.fetch(target)
        inputs.note_response(self.host, target, status, body)
        if status >= 400:
            try:
                message = json.loads(body).get("message", "")
            except ValueError:
                message = body.decode(errors="replace")
            raise EngineHTTPError(status, message)
        return json.loads(body) if body else None

    def fetch(self, target: str) -> tuple[int, bytes]:
        """One GET: the status and the raw body. HTTP/1.0 with the connection closed after the answer, so the
        body needs no chunked decoding (the engine answers a 1.0 request with a plain body)."""
        status, _, body = exchange(self.host, f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n", self.timeout)
        return status, body


def exchange(host: str, request: str, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.0 request on a connection of its own (`host` as `connect` takes it), read to the end: the
    status, the headers (lower-case names) and the body. The Engine client and the registry's manifest probe
    both speak this, so neither imports http.client (ssl) on a no-op run's path."""
    with connect(host, timeout) as sock:
        sock.sendall(request.encode())
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise OSError(f"not an HTTP answer from {host}") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body
