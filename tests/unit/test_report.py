"""`planner report`: per-phase times from a timing log; only work that happened counts, and a log that several
applies appended to is read per run."""

from __future__ import annotations

import io
from pathlib import Path

from typer.testing import CliRunner

from planner.apply.executor import Step, StepResult
from planner.apply.timing import TimingLog, analyse, read_log
from planner.cli.app import app


def result(step_id: str, phase: str, status: str, start: float, duration: float, size: int = 0,
           deps: list[str] | None = None) -> StepResult:  # fmt: skip
    step = Step(step_id, step_id.split(":")[1], phase, lambda ctx: None, deps or [])
    return StepResult(step, status, start=start, duration=duration, bytes=size)  # type: ignore[arg-type]


def write_runs(path: Path) -> None:
    with path.open("a") as handle:
        first = TimingLog(handle)
        first.run = "run-1"
        first.write(result("build:old", "build", "ok", 100.0, 9.0))
    with path.open("a") as handle:
        second = TimingLog(handle)
        second.run = "run-2"
        second.write(result("build:app", "build", "ok", 200.0, 2.0))
        second.write(result("push:app", "push", "fell-back", 202.0, 5.0, 157_300_000, ["build:app"]))
        second.write(result("transfer:app:sandbox", "transfer", "ok", 207.0, 3.0, 21_000_000, ["push:app"]))


def test_the_last_run_is_reported_and_a_failed_push_claims_no_bytes(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    write_runs(log)
    report = analyse(read_log(log))
    assert report.runs == 2 and "run-2" in report.shown
    assert set(report.rows) == {"app"}  # run-1's node is not mixed in
    assert report.bytes.get("push", 0) == 0  # the push fell back: nothing was shared
    assert report.bytes["transfer"] == 21_000_000
    assert report.unfinished == {"push:app": "fell-back"}
    assert report.critical_path == ["build:app", "push:app", "transfer:app:sandbox"]
    assert round(report.wall, 3) == 10.0


def test_all_runs_merge_on_request(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    write_runs(log)
    report = analyse(read_log(log), all_runs=True)
    assert set(report.rows) == {"app", "old"} and report.shown == "all runs"


def test_the_cli_says_which_run_it_shows(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    write_runs(log)
    shown = CliRunner().invoke(app, ["report", str(log)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "the log holds 2 applies; this is the last run (run-2) (--all merges them)" in shown.output
    assert "not done: push:app (fell-back)" in shown.output
    merged = CliRunner().invoke(app, ["report", "--all", str(log)], terminal_width=200)
    assert "this is all runs" in merged.output


def test_a_log_written_before_run_ids_is_one_run(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    handle = io.StringIO()
    TimingLog(handle).write(result("build:app", "build", "ok", 1.0, 1.0))
    log.write_text(handle.getvalue().replace('"run": ', '"old_run": '))
    assert analyse(read_log(log)).runs == 1
