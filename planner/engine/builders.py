"""Builders: the Engine-API builder (embedded default: the daemon's BuildKit, fed the context through a BuildKit
session planner serves, or a context tar planner makes)
and `docker buildx build` (a shared or remote BuildKit). Both label images with the node's content key.

BuildKit-only features the Engine API cannot pass (additional contexts, build secrets, ssh, cache_to) need
buildx; asking for them without it is a clear error before anything runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from planner.base.errors import InputError, RuntimeFailure, exception_text
from planner.base.streams import reader
from planner.engine.context_server import Served, context_server
from planner.engine.context_tar import INJECTED_DOCKERFILE, stream_context
from planner.engine.daemon import Daemon
from planner.engine.protobuf import fields as protobuf_fields
from planner.engine.sent_metadata import fresh_mtime_ns, sent_mtime_ns
from planner.keys.walk import Entry

if TYPE_CHECKING:
    from planner.engine.session import BuildSession

LogSink = Callable[[str], None]


class Cancellation(Protocol):
    """What a running step offers a builder: a flag, and a way to be told how to abort work in flight."""

    cancel_event: threading.Event

    def on_cancel(self, hook: Callable[[], None]) -> None: ...


class BuildCancelled(RuntimeFailure):
    """The build was cancelled (Ctrl-C)."""


class BuildFailed(RuntimeFailure):
    """The builder reported an error."""


@dataclass
class BuildRequest:
    node: str
    context: Path
    entries: list[Entry]
    expected: dict[str, str]  # path -> content hash the key was computed from
    dockerfile: str  # path inside the context, or INJECTED_DOCKERFILE
    dockerfile_text: bytes | None  # set when the Dockerfile is injected
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    network: str | None = None
    shm_size: int | None = None
    no_cache: bool = False
    pull: bool = False
    extra_hosts: list[str] = field(default_factory=list)
    additional_contexts: dict[str, str] = field(default_factory=dict)
    secrets: list[Any] = field(default_factory=list)
    ssh: list[str] = field(default_factory=list)
    cache_from: list[str] = field(default_factory=list)
    cache_to: list[str] = field(default_factory=list)
    # the plan's route (decide.build_route): the classic builder from the start, or when the daemon opens no
    # BuildKit session and a context tar will not do (an injected Dockerfile; a daemon reached over TCP)
    classic: bool = False
    classic_fallback: bool = False


class Builder(Protocol):
    name: str

    def ready(self) -> None:
        """Raise InputError when this builder cannot run here at all (what it can build, decide.py knows)."""

    def build(self, request: BuildRequest, log: LogSink, cancel: Cancellation | None = None) -> str: ...


class EngineBuilder:
    """`POST /build?version=2` on the home daemon: BuildKit inside dockerd, the context through a BuildKit session
    (on a local socket or plain TCP; a tar over loopback HTTP as the fallback on a local socket), or the classic
    builder with a tar body, as the plan's route says (decide.build_route)."""

    name = "docker"

    def __init__(self, daemon: Daemon, transport: str = "session") -> None:
        from planner.engine.http import reach

        self.daemon = daemon
        # how BuildKit gets the context: "session" (a BuildKit session, as the docker CLI sends it: the Dockerfile
        # apart from the context) or "tar" (a tar served on loopback HTTP)
        if transport not in ("session", "tar"):
            raise ValueError(f"unknown context transport {transport!r}")
        self.transport = transport
        # only a daemon on a local socket shares this host's loopback, so only it can fetch a tar from us
        self.reach = reach(daemon.url)

    def _open_session(self, request: BuildRequest, log: LogSink) -> BuildSession | None:
        """A BuildKit session serving the walk as `context` and the Dockerfile alone as `dockerfile`; None (and
        a log line) when the daemon opens none: the build then takes the tar path, and so do later builds."""
        from planner.engine.daemon import API_VERSION
        from planner.engine.http import resolve_host
        from planner.engine.session import (
            SESSION_DOCKERFILE,
            BuildSession,
            SessionFailed,
            context_source,
            dockerfile_source,
            shared_key,
        )

        if request.dockerfile_text is not None:
            name, text = SESSION_DOCKERFILE, request.dockerfile_text
        else:
            name = posixpath.basename(request.dockerfile)
            try:
                text = _read_verified(request, request.dockerfile)
            except RuntimeFailure as exc:
                raise BuildFailed(f"{request.node}: {exc.message}; nothing was built") from None
        session = BuildSession(
            resolve_host(self.daemon.url),
            {
                "context": context_source(str(request.context), request.entries, request.expected),
                "dockerfile": dockerfile_source(name, text),
            },
            shared_key(str(request.context)),
            API_VERSION,
        )
        try:
            session.start()
        except SessionFailed as exc:
            self.transport = "tar"
            then = (
                "falling back to a context tar over loopback HTTP"
                if self.reach == "unix" and request.dockerfile_text is None
                else "the plan's fallback: the classic builder where it builds alike, else no build"
            )
            log(f"planner: no BuildKit session ({exc.message}); {then}")
            return None
        return session

    def _no_tar(self) -> str:
        """Why a build without a BuildKit session cannot send its context as a tar over loopback HTTP."""
        from planner.engine.http import resolve_host

        if self.reach == "unix":
            # dockerd 20.10's BuildKit applies no ignore file to a context tar: COPY would see the injected
            # Dockerfile, which `docker build` never shows (the classic builder hides it as the CLI makes it do)
            return (
                "the Dockerfile is not in the sent context, and without a BuildKit session the daemon's BuildKit "
                "would show it to COPY"
            )
        return (
            f"the daemon at {resolve_host(self.daemon.url)} opened no BuildKit session and cannot fetch a context "
            "tar from this host"
        )

    def _discard(self, image_id: str | None, tags: list[str]) -> None:
        for ref in [*tags, *([image_id] if image_id else [])]:
            try:
                self.daemon.api.remove_image(ref, force=True, noprune=False)
            except Exception:
                continue

    def ready(self) -> None:
        """The Engine API builder is the daemon itself; what it cannot build, the plan reports (decide.py)."""

    def build(self, request: BuildRequest, log: LogSink, cancel: Cancellation | None = None) -> str:
        api = self.daemon.api
        params: dict[str, Any] = {
            "t": request.tags,
            "dockerfile": request.dockerfile,
            "buildargs": json.dumps(request.args),
            "labels": json.dumps(request.labels),
            "version": "2",
            "rm": "1",
        }
        if request.target:
            params["target"] = request.target
        if request.no_cache:
            params["nocache"] = "1"
        if request.pull:
            params["pull"] = "1"
        if request.network:
            params["networkmode"] = request.network
        if request.shm_size:
            params["shmsize"] = request.shm_size
        if request.platforms:
            params["platform"] = request.platforms[0]
        if request.extra_hosts:
            params["extrahosts"] = request.extra_hosts

        classic = request.classic
        session: BuildSession | None = None
        if not classic and self.transport == "session" and self.reach != "other":
            session = self._open_session(request, log)
        if session is None and not classic and (self.reach != "unix" or request.dockerfile_text is not None):
            # no tar will do (`_no_tar`): the plan's route says whether the classic builder builds it
            if not request.classic_fallback:
                raise BuildFailed(
                    f"{request.node}: {self._no_tar()} (the classic builder cannot build this Dockerfile alike); "
                    "nothing was built"
                )
            log(f"planner: the classic builder builds this one ({self._no_tar()})")
            classic = True
        if session is not None:
            params.update(remote="client-session", session=session.id, dockerfile=session_dockerfile(request))

        def produce() -> Iterator[bytes]:
            return _cancellable(
                stream_context(
                    request.context, request.entries, request.expected, request.dockerfile_text, classic
                ),
                cancel,
            )

        served: Served | None = None
        token = None
        if session is not None:
            body: Iterator[bytes] | None = None
        elif not classic:
            # BuildKit downloads the context itself (see context_server: the request body would race)
            server = context_server()
            token, served = server.register(produce)
            params["remote"] = server.url(token)
            body = None
        else:
            params["version"] = "1"  # the classic builder reads the whole body before it answers
            body = produce()
        image_id: str | None = None
        seen_vertices: set[bytes] = set()
        try:
            response = api._post(
                api._url("/build"), params=params, data=body, stream=True, timeout=None,
                headers={"Content-Type": "application/x-tar"},
            )  # fmt: skip
            if cancel is not None:
                cancel.on_cancel(lambda: abort_response(response))  # a dropped connection cancels the solve
                if session is not None:
                    cancel.on_cancel(session.close)
            api._raise_for_status(response)
            for event in api._stream_helper(response, decode=True):
                if "error" in event or "errorDetail" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event.get("error")
                    if served is not None and served.errors:
                        detail = f"{served.errors[-1]} ({detail})"
                    elif session is not None and session.errors:
                        detail = f"{session.errors[-1]} ({detail})"
                    log(f"ERROR: {detail}")
                    raise BuildFailed(f"{request.node}: build failed: {detail}")
                if event.get("id") == "moby.image.id":
                    image_id = (event.get("aux") or {}).get("ID")
                elif "stream" in event:
                    log(str(event["stream"]).rstrip("\n"))
                elif event.get("id") == "moby.buildkit.trace":
                    log_trace(event.get("aux"), log, seen_vertices)
        except (BuildFailed, RuntimeFailure):
            raise
        except Exception as exc:
            if cancel is not None and cancel.cancel_event.is_set():
                raise BuildCancelled(f"{request.node}: build cancelled") from None
            raise BuildFailed(f"{request.node}: build failed: {exception_text(exc)}") from None
        finally:
            if token is not None:
                context_server().forget(token)
            if session is not None:
                session.close()
        if session is not None and session.errors:
            self._discard(image_id, request.tags)
            raise BuildFailed(f"{request.node}: {session.errors[-1]}; the image was not kept")
        if session is not None and not _read_the_dockerfile(session):
            # the Dockerfile went with a time no earlier send used, so a daemon that did not ask for its bytes
            # built from a copy it held: maybe another text, under this key (issue 27)
            self._discard(image_id, request.tags)
            raise BuildFailed(
                f"{request.node}: the builder did not read the Dockerfile planner sent (it used a copy it held, "
                "which may be another text); the image was not kept"
            )
        if served is not None and (served.errors or not served.complete):
            self._discard(image_id, request.tags)
            why = served.errors[-1] if served.errors else "the builder did not read the whole context"
            raise BuildFailed(f"{request.node}: {why}; the image was not kept")
        if image_id is None:
            image_id = self.daemon.image_id(request.tags[0]) if request.tags else None
        if image_id is None:
            raise BuildFailed(f"{request.node}: the builder reported no image")
        return image_id


def _read_the_dockerfile(session: BuildSession) -> bool:
    from planner.engine.session import DOCKERFILE_DIR, files_read

    return files_read(session.transfers, DOCKERFILE_DIR) > 0


def session_dockerfile(request: BuildRequest) -> str:
    """The Dockerfile's name in the session's `dockerfile` source (the docker CLI's: its base name, or
    `Dockerfile` for one from stdin)."""
    from planner.engine.session import SESSION_DOCKERFILE

    return (
        SESSION_DOCKERFILE if request.dockerfile_text is not None else posixpath.basename(request.dockerfile)
    )


def _read_verified(request: BuildRequest, path: str) -> bytes:
    """A context file's bytes, checked against the hash the key was made from (ContextChanged if it differs)."""
    from planner.base.names import printable
    from planner.engine.context_tar import ContextChanged, _Verifying

    reader = _Verifying(str(request.context / path), request.expected.get(path), path)
    try:
        content = reader.readall()
        reader.verify()
    finally:
        reader.close()
    entry = next((e for e in request.entries if e.path == path), None)
    if entry is not None and entry.size != len(content):
        raise ContextChanged(f"{printable(path)} changed after planning; run again")
    return content


def abort_response(response: Any) -> None:
    """Shut the socket under a streaming response down: unlike close(), this wakes a thread blocked in recv."""
    import socket

    candidates = [
        getattr(getattr(response, "raw", None), "_connection", None),
        getattr(getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None), "raw", None),
    ]
    for candidate in candidates:
        sock = getattr(candidate, "sock", None) or getattr(candidate, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
    response.close()


def _cancellable(chunks: Iterator[bytes], cancel: Cancellation | None) -> Iterator[bytes]:
    for chunk in chunks:
        if cancel is not None and cancel.cancel_event.is_set():
            raise BuildCancelled("build cancelled while sending the context")
        yield chunk


def log_trace(aux: Any, log: LogSink, seen: set[bytes] | None = None) -> None:
    """BuildKit progress arrives as a base64 StatusResponse: log step names once, their output, and errors."""
    import base64
    import binascii

    if not isinstance(aux, str):
        return
    try:
        for number, value in protobuf_fields(base64.b64decode(aux)):
            if not isinstance(value, bytes):
                continue
            if number == 1:  # Vertex: 3 name, 7 error
                fields = dict(protobuf_fields(value))
                name = fields.get(3)
                if isinstance(name, bytes) and (seen is None or name not in seen):
                    if seen is not None:
                        seen.add(name)
                    log(name.decode(errors="replace"))
                error = fields.get(7)
                if isinstance(error, bytes) and error:
                    log(f"error: {error.decode(errors='replace')}")
            elif number == 3:  # VertexLog: 4 msg
                message = dict(protobuf_fields(value)).get(4)
                if isinstance(message, bytes):
                    for line in message.decode(errors="replace").splitlines():
                        log(line)
    except (IndexError, binascii.Error, ValueError):
        return


class BuildxBuilder:
    """`docker buildx build` with `--builder NAME`: a shared or remote BuildKit, loaded back with `--load`."""

    name = "buildx"

    def __init__(self, builder_name: str | None, docker_host: str | None) -> None:
        self.builder_name = builder_name
        self.docker_host = docker_host

    def available(self) -> bool:
        docker = shutil.which("docker")
        if docker is None:
            return False
        probe = subprocess.run([docker, "buildx", "version"], capture_output=True, text=True, check=False)
        return probe.returncode == 0

    def ready(self) -> None:
        if not self.available():
            raise InputError(
                "the rules ask for the buildx builder but `docker buildx` is not installed",
                hint="install the docker buildx plugin, or use `builder: {kind: docker}`",
            )

    def build(self, request: BuildRequest, log: LogSink, cancel: Cancellation | None = None) -> str:
        with tempfile.TemporaryDirectory(prefix="planner-ctx-") as tmp:
            context = Path(tmp) / "context"
            dockerfile = extract_entries(request, context)
            iidfile = Path(tmp) / "iid"
            command = ["docker", "buildx", "build", "--progress", "plain", "--load", "--iidfile", str(iidfile),
                       "-f", str(dockerfile)]  # fmt: skip
            if self.builder_name:
                command += ["--builder", self.builder_name]
            for name, value in request.args.items():
                command += ["--build-arg", f"{name}={value}"]
            for name, value in request.labels.items():
                command += ["--label", f"{name}={value}"]
            for tag in request.tags:
                command += ["--tag", tag]
            for name, value in request.additional_contexts.items():
                command += ["--build-context", f"{name}={value}"]
            if request.target:
                command += ["--target", request.target]
            if request.platforms:
                command += ["--platform", ",".join(request.platforms)]
            if request.no_cache:
                command.append("--no-cache")
            if request.pull:
                command.append("--pull")
            command += [f"--cache-from={c}" for c in request.cache_from] + [
                f"--cache-to={c}" for c in request.cache_to
            ]
            command += [f"--ssh={s}" for s in request.ssh]
            command.append(str(context))
            env = dict(os.environ)
            if self.docker_host:
                env["DOCKER_HOST"] = self.docker_host
            with subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
            ) as proc:
                assert proc.stdout is not None
                if cancel is not None:
                    cancel.on_cancel(proc.terminate)
                for line in proc.stdout:
                    log(line.rstrip("\n"))
            if proc.returncode != 0:
                raise BuildFailed(f"{request.node}: docker buildx build exited {proc.returncode}")
            return iidfile.read_text().strip()


def extract_entries(request: BuildRequest, target: Path) -> Path:
    """Materialize the exact context (for builders that read a folder): the same tar, unpacked. Returns the
    Dockerfile's path: an injected Dockerfile is written beside `target`, not in it, so COPY cannot see it."""
    import tarfile

    target.mkdir(parents=True)
    chunks = stream_context(request.context, request.entries, request.expected)
    with tarfile.open(fileobj=reader(chunks), mode="r|") as archive:
        archive.extractall(target, filter="tar")
    # a tar keeps whole seconds: give each file the time a session would send (sent_metadata), so a builder
    # that keeps its last transfer of this folder cannot take a same-size older file for this one
    for entry in request.entries:
        if entry.kind == "f":
            mtime = sent_mtime_ns(entry, request.expected.get(entry.path))
            os.utime(target / entry.path, ns=(mtime, mtime), follow_symlinks=False)
    if request.dockerfile_text is None:
        return target / request.dockerfile
    outside = target.parent / INJECTED_DOCKERFILE
    outside.write_bytes(request.dockerfile_text)
    fresh = fresh_mtime_ns()
    os.utime(outside, ns=(fresh, fresh))
    return outside


def make_builder(kind: str, name: str | None, daemon: Daemon, context: str = "session") -> Builder:
    if kind == "buildx":
        return BuildxBuilder(name, daemon.url)
    return EngineBuilder(daemon, transport=context)
