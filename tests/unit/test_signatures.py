"""Signature checks: a change in any chunk is seen, whether the C reader reads the signatures (planner._lstat)
or Python does, in one process or two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from planner.base import inputs
from planner.keys import signatures


@pytest.fixture(params=["c", "python"], autouse=True)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each reader: the C one where it was built, and Python's (the fallback)."""
    if request.param == "python":
        monkeypatch.setattr(signatures, "_reader", None)
    elif signatures._reader is None:
        pytest.skip(
            "planner._lstat is not built (no C compiler at install; test_lstat_reader says if one is)"
        )
    return str(request.param)


def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose signatures are read from now on, by either reader."""
    read: list[str] = []
    lstat = os.lstat

    def counted(path: str) -> os.stat_result:
        read.append(path)
        return lstat(path)

    monkeypatch.setattr(signatures.os, "lstat", counted)
    c_reader = signatures._reader
    if c_reader is not None:

        def counted_c(joined: bytes, count: int, threads: int) -> tuple[bytes, int]:
            read.extend(os.fsdecode(path) for path in joined.split(b"\0"))
            return c_reader(joined, count, threads)

        monkeypatch.setattr(signatures, "_reader", counted_c)
    return read


def roots(tmp_path: Path, sizes: list[int]) -> list[list[str]]:
    """Folders root0, root1, ... holding that many files each: per folder, its path then its files'."""
    made = []
    for which, size in enumerate(sizes):
        folder = tmp_path / f"root{which}"
        folder.mkdir()
        files = [folder / f"f{i}" for i in range(size)]
        for index, path in enumerate(files):
            path.write_text(str(index))
        made.append([str(folder), *(str(p) for p in files)])
    return made


@pytest.mark.parametrize("parallel", [False, True])
def test_checks_see_a_change_in_any_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool, reader: str
) -> None:
    monkeypatch.setattr(signatures, "CHUNK", 8)
    forks = [0]
    fork = os.fork

    def counted_fork() -> int:
        pid = fork()
        if pid:  # the parent counts; the child's copy is discarded
            forks[0] += 1
        return pid

    monkeypatch.setattr(signatures.os, "fork", counted_fork)
    # threads left over by earlier tests would make holds() refuse to fork (forking a threaded process is unsafe)
    monkeypatch.setattr(signatures.threading, "active_count", lambda: 1)
    checks = [0]
    holds = signatures.holds

    def checked(paths: list[str], digests: list[str]) -> bool:
        checks[0] += 1
        return holds(paths, digests, parallel)

    files = [tmp_path / f"f{i}" for i in range(50)]
    for index, path in enumerate(files):
        path.write_text(str(index))
    paths = [str(p) for p in files]
    recorded = signatures.recorded_digests([inputs.lstat_signature(p) or (0, 0, 0, 0, 0) for p in paths])
    assert recorded is not None and len(recorded) == 7
    assert checked(paths, recorded)
    for changed in (
        files[1],
        files[-1],
    ):  # the first chunk (the parent's) and the last (the child's when forked)
        changed.write_text("changed")
        assert not checked(paths, recorded)
        recorded = signatures.recorded_digests([inputs.lstat_signature(p) or (0, 0, 0, 0, 0) for p in paths])
        assert recorded is not None and checked(paths, recorded)
    files[-1].unlink()
    assert not checked(paths, recorded)
    # parallel=True must really split Python's check between two processes (each check here forks once); the C
    # reader never forks
    assert forks[0] == (checks[0] if parallel and reader == "python" else 0)


@pytest.mark.parametrize("parallel", [False, True])
def test_differences_name_the_changed_paths_of_each_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool, reader: str
) -> None:
    """differences answers for every list, whichever process checks which chunk: None where every path holds,
    else exactly the paths that changed, with their signatures now (None for a path that is gone)."""
    monkeypatch.setattr(signatures, "CHUNK", 4)
    monkeypatch.setattr(signatures.threading, "active_count", lambda: 1)
    forks = [0]
    fork = os.fork

    def counted_fork() -> int:
        pid = fork()
        if pid:
            forks[0] += 1
        return pid

    monkeypatch.setattr(signatures.os, "fork", counted_fork)
    lists = [paths[1:] for paths in roots(tmp_path, [3 + 5 * which for which in range(5)])]

    def recorded() -> list[bytes]:
        found = [signatures.pack_all([inputs.lstat_signature(p) or (0, 0, 0, 0, 0) for p in paths])
                 for paths in lists]  # fmt: skip
        return [f for f in found if f is not None]

    packed = recorded()
    assert signatures.differences(list(zip(lists, packed, strict=True)), parallel) == [None] * 5
    for which, positions in (
        (0, [0]),
        (4, [-1, 2]),
        (2, [5]),
        (3, [9, 10, 11]),
    ):  # first, last, middle chunks
        packed = recorded()
        for position in positions:
            Path(lists[which][position]).write_text("changed")
        expected: list[object] = [None] * 5
        expected[which] = {
            position % len(lists[which]): inputs.lstat_signature(lists[which][position])
            for position in positions
        }
        assert signatures.differences(list(zip(lists, packed, strict=True)), parallel) == expected
    packed = recorded()
    Path(lists[1][2]).unlink()
    assert signatures.differences(list(zip(lists, packed, strict=True)), parallel) == [
        None,
        {2: None},
        None,
        None,
        None,
    ]
    assert signatures.differences([], parallel) == []
    assert (forks[0] > 0) == (parallel and reader == "python")  # the parallel check really split the work


@pytest.mark.parametrize("joined", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
def test_a_failed_memo_check_hands_what_it_read_to_the_snapshot_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool, joined: bool
) -> None:
    """After a memo check fails, the walk snapshots' lists that it read (as one run of its paths, after the
    looked-up witnesses) are compared with what it read, without an lstat of their own; the answer is the one a
    fresh read gives, removed paths included; a list the memo did not read is read."""
    monkeypatch.setattr(signatures, "CHUNK", 4)
    monkeypatch.setattr(signatures.threading, "active_count", lambda: 1)
    lists = roots(tmp_path, [6 + 3 * which for which in range(3)])
    # a root folder is found first among the looked-up paths
    looked_up = [str(tmp_path), str(tmp_path / "root1")]

    def packed(paths: list[str]) -> bytes:
        found = signatures.pack_all([inputs.lstat_signature(p) or (0, 0, 0, 0, 0) for p in paths])
        assert found is not None
        return found

    memo_paths = looked_up + lists[0] + lists[1]  # the memo read the first two lists, not the third
    digests = signatures.chunk_digests(packed(memo_paths))
    recorded = [packed(paths) for paths in lists]
    Path(lists[0][3]).write_text("changed")
    Path(lists[1][-1]).unlink()
    Path(lists[2][2]).write_text("changed too")
    assert not signatures.holds(memo_paths, digests, parallel, "\0".join(memo_paths) if joined else None)
    joins = ["\0".join(paths) for paths in lists] if joined else []
    expected = [
        {3: inputs.lstat_signature(lists[0][3])},
        {0: inputs.lstat_signature(lists[1][0]), len(lists[1]) - 1: None},  # its folder lost an entry
        {2: inputs.lstat_signature(lists[2][2])},
    ]
    read = counted_reads(monkeypatch)
    assert signatures.differences(list(zip(lists, recorded, strict=True)), False, joins) == expected
    assert read == lists[2]  # only the list the memo check did not read
    # what was handed over is used once: the next check reads for itself
    read.clear()
    assert signatures.differences([(lists[0], recorded[0])], parallel=False) == expected[:1]
    assert read == lists[0]
    # asked in another order than the memo read them: each list is still found in what it read
    assert not signatures.holds(memo_paths, digests, parallel, "\0".join(memo_paths) if joined else None)
    read.clear()
    backwards = list(zip(lists[::-1], recorded[::-1], strict=True))
    assert signatures.differences(backwards, False, joins[::-1]) == expected[::-1]
    assert read == lists[2]


def test_a_run_of_joined_paths_is_found_only_whole() -> None:
    """The joined match: `part`'s paths must appear whole (between NULs) and in order; its index is counted in
    paths."""
    assert signatures._run_of("a\0b\0c", "b\0c") == (1, 6)
    assert signatures._run_of("a\0b\0c", "a\0b\0c") == (0, 6)
    assert signatures._run_of("xa\0b\0a\0b", "a\0b") == (2, 9)  # the first occurrence starts inside "xa"
    assert signatures._run_of("a\0bc", "a\0b") is None  # ends inside "bc"
    assert signatures._run_of("a\0c\0b", "a\0b") is None
    assert signatures._run_of("", "a") is None
    assert signatures._run_of("x\0a\0b", "a\0b\0c") is None  # runs past the end
    # from where the last run ended (offset 4 begins entry 2): the index counts from there
    assert signatures._run_of("a\0b\0a\0b\0c", "a\0b", 4, 2) == (2, 8)
    assert signatures._run_of("a\0b\0a\0b\0c", "a\0b", 8, 4) is None
