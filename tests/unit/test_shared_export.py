"""One reading of an export for several consumers: the tee, and the groups the plan's `export_with` makes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

import pytest

from planner.apply.shared_export import SharedExports
from planner.base.streams import close, tee
from planner.plan.model import PlanStep

CHUNKS = [bytes([i]) * 1000 for i in range(200)]


class Source:
    """A chunk source that counts how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks, self.fail_at, self.read, self.closed = chunks, fail_at, 0, False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for index, chunk in enumerate(self.chunks):
                if index == self.fail_at:
                    raise OSError("the export stream broke")
                self.read += 1
                yield chunk
        finally:
            self.closed = True


def consume(chunks: Iterable[bytes], into: list[bytes], stop_after: int | None = None) -> None:
    for index, chunk in enumerate(chunks):
        if index == stop_after:
            close(chunks)
            return
        into.append(chunk)


def run_all(*targets: threading.Thread) -> None:
    for thread in targets:
        thread.start()
    for thread in targets:
        thread.join(10)
        assert not thread.is_alive(), "a consumer hung"


def test_every_branch_sees_the_whole_stream_read_once() -> None:
    source = Source(CHUNKS)
    a, b = tee(source, 2, depth=2)
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    run_all(
        threading.Thread(target=consume, args=(a, got_a)), threading.Thread(target=consume, args=(b, got_b))
    )
    assert got_a == CHUNKS and got_b == CHUNKS
    assert source.read == len(CHUNKS)


def test_a_consumer_that_stops_does_not_hold_up_the_other() -> None:
    a, b = tee(Source(CHUNKS), 2, depth=2)
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    run_all(
        threading.Thread(target=consume, args=(a, got_a, 5)),
        threading.Thread(target=consume, args=(b, got_b)),
    )
    assert got_a == CHUNKS[:5] and got_b == CHUNKS


def test_reading_stops_when_every_consumer_left() -> None:
    source = Source(CHUNKS)
    a, b = tee(source, 2, depth=2)
    run_all(
        threading.Thread(target=consume, args=(a, [], 3)), threading.Thread(target=consume, args=(b, [], 4))
    )
    deadline = time.monotonic() + 5
    while not source.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert source.closed and source.read < len(CHUNKS)


def test_an_error_reading_the_source_reaches_every_consumer() -> None:
    branches = tee(Source(CHUNKS, fail_at=50), 2, depth=2)
    errors: list[str] = []

    def failing(chunks: Iterable[bytes]) -> None:
        try:
            consume(chunks, [])
        except OSError as exc:
            errors.append(str(exc))

    run_all(*(threading.Thread(target=failing, args=(branch,)) for branch in branches))
    assert errors == ["the export stream broke"] * 2


def group(*ids: str) -> list[PlanStep]:
    return [
        PlanStep(id=i, node="app", kind="push" if i.startswith("push") else "transfer", export_with=[j for j in ids if j != i])
        for i in ids
    ]  # fmt: skip


class Readings:
    """An export to hand SharedExports: each call starts (and keeps) a new reading."""

    def __init__(self) -> None:
        self.started: list[Source] = []

    def __call__(self) -> Iterable[bytes]:
        self.started.append(Source(CHUNKS))
        return self.started[-1]


def test_a_group_that_arrives_together_reads_one_export() -> None:
    exports = SharedExports(group("push:app", "transfer:app:sandbox"), wait=5)
    export = Readings()
    got: dict[str, list[bytes]] = {"push:app": [], "transfer:app:sandbox": []}

    def step(step_id: str) -> None:
        chunks = exports.chunks(step_id, export, threading.Event())
        try:
            consume(chunks, got[step_id])
        finally:
            close(chunks)

    run_all(*(threading.Thread(target=step, args=(i,)) for i in got))
    assert len(export.started) == 1
    assert got["push:app"] == CHUNKS and got["transfer:app:sandbox"] == CHUNKS


def test_a_member_that_never_comes_does_not_block_the_others_and_a_late_one_reads_its_own() -> None:
    exports = SharedExports(group("push:app", "transfer:app:sandbox"), wait=0.2)
    export = Readings()

    started = time.monotonic()
    first: list[bytes] = []
    consume(exports.chunks("push:app", export, threading.Event()), first)
    assert first == CHUNKS and time.monotonic() - started < 3
    late: list[bytes] = []
    consume(exports.chunks("transfer:app:sandbox", export, threading.Event()), late)
    assert late == CHUNKS and len(export.started) == 2


@pytest.mark.parametrize("step_id", ["build:app", "transfer:app:other"])
def test_a_step_outside_any_group_reads_its_own_export(step_id: str) -> None:
    exports = SharedExports(group("push:app", "transfer:app:sandbox"))
    source = Source(CHUNKS)
    got: list[bytes] = []
    consume(exports.chunks(step_id, lambda: source, threading.Event()), got)
    assert got == CHUNKS and source.read == len(CHUNKS)


@pytest.mark.parametrize("step_id", ["transfer:app:other", "late"])
def test_a_step_closes_its_own_reading_while_a_parser_thread_is_inside_it(step_id: str) -> None:
    """Issue 32: the layer parsers read an export on a thread of their own (`tee(..., 1)`); a step that read its
    own export (no group, or late) then closed it from the step's thread while that thread was inside the
    generator: `generator already executing`, and a delivery whose image had arrived was marked failed."""
    exports = SharedExports(group("push:app", "late"), wait=0.05)
    if step_id == "late":
        close(
            exports.chunks("push:app", lambda: iter(CHUNKS), threading.Event())
        )  # the group's reading began
    inside = threading.Event()

    def export() -> Iterator[bytes]:
        yield b"first"
        inside.set()
        time.sleep(0.5)  # the parser's thread is inside the generator now
        yield b"second"

    reading = exports.chunks(step_id, export, threading.Event())
    ahead = tee(reading, 1)[0]
    assert next(iter(ahead)) == b"first"
    assert inside.wait(5)
    close(reading)  # raised ValueError: generator already executing
    ahead.close()
