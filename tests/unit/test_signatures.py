"""Signature checks: a change in any chunk is seen, whether one process checks or two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from planner import inputs, signatures


@pytest.mark.parametrize("parallel", [False, True])
def test_checks_see_a_change_in_any_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
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
    # parallel=True must really split the check between two processes (each check here forks once)
    assert forks[0] == (checks[0] if parallel else 0)
