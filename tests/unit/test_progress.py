"""apply's live display (#12): each running step on its own line with its elapsed time, bytes for the steps that
move bytes, the overall count in steps; in a log (no terminal) a line when each step starts and ends; `-q` and
`--format json` show none of it (JSON alone on stdout)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from planner.apply import run
from planner.apply.executor import Step, StepContext, StepResult
from planner.apply.progress import LiveProgress
from planner.cli.app import app
from tests.helpers import write_tree


def noop(context: StepContext) -> None:
    return None


def shown(progress: LiveProgress) -> dict[str, str]:
    """The live display as plain text, one line per task, by its first word."""
    text = StringIO()
    Console(file=text, width=120, color_system=None).print(progress.progress.get_renderable())
    lines = text.getvalue().splitlines()
    return {line.split()[0]: line for line in lines if line.strip()}


def test_running_steps_show_elapsed_time_and_bytes_for_transfers() -> None:
    printed = StringIO()
    console = Console(file=printed, force_terminal=True, width=120, color_system=None)
    transfer = Step("transfer:app:sandbox", "app", "transfer", noop)
    build = Step("build:app", "app", "build", noop)
    with LiveProgress(2, console) as progress:
        progress.started(transfer)
        progress.started(build)
        progress.advance(transfer, 5_300_000)
        lines = shown(progress)
        assert "5.3 MB" in lines["transfer:app:sandbox"] and "0:00:0" in lines["transfer:app:sandbox"]
        assert "0:00:0" in lines["build:app"]
        assert "byte" not in lines["build:app"] and "B " not in lines["build:app"]  # a build moves no bytes
        assert "0/2 steps" in lines["apply"] and "byte" not in lines["apply"]  # steps, not bytes
        result = StepResult(build, "ok", duration=1.5)
        progress.finished(result)
        lines = shown(progress)
        assert "build:app" not in lines and "1/2 steps" in lines["apply"]
    assert "done  build:app  1.5s" in printed.getvalue()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A one-service project whose apply runs one stand-in transfer step (no Docker: the plan is offline)."""
    root = write_tree(
        tmp_path, {"compose.yaml": "services:\n  s:\n    build: .\n", "Dockerfile": "FROM scratch\n"}
    )
    for name in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "PLANNER_RULES", "DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    real_make_plan = run.make_plan

    def offline_plan(*args: Any, **kwargs: Any) -> Any:
        return real_make_plan(*args, **{**kwargs, "offline": True})

    def transfer(context: StepContext) -> None:
        context.report_bytes(2_000_000)

    monkeypatch.setattr(run, "make_plan", offline_plan)
    monkeypatch.setattr(run, "refuse_unrunnable", lambda plan: None)
    monkeypatch.setattr(
        run, "make_steps", lambda ctx, steps: [Step("transfer:s:sandbox", "s", "transfer", transfer)]
    )
    return root


def test_apply_says_when_each_step_starts_and_ends_in_a_log(project: Path) -> None:
    result = CliRunner().invoke(app, ["apply"])
    assert result.exit_code == 0, result.output
    assert "    start  transfer:s:sandbox" in result.stderr
    assert "     done  transfer:s:sandbox" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("argv", [["-q"], ["--format", "json"]], ids=["quiet", "json"])
def test_quiet_and_json_show_no_progress(project: Path, argv: list[str]) -> None:
    result = CliRunner().invoke(app, ["apply", *argv])
    assert result.exit_code == 0, result.output
    assert "start" not in result.stderr and "done  transfer" not in result.stderr
    if "json" in argv:
        summary = json.loads(result.stdout)  # stdout is the JSON summary and nothing else
        assert (
            summary["steps"][0]["step"] == "transfer:s:sandbox" and summary["steps"][0]["bytes"] == 2_000_000
        )
    else:
        assert result.stdout == ""
