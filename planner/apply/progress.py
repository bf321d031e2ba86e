"""Progress for people (rich: one line per running step, bytes for transfers, an overall bar) and for scripts
(quiet: nothing until the summary). NO_COLOR is honoured by rich itself."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from planner.apply.executor import Events, Step, StepResult

MOVES_BYTES = ("push", "pull", "transfer")  # the phases whose steps report bytes

MARK = {
    "ok": "done",
    "fell-back": "fell back",
    "failed": "FAILED",
    "not-run": "not run",
    "cancelled": "cancelled",
}


class _Amount(ProgressColumn):
    """The overall row counts steps; a step that moves bytes shows how many so far; any other step, nothing."""

    def render(self, task: Task) -> Text:
        if task.fields.get("overall"):
            return Text(f"{int(task.completed)}/{int(task.total or 0)} steps")
        if task.fields.get("moves_bytes") and task.completed:
            return Text(decimal(int(task.completed)))
        return Text("")


class LiveProgress:
    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, markup=False, emoji=False, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), _Amount(), TimeElapsedColumn(),
            console=self.console, transient=True,
        )  # fmt: skip
        self.overall = self.progress.add_task("apply", total=total, overall=True)
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def events(self) -> Events:
        return Events(started=self.started, progress=self.advance, finished=self.finished)

    def started(self, step: Step) -> None:
        with self.lock:
            self.tasks[step.id] = self.progress.add_task(
                f"  {step.id}", total=None, moves_bytes=step.phase in MOVES_BYTES
            )
            if not self.console.is_terminal:  # no live display in a log: say when each step starts
                self.console.print(f"{'start':>9}  {step.id}", highlight=False, markup=False)

    def advance(self, step: Step, total: int) -> None:
        with self.lock:
            task = self.tasks.get(step.id)
            if task is not None:
                self.progress.update(task, completed=total)

    def finished(self, result: StepResult) -> None:
        with self.lock:
            task = self.tasks.pop(result.step.id, None)
            if task is not None:
                self.progress.remove_task(task)
            self.progress.advance(self.overall)
            line = f"{MARK[result.status]:>9}  {result.step.id}"
            if result.status == "ok":
                line += f"  {result.duration:.1f}s"
            elif result.error:
                line += f"  ({result.error})"
            self.progress.console.print(line, highlight=False, markup=False)
