"""A manifest's file lines are kept as runs of paths (keys/manifest.py `chunk_ranges`, store.py): every path in
exactly one run, each run the paths that start with some string, kept once by content; a manifest read back is
the one put; a one-file edit keeps one new run."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.keys import manifest as manifest_module
from planner.keys.manifest import Manifest, chunk_ranges
from planner.keys.store import Store

NAMES = st.text(alphabet="ab./-é\udcff", min_size=1, max_size=6)
PATHS = st.lists(st.lists(NAMES, min_size=1, max_size=4).map("/".join), max_size=60, unique=True)


def common_prefix(paths: list[str]) -> str:
    first, last = min(paths), max(paths)
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    return first[:length]


@settings(max_examples=300)
@given(paths=PATHS, limit=st.integers(1, 8))
def test_runs_cover_the_paths_and_are_prefix_runs(paths: list[str], limit: int) -> None:
    paths = sorted(paths)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_module, "CHUNK_ENTRIES", limit)
        runs = chunk_ranges(paths)
    assert [at for lo, hi in runs for at in range(lo, hi)] == list(range(len(paths)))
    for lo, hi in runs:
        assert hi - lo <= limit or len(set(paths[lo:hi])) == hi - lo
        if hi - lo > 1:  # a run of several paths is every path that starts with their common prefix
            prefix = common_prefix(paths[lo:hi])
            assert [p for p in paths if p.startswith(prefix)] == paths[lo:hi]


@settings(max_examples=200)
@given(paths=PATHS, extra=st.lists(NAMES, min_size=1, max_size=4).map("/".join), limit=st.integers(1, 8))
def test_a_path_added_leaves_the_runs_away_from_it(paths: list[str], extra: str, limit: int) -> None:
    """Runs are cut by the paths in them: adding a path changes at most the one run whose range it falls in
    (which may grow, or be cut into smaller runs); every other run is kept as it was."""
    before = sorted(paths)
    after = sorted({*paths, extra})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_module, "CHUNK_ENTRIES", limit)
        old = {tuple(before[lo:hi]) for lo, hi in chunk_ranges(before)}
        new = {tuple(after[lo:hi]) for lo, hi in chunk_ranges(after)}
    assert len(old - new) <= 1
    for run in new - old:
        assert any(set(run) - {extra} <= set(was) for was in old | {()})


def tree(count: int, edited: int | None = None) -> dict[str, str]:
    return {
        f"context/svc{i % 10}/pkg{i % 50:02d}/f{i}.txt": f"f 644 {i:032x}{'e' if i == edited else ''}"
        for i in range(count)
    }


def test_manifests_read_back_and_an_edit_keeps_one_new_run(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "cache")
    before = Manifest(node="all", key="k1", files=tree(20_000), trees={"context": "t1"})
    store.put_manifests({"all": before})
    read = store.manifest("k1")
    assert read is not None
    assert read.files == before.files
    assert list(read.files) == sorted(before.files)
    runs = [key for key in store.cache.iterkeys() if key[0] == "lines"]
    assert len(runs) >= 10
    after = Manifest(node="all", key="k2", files=tree(20_000, edited=12_345), trees={"context": "t2"})
    store.put_manifests({"all": after})
    assert len([key for key in store.cache.iterkeys() if key[0] == "lines"]) == len(runs) + 1
    again = store.manifest("k2")
    assert again is not None
    assert again.files == after.files
    assert store.manifest("k1") == read
    store.close()
