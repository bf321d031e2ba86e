"""Walk snapshots: a root is walked again only when a folder it listed or an entry it sent changed, and keys
computed with snapshots always equal keys computed from scratch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planner.keys.compute
from planner.compose.options import ProjectOptions
from planner.errors import InputError, PlannerError
from planner.graph import build_graph
from planner.keys import snapshot
from planner.keys.compute import compute_keys
from planner.keys.manifest import Manifest
from planner.keys.statcache import StatCache
from planner.stack import load_stack
from tests.helpers import write_tree

PROJECT = {
    "compose.yaml": """\
        services:
          whole:
            build: .
          api:
            build:
              context: ./api
              dockerfile: ../Dockerfile.api
          web:
            build: ./web
        """,
    "Dockerfile": "FROM scratch\nCOPY . /all\n",
    "Dockerfile.api": "FROM scratch\nCOPY . /api\n",
    ".dockerignore": "*.log\n",
    "api/main.go": "package main\n",
    "api/lib/util.go": "package lib\n",
    "web/Dockerfile": "FROM scratch\nCOPY . /web\n",
    "web/.dockerignore": "dist\n!dist/keep.js\n",
    "web/src/app.js": "1\n",
    "web/dist/keep.js": "keep\n",
    "web/dist/drop.js": "drop\n",
}


def settle() -> None:
    time.sleep(0.06)


def manifests(root: Path, cache: StatCache) -> dict[str, Manifest]:
    stack = load_stack(ProjectOptions(environ={"HOME": str(root)}, cwd=str(root)))
    return compute_keys(build_graph(stack), cache, dict(stack.compose.environment))


def keys_and_files(found: dict[str, Manifest]) -> dict[str, tuple[str, dict[str, str]]]:
    return {name: (m.key, m.files) for name, m in found.items()}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(snapshot, "RACY_WINDOW_NS", 50_000_000)  # tests edit right after a plan
    root = write_tree(tmp_path / "p", PROJECT)
    settle()
    return root


class Walks:
    """Counts the roots actually walked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.roots: list[str] = []
        walk = planner.keys.compute.walk_contexts

        def counted(root: Path, *args: Any, **kwargs: Any) -> Any:
            self.roots.append(Path(root).name)
            return walk(root, *args, **kwargs)

        monkeypatch.setattr(planner.keys.compute, "walk_contexts", counted)

    def during(self, action: Any) -> list[str]:
        self.roots.clear()
        action()
        return sorted(self.roots)


def test_only_the_changed_root_is_walked_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = StatCache(tmp_path / "cache")
    walks = Walks(monkeypatch)
    assert walks.during(lambda: manifests(project, cache)) == ["api", "p", "web"]
    assert walks.during(lambda: manifests(project, cache)) == []
    (project / "web/src/app.js").write_text("2\n")
    # the whole-repo root sends web/src/app.js too, so it is walked again with web; api is not
    assert walks.during(lambda: manifests(project, cache)) == ["p", "web"]
    cache.close()


def test_a_file_the_ignore_file_drops_still_invalidates_its_folder(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = StatCache(tmp_path / "cache")
    walks = Walks(monkeypatch)
    manifests(project, cache)
    (project / "web/dist/new.js").write_text("excluded, but its folder changed\n")
    assert "web" in walks.during(lambda: manifests(project, cache))
    cache.close()


def test_a_damaged_snapshot_is_walked_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = StatCache(tmp_path / "cache")
    expected = keys_and_files(manifests(project, cache))
    for key in list(cache.store.cache.iterkeys()):
        if key[0] == "tree":
            cache.store.cache.set(key, {"paths": "x", "digests": [], "signatures": b"", "results": {}})
    walks = Walks(monkeypatch)
    assert walks.during(lambda: manifests(project, cache)) == ["api", "p", "web"]
    assert keys_and_files(manifests(project, cache)) == expected
    cache.close()


PATHS = ["api/main.go", "api/lib/util.go", "api/x.log", "web/src/app.js", "web/dist/keep.js", "web/dist/drop.js",
         "web/.dockerignore", ".dockerignore", "Dockerfile.api", "top.txt"]  # fmt: skip
CONTENTS = ["", "a\n", "b\n", "*.js\n", "dist\n", None, "chmod"]  # None: delete
EDITS = st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(CONTENTS)), min_size=1, max_size=5)


def outcome(root: Path, cache: StatCache) -> object:
    """Keys and manifest files, or the error: both ways of computing must agree on either."""
    try:
        return keys_and_files(manifests(root, cache))
    except PlannerError as exc:
        return exc.one_line()


def test_keys_with_snapshots_equal_keys_from_scratch(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through any edits, keys computed with snapshots equal keys from scratch; and snapshots were reused."""
    reused = [0]
    reuse = snapshot.reuse

    def counted(store: Any, key: tuple[str, int, str]) -> snapshot.TreeResults | None:
        found = reuse(store, key)
        reused[0] += found is not None
        return found

    monkeypatch.setattr(snapshot, "reuse", counted)

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(edits=EDITS)
    def through(edits: list[tuple[str, str | None]]) -> None:
        cache = StatCache(tmp_path / "cache")
        try:
            outcome(project, cache)
            for path, edit in edits:
                target = project / path
                if edit is None:
                    target.unlink(missing_ok=True)
                elif edit == "chmod":
                    if target.exists():
                        target.chmod(target.stat().st_mode ^ 0o100)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(edit)
                assert outcome(project, cache) == outcome(project, StatCache(None))
                if len(edits) % 2:
                    settle()  # half the runs let the tree age, so snapshots are kept between edits
        finally:
            cache.close()

    through()
    assert reused[0] > 0, "no snapshot was reused: the test compared walks from scratch only"


def test_a_failed_computation_keeps_no_snapshot(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = StatCache(tmp_path / "cache")
    hashes = StatCache.hashes
    calls: list[str] = []

    def failing_second(self: StatCache, root: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        calls.append(root)
        if len(calls) == 2:
            raise InputError(f"cannot read {root}/x: permission denied")
        return hashes(self, root, *args, **kwargs)

    monkeypatch.setattr(StatCache, "hashes", failing_second)
    with pytest.raises(InputError):
        manifests(project, cache)
    assert not [key for key in cache.store.cache.iterkeys() if key[0] == "tree"]
    cache.close()
