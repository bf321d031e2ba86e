"""An unusable cache (issue #12): a file at the cache path, a read-only cache folder, a lock that cannot be
made. planner runs without the cache (one warning line), never deletes what is not clearly its cache, and the
apply lock falls back to a private folder under the temp folder.

Tests run as root here, and root writes through permission bits: the read-only case uses a real read-only bind
mount (skipped where mounting is not allowed), the lock case an os.open that refuses the lock path."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner.apply import lock as lock_module
from planner.apply import run
from planner.apply.executor import Step, StepContext
from planner.apply.lock import project_lock
from planner.compose.options import ProjectOptions
from planner.keys.store import Store
from planner.plan.memo import Answer, Witnessed, load, save
from planner.plan.pipeline import make_plan
from tests.helpers import write_tree


def project(root: Path, cache: Path) -> ProjectOptions:
    write_tree(
        root, {"compose.yaml": "name: p\nservices:\n  app:\n    build: .\n", "Dockerfile": "FROM scratch\n"}
    )
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PLANNER_CACHE_DIR": str(cache)}
    return ProjectOptions(project_directory=str(root), environ=environ, cwd=str(root))


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("planner: warning")]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder the lock falls back to, private to the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(lock_module.tempfile, "gettempdir", lambda: str(folder))
    return folder


def run_everything(options: ProjectOptions, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """What plan, apply (lock, steps, kept logs), explain and the memo do with the cache."""
    planned = make_plan(options, None, [], offline=True, store=store)
    assert planned.manifests["app"].key
    assert store.manifest(planned.manifests["app"].key) is None  # nothing kept, nothing answered

    def build(step: StepContext) -> None:
        step.log("built")

    monkeypatch.setattr(run, "make_steps", lambda ctx, plan_steps: [Step("build:app", "app", "build", build)])
    with project_lock(store.lock_path(options.cwd, "p")) as waited:
        assert not waited
        result = run.execute(planned, run.ApplyOptions(quiet=True), store)
    assert result.exit_code == 0 and result.logs == {}
    memo = os.path.join(store.directory, "memo", "x.memo")
    assert save(memo, Witnessed({}), Answer("out"), {}) is False  # not saved, no exception
    assert load(memo, {}) is None


def test_a_file_at_the_cache_path_is_left_alone_and_planner_runs_without_a_cache(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    cache.write_text("the user's notes\n")
    options = project(tmp_path / "p", cache)
    with Store.open(cache) as store:
        assert store.cache is None
        run_everything(options, store, monkeypatch)
    assert cache.read_text() == "the user's notes\n"  # never deleted, never "recreated"
    (line,) = warnings(capsys.readouterr().err)  # store, lock and memo: one line
    assert "is not a folder; running without a cache" in line and "recreating" not in line
    # the apply lock was really taken, under the private temp folder
    (held,) = (private_tmp / f"planner-locks-{os.getuid()}").iterdir()
    assert held.name.startswith("p-") and held.suffix == ".lock"


def test_the_apply_lock_falls_back_to_the_temp_folder_and_still_excludes(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(tmp_path / "cache")
    path = store.lock_path(str(tmp_path), "p")
    real_open = os.open

    def refusing(file: str | bytes | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if f"{os.sep}locks{os.sep}" in str(file):  # any lock beside a cache
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, mode)

    monkeypatch.setattr(lock_module.os, "open", refusing)
    with project_lock(path):
        fallback = lock_module.fallback_path(path)
        assert fallback.parent == private_tmp / f"planner-locks-{os.getuid()}"
        assert fallback.parent.stat().st_mode & 0o777 == 0o700
        other = real_open(fallback, os.O_RDWR)
        try:  # another apply of the same project would wait
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    (line,) = warnings(capsys.readouterr().err)
    assert f"apply lock {path} cannot be made" in line and str(fallback) in line

    # a fallback folder that is not the user's own (here: others may write it) is not trusted: no lock at all
    fallback.parent.chmod(0o777)
    with (
        Store.open(tmp_path / "cache2") as other_store,
        project_lock(other_store.lock_path("/q", "q")) as waited,
    ):
        assert waited is False
    assert "running without it" in capsys.readouterr().err
    store.close()


def test_a_folder_that_is_not_clearly_a_cache_is_never_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    (cache / "cache.db").mkdir(parents=True)  # diskcache cannot open it; nor is it a damaged cache file
    (cache / "mine.txt").write_text("keep\n")
    with Store.open(cache) as store:
        assert store.cache is None
    assert (cache / "mine.txt").read_text() == "keep\n" and (cache / "cache.db").is_dir()
    (line,) = warnings(capsys.readouterr().err)
    assert "running without a cache" in line


@contextlib.contextmanager
def read_only_bind(folder: Path) -> Iterator[None]:
    try:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot bind-mount here (needs root and mount rights): {exc}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def test_a_read_only_cache_folder(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    options = project(tmp_path / "p", cache)
    Store.open(cache).close()  # a real cache, then made read-only
    before = sorted(p.name for p in cache.iterdir())
    with read_only_bind(cache):
        with pytest.raises(OSError, match="Read-only"):
            (cache / "probe").write_text("x")  # really unwritable, even for root
        with Store.open(cache) as store:
            assert store.cache is None
            run_everything(options, store, monkeypatch)
        assert sorted(p.name for p in cache.iterdir()) == before
    (line,) = warnings(capsys.readouterr().err)
    assert "is not writable; running without a cache" in line
