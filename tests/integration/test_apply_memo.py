"""A no-op `planner apply` is answered from the memo only while the files and the daemons' answers hold."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import planner.apply.run
from planner.cli.main import main
from planner.plan import memo

pytestmark = pytest.mark.docker


class Applies:
    """`planner apply` in-process, counting the full runs (a memo answer plans nothing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full_runs = 0
        original = planner.apply.run.make_plan

        def counted(*args: object, **kwargs: object) -> planner.plan.Planned:
            self.full_runs += 1
            return original(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(planner.apply.run, "make_plan", counted)

    def apply(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, bool]:
        """(exit code, stderr, whether the memo answered)."""
        before = self.full_runs
        try:
            main(["apply", "-q", *args])
            code = 0
        except SystemExit as exited:
            code = int(exited.code or 0)
        return code, capsys.readouterr().err, self.full_runs == before


def test_noop_apply_is_remembered_until_a_daemon_or_a_file_changes(
    basic: Path,
    tmp_path: Path,
    project_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import docker

    monkeypatch.chdir(basic)
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(memo, "RACY_WINDOW_NS", 50_000_000)  # the test edits files right after runs
    time.sleep(0.06)
    runs = Applies(monkeypatch)

    code, built, hit = runs.apply(capsys)
    assert (code, hit) == (0, False) and "2 build" in built
    code, noop, hit = runs.apply(capsys)
    assert (code, hit) == (0, False) and "2 skip" in noop and "nothing to do" in noop
    code, answered, hit = runs.apply(capsys)
    assert (code, hit) == (0, True)
    assert answered == noop

    # The daemon lost an image: the listing answers differently, so the apply runs in full and rebuilds.
    client = docker.from_env()
    client.images.remove(f"{project_name}-api:latest", force=True)
    code, rebuilt, hit = runs.apply(capsys)
    assert (code, hit) == (0, False) and "build" in rebuilt
    runs.apply(capsys)
    assert runs.apply(capsys)[2]

    # A file changed: the witnesses differ.
    (basic / "web/index.html").write_text("<h1>memo</h1>\n")
    code, edited, hit = runs.apply(capsys)
    assert (code, hit) == (0, False) and "1 build" in edited

    # Forced rebuilds and timing logs are never answered from the memo.
    runs.apply(capsys)
    assert runs.apply(capsys)[2]
    assert not runs.apply(capsys, "--timing-log", str(tmp_path / "t.jsonl"))[2]
    code, forced, hit = runs.apply(capsys, "--rebuild", "web")
    assert (code, hit) == (0, False) and "1 build" in forced
