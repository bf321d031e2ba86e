"""A minimal Engine API client for the read-only calls of every plan (list images, inspect), over the unix
socket or plain TCP with nothing but the standard library: a no-op run must not pay for importing docker-py and
requests (~0.1 s). TLS daemons (DOCKER_TLS_VERIFY / https) go through docker-py instead.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from typing import Any

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class EngineHTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def resolve_host(url: str | None, environ: dict[str, str] | None = None) -> str:
    env = environ if environ is not None else os.environ
    return url or env.get("DOCKER_HOST") or DEFAULT_SOCKET


def supported(url: str | None) -> bool:
    """Whether this light client can talk to the daemon (else use docker-py)."""
    host = resolve_host(url)
    if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
        return False
    return host.startswith(("unix://", "tcp://", "http://"))


class EngineHTTP:
    def __init__(self, url: str | None, api_version: str, timeout: float = 60) -> None:
        self.host = resolve_host(url)
        self.prefix = f"/v{api_version}"
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        if self.host.startswith("unix://"):
            return _UnixConnection(self.host[len("unix://") :], self.timeout)
        parsed = urllib.parse.urlparse(self.host.replace("tcp://", "http://", 1))
        return http.client.HTTPConnection(
            parsed.hostname or "localhost", parsed.port or 2375, timeout=self.timeout
        )

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        connection = self._connection()
        try:
            connection.request("GET", f"{self.prefix}{path}{query}")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            try:
                message = json.loads(body).get("message", "")
            except ValueError:
                message = body.decode(errors="replace")
            raise EngineHTTPError(response.status, message)
        return json.loads(body) if body else None
