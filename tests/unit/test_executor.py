"""The step executor without Docker: steps are plain Python callables.

Concurrency is observed with events, barriers and counters, never by timing; every wait has a timeout so a
broken executor fails a test instead of hanging it."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import pytest

from planner.apply import executor as executor_module
from planner.apply.executor import Cancelled, Events, Executor, Step, StepContext, StepResult
from planner.base.errors import PlannerError

TIMEOUT = 5.0  # seconds; reached only when the executor misbehaves


class Probe:
    """Records what steps and event callbacks saw, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trace: list[str] = []  # "start X" / "end X", in the order they happened
        self.running = 0
        self.most_running = 0
        self.started: list[str] = []  # Events.started
        self.finished: list[StepResult] = []  # Events.finished
        self.progress: list[tuple[str, int]] = []  # Events.progress

    def events(self) -> Events:
        def started(step: Step) -> None:
            with self.lock:
                self.started.append(step.id)

        def progress(step: Step, total: int) -> None:
            with self.lock:
                self.progress.append((step.id, total))

        return Events(started=started, progress=progress, finished=self.finished.append)

    def step(
        self, step_id: str, deps: list[str] | None = None, body: Callable[[StepContext], None] | None = None
    ) -> Step:
        """A step that records its start and end around `body`, and how many steps ran at once."""

        def run(context: StepContext) -> None:
            with self.lock:
                self.trace.append(f"start {step_id}")
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            try:
                if body is not None:
                    body(context)
            finally:
                with self.lock:
                    self.running -= 1
                    self.trace.append(f"end {step_id}")

        return Step(step_id, node=step_id, phase="build", run=run, deps=deps or [])

    def ran(self, step_id: str) -> bool:
        return f"start {step_id}" in self.trace


def statuses(results: dict[str, StepResult]) -> dict[str, str]:
    return {step_id: result.status for step_id, result in results.items()}


def waits_for(event: threading.Event) -> Callable[[StepContext], None]:
    def body(context: StepContext) -> None:
        assert event.wait(TIMEOUT), "the event this step waits for never came"

    return body


def fails(message: str = "boom") -> Callable[[StepContext], None]:
    def body(context: StepContext) -> None:
        raise PlannerError(message)

    return body


# --- construction ---------------------------------------------------------------------------------------------


def test_an_unknown_dependency_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown steps"):
        Executor([Step("a", "a", "build", lambda c: None, deps=["ghost"])], jobs=1, keep_going=False)


@pytest.mark.parametrize("cycle", [{"a": ["a"]}, {"a": ["b"], "b": ["a"]}], ids=["self", "two"])
def test_a_dependency_cycle_is_reported_not_run_forever(cycle: dict[str, list[str]]) -> None:
    probe = Probe()
    steps = [probe.step(step_id, deps) for step_id, deps in cycle.items()]
    with pytest.raises(RuntimeError, match="cycle"):
        Executor(steps, jobs=2, keep_going=False).run()
    assert probe.trace == []


# --- scheduling -----------------------------------------------------------------------------------------------


def test_no_step_starts_before_its_dependencies_finished_ok() -> None:
    probe = Probe()
    graph = {
        "base": [],
        "left": ["base"],
        "right": ["base"],
        "top": ["left", "right"],
        "other": [],
        "after-other": ["other", "left"],
    }
    steps = [probe.step(step_id, deps) for step_id, deps in graph.items()]
    results = Executor(steps, jobs=4, keep_going=False).run()
    assert statuses(results) == dict.fromkeys(graph, "ok")
    for step_id, deps in graph.items():
        for dep in deps:
            assert probe.trace.index(f"end {dep}") < probe.trace.index(f"start {step_id}"), (step_id, dep)


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_independent_steps_run_up_to_jobs_at_once_and_never_more(jobs: int) -> None:
    probe = Probe()
    together = threading.Barrier(jobs, timeout=TIMEOUT)  # passes only when `jobs` steps run at once

    def body(context: StepContext) -> None:
        together.wait()

    steps = [probe.step(f"s{i}", body=body) for i in range(jobs * 3)]
    results = Executor(steps, jobs=jobs, keep_going=False).run()
    assert set(statuses(results).values()) == {"ok"}, {r.error for r in results.values()}
    assert probe.most_running == jobs


def test_jobs_below_one_still_runs_one_at_a_time() -> None:
    probe = Probe()
    results = Executor([probe.step(f"s{i}") for i in range(4)], jobs=0, keep_going=False).run()
    assert set(statuses(results).values()) == {"ok"}
    assert probe.most_running == 1


def test_a_ready_step_starts_without_waiting_for_its_level() -> None:
    """`slow` (level 0) waits until `next` (level 1, after the quick `first`) has started: a level-by-level
    scheduler would leave it waiting forever."""
    probe = Probe()
    next_started = threading.Event()
    steps = [
        probe.step("slow", body=waits_for(next_started)),
        probe.step("first"),
        probe.step("next", ["first"], body=lambda context: next_started.set()),
    ]
    results = Executor(steps, jobs=2, keep_going=False).run()
    assert statuses(results) == {"first": "ok", "next": "ok", "slow": "ok"}
    assert probe.trace.index("start next") < probe.trace.index("end slow")


def test_ready_steps_start_longest_chain_first() -> None:
    probe = Probe()
    steps = [
        probe.step("lone1"),
        probe.step("lone2"),
        probe.step("a"),
        probe.step("b", ["a"]),
        probe.step("c", ["b"]),
    ]
    Executor(steps, jobs=1, keep_going=False, events=probe.events()).run()
    assert probe.started[:2] == ["a", "b"]  # the critical path is not queued behind independent work
    assert sorted(probe.started[2:]) == ["c", "lone1", "lone2"]


# --- failures -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_going", [False, True])
def test_a_failed_steps_dependents_are_not_run(keep_going: bool) -> None:
    probe = Probe()
    steps = [probe.step("a", body=fails("cannot build a")), probe.step("b", ["a"]), probe.step("c", ["b"])]
    results = Executor(steps, jobs=2, keep_going=keep_going).run()
    assert statuses(results) == {"a": "failed", "b": "not-run", "c": "not-run"}
    assert results["a"].error == "cannot build a"
    assert not probe.ran("b") and not probe.ran("c")
    if keep_going:
        assert (results["b"].error, results["c"].error) == ("needs a", "needs b")
    else:
        assert results["b"].error and results["c"].error


def independent_branches(probe: Probe) -> tuple[list[Step], threading.Event]:
    """`fail` fails at once while `busy` is running; `busy` finishes only after the failure was recorded.
    `after` needs `busy`; `queued` is independent but has no free slot until `fail` is done."""
    failure_recorded = threading.Event()
    steps = [
        probe.step("fail", body=fails()),
        probe.step("busy", body=waits_for(failure_recorded)),
        probe.step("after", ["busy"]),
        probe.step("queued"),
    ]
    return steps, failure_recorded


def test_without_keep_going_nothing_new_starts_after_a_failure() -> None:
    probe = Probe()
    steps, failure_recorded = independent_branches(probe)

    def finished(result: StepResult) -> None:
        probe.finished.append(result)
        if result.status == "failed":
            failure_recorded.set()

    executor = Executor(steps, jobs=2, keep_going=False, events=Events(finished=finished))
    results = executor.run()
    # the running branch is let finish (not cancelled); nothing else starts
    assert statuses(results) == {"fail": "failed", "busy": "ok", "after": "not-run", "queued": "not-run"}
    assert results["after"].error == results["queued"].error == "stopped after a failure"
    assert not probe.ran("after") and not probe.ran("queued")
    assert not executor.interrupted and not executor.cancel_event.is_set()


def test_with_keep_going_independent_branches_finish() -> None:
    probe = Probe()
    steps, failure_recorded = independent_branches(probe)

    def finished(result: StepResult) -> None:
        if result.status == "failed":
            failure_recorded.set()

    results = Executor(steps, jobs=2, keep_going=True, events=Events(finished=finished)).run()
    assert statuses(results) == {"fail": "failed", "busy": "ok", "after": "ok", "queued": "ok"}
    assert probe.trace.index("end busy") < probe.trace.index("start after")


def test_a_library_error_fails_its_step_with_a_short_reason() -> None:
    def body(context: StepContext) -> None:
        raise ValueError("bad value\nand a long traceback-like tail")

    results = Executor([Step("a", "a", "build", body)], jobs=1, keep_going=True).run()
    assert (results["a"].status, results["a"].error) == ("failed", "bad value")


def test_a_step_that_gives_up_as_cancelled_stops_new_work() -> None:
    def body(context: StepContext) -> None:
        raise Cancelled()

    probe = Probe()
    steps = [probe.step("a", body=body), probe.step("b", ["a"]), probe.step("c")]
    executor = Executor(steps, jobs=1, keep_going=True)
    results = executor.run()
    assert statuses(results) == {"a": "cancelled", "b": "not-run", "c": "not-run"}
    assert not probe.ran("b") and not probe.ran("c")
    assert not executor.interrupted


# --- cancellation ---------------------------------------------------------------------------------------------


class Interruptible:
    """Running steps of every kind, for a Ctrl-C while they run (jobs=4: `queued` and `later` wait)."""

    def __init__(self, probe: Probe) -> None:
        self.all_running = threading.Barrier(5, timeout=TIMEOUT)  # four steps and whoever interrupts
        self.hooks: list[str] = []

        def checking(context: StepContext) -> None:  # polls check() until cancelled
            context.on_cancel(lambda: self.hooks.append("checking"))
            self.all_running.wait()
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                context.check()
                time.sleep(0.001)

        def stream(context: StepContext) -> None:  # a hook aborts its I/O, which then errors
            closed = threading.Event()
            context.on_cancel(closed.set)
            self.all_running.wait()
            assert closed.wait(TIMEOUT)
            raise PlannerError("stream closed")

        def library(context: StepContext) -> None:  # a library error once cancelled
            self.all_running.wait()
            assert context.cancel_event.wait(TIMEOUT)
            raise OSError("connection reset")

        def finishing(context: StepContext) -> None:  # completes its work anyway: that is recorded
            self.all_running.wait()
            assert context.cancel_event.wait(TIMEOUT)

        self.steps = [
            probe.step("checking", body=checking),
            probe.step("stream", body=stream),
            probe.step("library", body=library),
            probe.step("finishing", body=finishing),
            probe.step("queued"),
            probe.step("later", ["checking"]),
        ]

    def check(self, executor: Executor, results: dict[str, StepResult], probe: Probe) -> None:
        assert executor.interrupted and executor.cancel_event.is_set()
        assert statuses(results) == {
            "checking": "cancelled",
            "stream": "cancelled",
            "library": "cancelled",
            "finishing": "ok",
            "queued": "not-run",
            "later": "not-run",
        }
        assert results["checking"].error == results["stream"].error == "interrupted"
        assert results["queued"].error == results["later"].error == "interrupted"
        assert not probe.ran("queued") and not probe.ran("later")
        assert "checking" in self.hooks


def test_ctrl_c_cancels_running_steps_and_starts_nothing_new(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe()
    steps = Interruptible(probe)
    real_wait = futures.wait
    calls = [0]

    def interrupted_wait(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:  # the first wait, once all four steps run: Ctrl-C lands here
            steps.all_running.wait()
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(executor_module, "wait", interrupted_wait)
    executor = Executor(steps.steps, jobs=4, keep_going=True)
    results = executor.run()
    steps.check(executor, results, probe)


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here even when the runner was started with it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_a_real_sigint_while_waiting_cancels_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signal itself, sent to the main thread while it waits for steps (only then, so that the
    KeyboardInterrupt cannot land anywhere else in the test)."""
    probe = Probe()
    steps = Interruptible(probe)
    real_wait = futures.wait
    waiting = threading.Event()

    def blocking_wait(fs: Any, timeout: float | None = None, return_when: str = futures.ALL_COMPLETED) -> Any:
        waiting.set()
        while True:  # returns only with a step done: a pending KeyboardInterrupt is raised in here
            found = real_wait(fs, timeout=0.05, return_when=return_when)
            if found.done:
                return found

    def interrupt() -> None:
        steps.all_running.wait()
        assert waiting.wait(TIMEOUT)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    monkeypatch.setattr(executor_module, "wait", blocking_wait)
    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    executor = Executor(steps.steps, jobs=4, keep_going=True)
    try:
        results = executor.run()
    finally:
        interrupter.join(TIMEOUT)
    steps.check(executor, results, probe)


def test_a_hook_registered_after_the_cancel_runs_at_once() -> None:
    event = threading.Event()
    context = StepContext(
        Step("a", "a", "build", lambda c: None), event, lambda total: None, lambda line: None
    )
    calls: list[str] = []
    context.on_cancel(lambda: calls.append("early"))
    context.check()  # not cancelled: no error
    assert calls == []
    event.set()
    context.on_cancel(lambda: calls.append("late"))
    assert calls == ["late"]
    with pytest.raises(Cancelled):
        context.check()


def test_cancel_calls_every_running_steps_hooks_and_survives_a_failing_hook() -> None:
    started = threading.Barrier(3, timeout=TIMEOUT)
    called: list[str] = []

    def failing_hook() -> None:
        raise OSError("already closed")

    def body(name: str) -> Callable[[StepContext], None]:
        def run(context: StepContext) -> None:
            context.on_cancel(failing_hook)
            context.on_cancel(lambda: called.append(name))
            started.wait()
            assert context.cancel_event.wait(TIMEOUT)
            context.check()

        return run

    executor = Executor([Step(n, n, "build", body(n)) for n in ("a", "b")], jobs=2, keep_going=False)

    def cancel_when_running() -> None:
        started.wait()
        executor.cancel()

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    results = executor.run()
    canceller.join(TIMEOUT)
    assert statuses(results) == {"a": "cancelled", "b": "cancelled"}
    assert sorted(called) == ["a", "b"]


# --- bytes and events -----------------------------------------------------------------------------------------


def test_bytes_logs_and_events() -> None:
    probe = Probe()

    def transfer(context: StepContext) -> None:
        context.log("sending")
        context.report_bytes(100)
        context.report_bytes(250)  # a running total, not an increment

    steps = [
        probe.step("transfer", body=transfer),
        probe.step("quiet", ["transfer"]),
        probe.step("broken", body=fails()),
        probe.step("skipped", ["broken"]),
    ]
    results = Executor(steps, jobs=1, keep_going=True, events=probe.events()).run()
    assert (results["transfer"].bytes, results["quiet"].bytes) == (250, 0)
    assert results["transfer"].log == ["sending"]
    assert probe.progress == [("transfer", 100), ("transfer", 250)]
    # started once for each step that ran, never for one not run; finished once for every step
    assert sorted(probe.started) == ["broken", "quiet", "transfer"]
    assert sorted(r.step.id for r in probe.finished) == sorted(results)
    assert all(results[r.step.id] is r for r in probe.finished)
    assert probe.finished.index(results["transfer"]) < probe.finished.index(results["quiet"])
    for result in results.values():
        ran = result.status != "not-run"
        assert (result.start > 0, result.duration >= 0) == (ran, True)
