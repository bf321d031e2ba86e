"""A dependency-driven step scheduler with a bounded pool.

A step starts as soon as the steps it depends on have succeeded (not level by level), so a transfer of one node
overlaps the builds of others. A failed step marks everything downstream `not-run`; without `keep_going`
nothing new starts after the first failure. Ctrl-C cancels running steps through their cancel hooks and starts
nothing new; no step records anything it did not finish.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

from planner.base.errors import PlannerError, exception_text

Status = Literal["ok", "fell-back", "failed", "not-run", "cancelled"]
DONE: tuple[Status, ...] = ("ok", "fell-back")  # what lets the steps after it run


class Cancelled(Exception):
    """Raised inside a step whose run was cancelled."""


class FellBack(PlannerError):
    """A step did not do its work, and the plan's fallback does it instead (e.g. a push that failed: the
    deliveries after it stream save | load). Recorded as `fell-back`, never as done; the steps after it run."""


@dataclass
class StepContext:
    """Handed to a running step: progress reporting and cancellation."""

    step: Step
    cancel_event: threading.Event
    report_bytes: Callable[[int], None]
    log: Callable[[str], None]
    _cancel_hooks: list[Callable[[], None]] = field(default_factory=list)

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Register how to abort the work in flight (e.g. close an HTTP stream)."""
        self._cancel_hooks.append(hook)
        if self.cancel_event.is_set():
            hook()

    def check(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()


@dataclass
class Step:
    id: str
    node: str
    phase: str  # build | export | pull | tag | stamp | push | transfer
    run: Callable[[StepContext], None]
    deps: list[str] = field(default_factory=list)
    detail: str = ""
    # applied to every log line the step keeps and to its error (apply masks secret arg values with it)
    redact: Callable[[str], str] = lambda text: text


@dataclass
class StepResult:
    step: Step
    status: Status
    start: float = 0.0
    duration: float = 0.0
    bytes: int = 0
    error: str | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class Events:
    """Callbacks for progress display and timing logs (all optional)."""

    started: Callable[[Step], None] = lambda step: None
    progress: Callable[[Step, int], None] = lambda step, total: None
    finished: Callable[[StepResult], None] = lambda result: None


class Executor:
    def __init__(self, steps: list[Step], jobs: int, keep_going: bool, events: Events | None = None) -> None:
        self.steps = {s.id: s for s in steps}
        for step in steps:
            missing = [d for d in step.deps if d not in self.steps]
            if missing:
                raise ValueError(f"step {step.id} depends on unknown steps {missing}")
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.events = events or Events()
        self.results: dict[str, StepResult] = {}
        self.cancel_event = threading.Event()
        self.interrupted = False
        self._contexts: dict[str, StepContext] = {}

    def _run_step(self, step: Step) -> StepResult:
        result = StepResult(step, "ok", start=time.time())
        counted = [0]

        def report(total: int) -> None:
            counted[0] = total
            self.events.progress(step, total)

        context = StepContext(
            step, self.cancel_event, report, lambda line: result.log.append(step.redact(line))
        )
        self._contexts[step.id] = context
        began = time.monotonic()
        self.events.started(step)
        try:
            context.check()
            step.run(context)
        except Cancelled:
            result.status, result.error = "cancelled", "interrupted"
        except FellBack as exc:
            result.status, result.error = (
                ("cancelled", "interrupted") if self.cancel_event.is_set() else ("fell-back", exc.message)
            )
        except PlannerError as exc:
            result.status, result.error = (
                ("cancelled", "interrupted") if self.cancel_event.is_set() else ("failed", exc.message)
            )
        except Exception as exc:  # a library error inside a step: report it, keep the others consistent
            status: Status = "cancelled" if self.cancel_event.is_set() else "failed"
            result.status, result.error = status, exception_text(exc)
        if result.error is not None:
            result.error = step.redact(result.error)
        result.duration = time.monotonic() - began
        result.bytes = counted[0]
        self._contexts.pop(step.id, None)
        return result

    def cancel(self) -> None:
        self.interrupted = True
        self.cancel_event.set()
        for context in list(self._contexts.values()):
            for hook in context._cancel_hooks:
                with contextlib.suppress(Exception):
                    hook()

    def _priorities(self) -> dict[str, int]:
        """How many steps wait on each step, transitively: ready steps start longest-chain first, so the
        critical path is not queued behind independent work."""
        dependents: dict[str, list[str]] = {s: [] for s in self.steps}
        for step in self.steps.values():
            for dep in step.deps:
                dependents[dep].append(step.id)
        depth: dict[str, int] = {}

        def chain(step_id: str) -> int:
            if step_id not in depth:
                depth[step_id] = 1  # provisional: a cycle stops here, and run() reports it as stuck
                depth[step_id] = 1 + max((chain(d) for d in dependents[step_id]), default=0)
            return depth[step_id]

        return {step_id: chain(step_id) for step_id in self.steps}

    def run(self) -> dict[str, StepResult]:
        priority = self._priorities()
        pending = dict(sorted(self.steps.items(), key=lambda item: -priority[item[0]]))
        running: dict[Future[StepResult], Step] = {}
        stop_new = False
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="step") as pool:
            while pending or running:
                if not stop_new:
                    for step_id in list(pending):
                        step = pending[step_id]
                        states = [self.results[d].status if d in self.results else None for d in step.deps]
                        if any(s not in (None, *DONE) for s in states):
                            failed = [
                                d
                                for d in step.deps
                                if d in self.results and self.results[d].status not in DONE
                            ]
                            self._finish(StepResult(step, "not-run", error=f"needs {', '.join(failed)}"))
                            del pending[step_id]
                        elif all(s in DONE for s in states) and len(running) < self.jobs:
                            running[pool.submit(self._run_step, step)] = step
                            del pending[step_id]
                if not running:
                    if pending and stop_new:
                        for step in pending.values():
                            reason = "interrupted" if self.interrupted else "stopped after a failure"
                            self._finish(StepResult(step, "not-run", error=reason))
                        pending.clear()
                    if (
                        pending
                        and not stop_new
                        and not any(all(d in self.results for d in s.deps) for s in pending.values())
                    ):
                        raise RuntimeError("step graph is stuck (a dependency cycle?)")
                    continue
                try:
                    done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    self.cancel()
                    stop_new = True
                    continue
                for future in done:
                    running.pop(future)
                    result = future.result()
                    self._finish(result)
                    if result.status == "failed" and not self.keep_going:
                        stop_new = True
                    if result.status == "cancelled":
                        stop_new = True
        return self.results

    def _finish(self, result: StepResult) -> None:
        self.results[result.step.id] = result
        self.events.finished(result)
