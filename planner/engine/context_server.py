"""Serving build contexts to the daemon's BuildKit over HTTP on 127.0.0.1.

Why not the build request's own body: dockerd answers with progress while BuildKit still reads that body, and
Go's HTTP/1.1 server then discards and closes the unread rest ("http: invalid Read on closed Body", or worse a
silently short context). Given `remote=http://127.0.0.1:PORT/TOKEN/context.tar`, BuildKit downloads the tar with
its own request instead, so the upload and the progress stream no longer share a connection.

Each registered context has a random token; every GET streams the tar anew (verified against the key's hashes
while it is written) and records whether it was served whole, so a build that read a short or failing stream is
never taken for good.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from planner.base.errors import exception_text

Producer = Callable[[], Iterator[bytes]]


@dataclass
class Served:
    producer: Producer
    complete: int = 0  # GETs served to the end
    errors: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: ContextServer
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no length needed up front

    def do_GET(self) -> None:
        served = self.server.lookup(self.path)
        if served is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.end_headers()
        try:
            for chunk in served.producer():
                self.wfile.write(chunk)
            self.wfile.flush()
            served.complete += 1
        except (
            Exception
        ) as exc:  # the tar is cut short, so BuildKit fails too; the builder reports this error
            served.errors.append(getattr(exc, "message", None) or exception_text(exc))
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


class ContextServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.contexts: dict[str, Served] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, name="context-server", daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def lookup(self, path: str) -> Served | None:
        token = path.strip("/").split("/", 1)[0]
        with self.lock:
            return self.contexts.get(token)

    def register(self, producer: Producer) -> tuple[str, Served]:
        token = secrets.token_hex(16)
        served = Served(producer)
        with self.lock:
            self.contexts[token] = served
        return token, served

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/{token}/context.tar"

    def forget(self, token: str) -> None:
        with self.lock:
            self.contexts.pop(token, None)


_server_lock = threading.Lock()


@functools.cache
def _the_server() -> ContextServer:
    return ContextServer()


def context_server() -> ContextServer:
    """The process-wide context server, started on first use."""
    with _server_lock:
        return _the_server()
