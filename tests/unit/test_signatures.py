"""Signature checks: a change in any chunk is seen, whether one process checks or two."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import inputs, signatures


@pytest.mark.parametrize("parallel", [False, True])
def test_checks_see_a_change_in_any_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    monkeypatch.setattr(signatures, "CHUNK", 8)
    files = [tmp_path / f"f{i}" for i in range(50)]
    for index, path in enumerate(files):
        path.write_text(str(index))
    paths = [str(p) for p in files]
    recorded = signatures.recorded_digests([inputs.lstat_signature(p) or (0, 0, 0, 0, 0) for p in paths])
    assert recorded is not None and len(recorded) == 7
    assert signatures.holds(paths, recorded, parallel)
    for changed in (
        files[1],
        files[-1],
    ):  # the first chunk (the parent's) and the last (the child's when forked)
        changed.write_text("changed")
        assert not signatures.holds(paths, recorded, parallel)
        recorded = signatures.recorded_digests([inputs.lstat_signature(p) or (0, 0, 0, 0, 0) for p in paths])
        assert recorded is not None and signatures.holds(paths, recorded, parallel)
    files[-1].unlink()
    assert not signatures.holds(paths, recorded, parallel)
