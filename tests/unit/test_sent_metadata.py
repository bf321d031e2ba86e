"""The times planner sends for files (issue 27): they move whenever the bytes do, keep the real second, and
are the same for the same bytes."""

from __future__ import annotations

from planner.engine.sent_metadata import content_mtime_s, fresh_mtime_ns, sent_mtime_ns
from planner.engine.session import dockerfile_source
from planner.keys.walk import Entry

SECOND = 1_000_000_000
REAL = 1_700_000_000 * SECOND + 123_456_789


def file(**fields: int) -> Entry:
    return Entry("a.txt", "f", 0o644, **{"size": 5, "mtime_ns": REAL, "ctime_ns": REAL, "inode": 7, **fields})


def test_a_digest_sets_the_sub_second_and_the_real_second_stays() -> None:
    first, second = sent_mtime_ns(file(), "aa" * 16), sent_mtime_ns(file(), "bb" * 16)
    assert first != second
    assert first // SECOND == second // SECOND == REAL // SECOND
    assert sent_mtime_ns(file(), "aa" * 16) == first  # the same bytes: the same time, nothing sent again
    assert sent_mtime_ns(file(ctime_ns=REAL + 5, inode=9), "aa" * 16) == first  # a copy with the same bytes


def test_without_a_digest_every_write_moves_the_time() -> None:
    before = sent_mtime_ns(file(), None)
    assert sent_mtime_ns(file(ctime_ns=REAL + 4_000_000), None) != before  # rewritten in the next tick
    assert sent_mtime_ns(file(inode=8), None) != before  # replaced by another file with the same times
    assert sent_mtime_ns(file(), None) == before
    assert before // SECOND == REAL // SECOND


def test_a_time_before_1970_keeps_its_second() -> None:
    early = -1_500_000_000  # 1969-12-31 23:59:58.5
    assert sent_mtime_ns(file(mtime_ns=early), "aa" * 16) // SECOND == early // SECOND


def test_synthetic_files_get_times_from_their_bytes_or_a_fresh_one() -> None:
    assert content_mtime_s(b"FROM scratch\nLABEL v=44\n") != content_mtime_s(b"FROM scratch\nLABEL v=55\n")
    assert content_mtime_s(b"x") == content_mtime_s(b"x")
    times = {fresh_mtime_ns() for _ in range(100)}
    assert len(times) == 100 and all(t > 0 for t in times)
    sent = [dockerfile_source("Dockerfile", b"FROM scratch\n").entries[0].stat.mod_time for _ in range(2)]
    assert sent[0] != sent[1] and 0 not in sent
