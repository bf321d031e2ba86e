"""The build context as a tar stream, made from the same walk the key was computed from.

Used by the classic builder, the tar fallback of BuildKit (see session.py for the default) and buildx. The
engine's BuildKit takes a tar body as the whole context (it applies no .dockerignore of its own, neither
`.dockerignore` nor `<Dockerfile>.dockerignore`: measured on 20.10), so what planner hashes is exactly what the
builder gets. While streaming, each file's content is hashed again and compared with the hash the key was made
from: a file edited between plan and build aborts the build rather than labelling new content with the old key.

A Dockerfile that is not among the sent entries (excluded, outside the context, inline) travels as
INJECTED_DOCKERFILE. The classic builder (`version=1`) hides it from COPY the way the docker CLI does
(`AddDockerfileToBuildContext`): the daemon removes the Dockerfile and `.dockerignore` when `.dockerignore`
matches them, so the tar's `.dockerignore` names the injected file (the user's sent `.dockerignore` gets the line
appended, as the CLI does; without one, a synthetic `.dockerignore` that also names itself). BuildKit over a tar
has no such step: there the injected file would stay visible, so the plan sends such builds to the classic
builder or refuses them (decide.build_route; see docs/design-notes.md, "The builder"); the BuildKit session path
sends the Dockerfile apart instead.
"""

from __future__ import annotations

import io
import os
import queue
import tarfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import xxhash

from planner.base.errors import RuntimeFailure
from planner.base.names import printable
from planner.engine.sent_metadata import content_mtime_s
from planner.keys.walk import Entry

INJECTED_DOCKERFILE = ".planner.Dockerfile"
DOCKERIGNORE = ".dockerignore"
_CHUNK = 1 << 20


class ContextChanged(RuntimeFailure):
    """A context file changed between planning and building."""


def _tarinfo(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind == "d" else ""))
    info.mode = entry.mode
    info.mtime = entry.mtime_ns // 1_000_000_000
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "f":
        info.type = tarfile.REGTYPE
        info.size = entry.size
    elif entry.kind == "d":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "l":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    elif entry.kind == "p":
        info.type = tarfile.FIFOTYPE
    else:
        info.type = tarfile.CHRTYPE if entry.kind == "c" else tarfile.BLKTYPE
        major, _, minor = entry.target.partition(":")
        info.devmajor, info.devminor = int(major), int(minor)
    return info


class _Verifying(io.RawIOBase):
    """Reads a file for the tar while hashing it; the hash is checked when the file is done."""

    def __init__(self, path: str, expected: str | None, relative: str) -> None:
        self.handle = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.hasher = xxhash.xxh3_128()
        self.expected = expected
        self.relative = relative

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self.handle.readinto(buffer)
        if count:
            self.hasher.update(buffer[:count])
        return count or 0

    def close(self) -> None:
        self.handle.close()
        super().close()

    def verify(self) -> None:
        if self.expected is not None and self.hasher.hexdigest() != self.expected:
            raise ContextChanged(
                f"{printable(self.relative)} changed after planning; run again to plan with its new content"
            )


def write_context(
    out: io.RawIOBase | io.BufferedIOBase,
    root: Path,
    entries: list[Entry],
    expected: Mapping[str, str],
    dockerfile: bytes | None = None,
    hide_injected: bool = False,
) -> None:
    """Write the context tar. `expected` maps file paths to the content hash the key used (paths not in it,
    such as freshly generated outputs, are sent unchecked). `dockerfile` is added as INJECTED_DOCKERFILE;
    `hide_injected` (classic builder) makes the tar's `.dockerignore` name it, so the daemon drops it."""
    hide = dockerfile is not None and hide_injected
    # Member names carry a path's original bytes (a non-UTF-8 name is held as surrogates): what `docker build`
    # sends for the same file.
    with tarfile.open(
        fileobj=out, mode="w|", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as archive:
        if dockerfile is not None:  # first, so BuildKit's archive sniffing sees a short, plain header
            info = tarfile.TarInfo(INJECTED_DOCKERFILE)
            info.size = len(dockerfile)
            info.mode = 0o644
            info.mtime = content_mtime_s(dockerfile)  # new text, new time (sent_metadata)
            archive.addfile(info, io.BytesIO(dockerfile))
        if hide and not any(e.path == DOCKERIGNORE and e.kind == "f" for e in entries):
            synthetic = f"{DOCKERIGNORE}\n{INJECTED_DOCKERFILE}\n".encode()
            info = tarfile.TarInfo(DOCKERIGNORE)
            info.size = len(synthetic)
            info.mode = 0o644
            info.mtime = content_mtime_s(synthetic)
            archive.addfile(info, io.BytesIO(synthetic))
        for entry in entries:
            info = _tarinfo(entry)
            if entry.kind != "f":
                archive.addfile(info)
                continue
            reader = _Verifying(os.path.join(root, entry.path), expected.get(entry.path), entry.path)
            try:
                if os.fstat(reader.handle.fileno()).st_size != entry.size:
                    raise ContextChanged(f"{printable(entry.path)} changed after planning; run again")
                if hide and entry.path == DOCKERIGNORE:
                    content = reader.readall()  # small; verified like any other file, then extended
                    reader.verify()
                    content += f"\n{INJECTED_DOCKERFILE}\n".encode()
                    info.size = len(content)
                    archive.addfile(info, io.BytesIO(content))
                    continue
                archive.addfile(info, io.BufferedReader(reader, _CHUNK))
                reader.verify()
            finally:
                reader.close()


class _QueueWriter(io.RawIOBase):
    def __init__(self, chunks: queue.Queue[bytes | BaseException | None]) -> None:
        self.chunks = chunks

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.put(bytes(data))
        return len(data)


def stream_context(
    root: Path,
    entries: list[Entry],
    expected: Mapping[str, str],
    dockerfile: bytes | None = None,
    hide_injected: bool = False,
) -> Iterator[bytes]:
    """The context tar as chunks, produced by a writer thread (bounded memory: a few chunks in flight)."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    def produce() -> None:
        try:
            sink = io.BufferedWriter(_QueueWriter(chunks), _CHUNK)  # type: ignore[type-var]
            write_context(sink, root, entries, expected, dockerfile, hide_injected)
            sink.flush()  # the last partial chunk, before the end marker below
            chunks.put(None)
        except BaseException as exc:
            chunks.put(exc)

    threading.Thread(target=produce, name="context-tar", daemon=True).start()
    while True:
        item = chunks.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item
