"""Iterators of byte chunks as file objects, so streamed archives never have to be held whole."""

from __future__ import annotations

import io
from collections.abc import Iterable


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
