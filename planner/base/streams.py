"""Streams of byte chunks: as file objects, so streamed archives never have to be held whole, and read once for
several consumers (`tee`)."""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Iterable, Iterator


class ChunkReader(io.RawIOBase):
    """A readable file over an iterable of chunks (for `tarfile.open(fileobj=..., mode="r|")`)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def reader(chunks: Iterable[bytes], buffer_size: int = 1 << 20) -> io.BufferedReader:
    return io.BufferedReader(ChunkReader(chunks), buffer_size)


class Branch:
    """One consumer's copy of a teed stream. Iterate it on the consumer's own thread; `close` (or stopping
    early and closing) detaches it, so the others go on without waiting for it."""

    def __init__(self, depth: int) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed.set()

    def close(self) -> None:
        self.closed.set()
        while True:  # wake a reader blocked on an empty queue: it ends as if the stream had
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def put(self, item: bytes | BaseException | None) -> bool:
        """Hand one item on, waiting while the consumer is behind; False once it has detached."""
        while not self.closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def close(chunks: Iterable[bytes]) -> None:
    """End a chunk stream that can be ended (a generator, an HTTP body, a `Branch`: detached, so the other
    readers of a teed stream go on without this one); anything else needs nothing."""
    closer = getattr(chunks, "close", None)
    if closer is not None:
        closer()


def tee(chunks: Iterable[bytes], consumers: int, depth: int = 16) -> list[Branch]:
    """Read `chunks` once, on a thread of its own, handing every chunk to each of `consumers` branches.

    Each branch holds at most `depth` chunks, so memory stays bounded and the slowest consumer sets the pace.
    An error reading the source reaches every branch; when every branch has detached, reading stops."""
    branches = [Branch(depth) for _ in range(consumers)]

    def run() -> None:
        source = iter(chunks)
        try:
            for chunk in source:
                live = [branch.put(chunk) for branch in branches]
                if not any(live):
                    return
            for branch in branches:
                branch.put(None)
        except BaseException as exc:  # handed to every consumer
            for branch in branches:
                branch.put(exc)
        finally:
            close(source)

    threading.Thread(target=run, daemon=True, name="tee").start()
    return branches
