"""`planner report --format json|svg|trace` and `planner apply --trace`: pictures of a timing log that read
without planner (an SVG timeline, a Chrome trace), checked on a small log whose critical path is known."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from planner.apply import run
from planner.apply.executor import Events, Step, StepContext, StepResult
from planner.apply.timing import TimingLog, analyse, read_log, trace_events
from planner.base.errors import RuntimeFailure
from planner.cli.app import app
from planner.cli.render import report_json, report_svg, report_trace
from planner.compose.options import ProjectOptions
from planner.keys.store import Store
from planner.plan.pipeline import make_plan
from tests.helpers import write_tree

SVG = "{http://www.w3.org/2000/svg}"

# base (4 s) -> app (3 s) -> push app (2 s) is the longest chain; tool builds alongside; app goes to two
# destinations at once (their bars overlap: lanes); the node name needs escaping.
STEPS: list[tuple[str, str, str, float, float, int, list[str]]] = [
    ("build:base", "base", "build", 100.0, 4.0, 0, []),
    ("build:tool", "t<o>&'ol\"", "build", 100.5, 2.0, 0, []),
    ("build:app", "app", "build", 104.0, 3.0, 0, ["build:base"]),
    ("push:app", "app", "push", 107.0, 2.0, 157_300_000, ["build:app"]),
    ("transfer:app:sandbox", "app", "transfer", 107.0, 1.5, 21_000_000, ["build:app"]),
    ("transfer:app:ci", "app", "transfer", 107.25, 1.0, 2_100, ["build:app"]),
]
CRITICAL = ["build:base", "build:app", "push:app"]

TRACE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "traceEvents": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "cat", "ph", "ts", "dur", "pid", "tid", "args"],
                        "properties": {
                            "name": {"type": "string"}, "cat": {"type": "string"}, "ph": {"const": "X"},
                            "ts": {"type": "integer", "minimum": 0}, "dur": {"type": "integer", "minimum": 0},
                            "pid": {"type": "integer"}, "tid": {"type": "integer"}, "args": {"type": "object"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["name", "ph", "pid", "tid", "args"],
                        "properties": {
                            "name": {"enum": ["thread_name", "process_name"]}, "ph": {"const": "M"},
                            "pid": {"type": "integer"}, "tid": {"type": "integer"},
                            "args": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                        },
                    },
                ]
            },
        }
    },
}  # fmt: skip


def stand_in(step_id: str, node: str, phase: str, deps: list[str]) -> Step:
    return Step(step_id, node, phase, lambda ctx: None, deps)


def write_log(path: Path) -> None:
    with path.open("a") as handle:
        log = TimingLog(handle)
        log.run = "run-1"
        for step_id, node, phase, start, duration, size, deps in STEPS:
            step = stand_in(step_id, node, phase, deps)
            log.write(StepResult(step, "ok", start=start, duration=duration, bytes=size))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "timing.jsonl"
    write_log(path)
    return path


def test_the_svg_timeline_has_a_row_per_node_a_bar_per_step_and_the_critical_path(log: Path) -> None:
    report = analyse(read_log(log))
    assert report.critical_path == CRITICAL
    root = ET.fromstring(report_svg(report))  # well-formed, the odd node name escaped
    labels = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert sorted(labels) == sorted({s[1] for s in STEPS})
    bars = {r.get("data-step"): r for r in root.iter(f"{SVG}rect") if "bar" in (r.get("class") or "").split()}
    assert set(bars) == {s[0] for s in STEPS}
    for step_id, _node, phase, _start, _duration, size, _deps in STEPS:
        title = bars[step_id].find(f"{SVG}title")
        assert title is not None and title.text is not None
        assert step_id in title.text and f"{size} bytes" in title.text and phase in title.text
    marked = {s for s, r in bars.items() if "critical" in (r.get("class") or "").split()}
    assert marked == set(CRITICAL)
    assert all(bars[s].get("stroke-width") == "3" for s in CRITICAL)
    # bars are placed by start and duration: base (4 s) is twice as wide as tool (2 s), app starts where base ends
    width = {s: float(r.get("width") or 0) for s, r in bars.items()}
    x = {s: float(r.get("x") or 0) for s, r in bars.items()}
    assert width["build:base"] == pytest.approx(2 * width["build:tool"], abs=0.02)
    assert x["build:app"] == pytest.approx(x["build:base"] + width["build:base"], abs=0.02)
    # the two overlapping deliveries of app sit in different lanes
    assert bars["transfer:app:sandbox"].get("y") != bars["transfer:app:ci"].get("y")
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "critical path 9.00 s" in texts and "0 s" in texts and "9 s" in texts  # note and axis ticks
    assert {"build", "push", "transfer"} <= set(texts.split())  # the legend


def test_the_trace_is_chrome_trace_event_json_in_microseconds(log: Path) -> None:
    trace = json.loads(report_trace(analyse(read_log(log))))
    jsonschema.validate(trace, TRACE_SCHEMA)
    events = trace["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert sorted(threads.values()) == sorted({s[1] for s in STEPS})
    spans = {e["name"]: e for e in events if e["ph"] == "X"}
    assert set(spans) == {s[0] for s in STEPS}
    for step_id, node, phase, start, duration, size, _deps in STEPS:
        event = spans[step_id]
        assert event["ts"] == round((start - 100.0) * 1e6) and event["dur"] == round(duration * 1e6)
        assert event["cat"] == phase and threads[event["tid"]] == node and event["args"]["bytes"] == size
    assert spans["build:base"]["ts"] == 0 and spans["transfer:app:ci"]["ts"] == 7_250_000


def test_report_formats_through_the_cli(log: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["report", str(log), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.stdout)
    assert summary["critical_path"] == CRITICAL and summary["wall"] == 9.0 and summary["runs"] == 1
    assert summary["bytes"]["push"] == 157_300_000 and summary["unfinished"] == {}
    assert set(summary) >= {"rows", "totals", "critical_seconds", "shown"}
    svg = runner.invoke(app, ["report", str(log), "--format", "svg"])
    assert svg.exit_code == 0 and svg.stdout.startswith("<svg")
    trace = runner.invoke(app, ["report", str(log), "--format", "trace", "--all"])
    assert trace.exit_code == 0 and json.loads(trace.stdout)["traceEvents"]
    table = runner.invoke(app, ["report", str(log)], terminal_width=200)
    assert table.exit_code == 0 and "critical path 9.00 s" in table.stdout
    bad = runner.invoke(app, ["report", str(log), "--format", "png"])
    assert bad.exit_code == 2


def test_an_empty_log_gives_an_empty_picture() -> None:
    report = analyse([])
    assert trace_events([])["traceEvents"][0]["ph"] == "M"
    ET.fromstring(report_svg(report))
    assert json.loads(report_json(report))["critical_path"] == []


# `apply --trace`, through execute with stand-in steps (no Docker).


@pytest.fixture
def planned_root(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path, {"compose.yaml": "services:\n  s:\n    build: .\n", "Dockerfile": "FROM scratch\n"}
    )


def planned_of(root: Path) -> Any:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PLANNER_CACHE_DIR": str(root / "cache")}
    options = ProjectOptions(project_directory=str(root), environ=environ, cwd=str(root))
    return make_plan(options, None, [], offline=True, store=Store.open(root / "cache"))


def test_apply_writes_the_trace_of_the_steps_that_finished_also_after_a_failure(
    planned_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build(step: StepContext) -> None:
        step.report_bytes(1234)

    def push(step: StepContext) -> None:
        raise RuntimeFailure("s: push refused")

    steps = [Step("build:s", "s", "build", build), Step("push:s", "s", "push", push, ["build:s"]),
             Step("transfer:s:sandbox", "s", "transfer", lambda ctx: None, ["push:s"])]  # fmt: skip
    monkeypatch.setattr(run, "make_steps", lambda ctx, plan_steps: steps)
    trace_path = planned_root / "out" / "trace.json"
    result = run.execute(
        planned_of(planned_root),
        run.ApplyOptions(quiet=True, trace=trace_path),
        Store.open(planned_root / "cache"),
    )
    assert result.exit_code == 1
    trace = json.loads(trace_path.read_text())
    jsonschema.validate(trace, TRACE_SCHEMA)
    spans = {e["name"]: e for e in trace["traceEvents"] if e["ph"] == "X"}
    assert set(spans) == {"build:s", "push:s"}  # the transfer never ran: no time to place it at
    assert spans["build:s"]["ts"] == 0 and spans["push:s"]["ts"] >= spans["build:s"]["dur"]
    assert (
        spans["push:s"]["args"]["status"] == "failed"
        and spans["push:s"]["args"]["error"] == "s: push refused"
    )
    assert spans["build:s"]["cat"] == "build" and spans["push:s"]["cat"] == "push"
    assert spans["build:s"]["args"]["bytes"] == 1234


def test_an_interrupted_apply_still_writes_the_trace(
    planned_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Interrupted:
        def __init__(self, steps: list[Step], jobs: int, keep_going: bool, events: Events) -> None:
            self.steps, self.events = steps, events

        def run(self) -> dict[str, StepResult]:
            self.events.finished(StepResult(self.steps[0], "ok", start=50.0, duration=0.25, bytes=7))
            raise KeyboardInterrupt

    monkeypatch.setattr(run, "make_steps", lambda ctx, plan_steps: [stand_in("build:s", "s", "build", []),
                                                                     stand_in("push:s", "s", "push", ["build:s"])])  # fmt: skip
    monkeypatch.setattr(run, "Executor", Interrupted)
    trace_path = planned_root / "trace.json"
    with pytest.raises(KeyboardInterrupt):
        run.execute(
            planned_of(planned_root),
            run.ApplyOptions(quiet=True, trace=trace_path),
            Store.open(planned_root / "cache"),
        )
    spans = [e for e in json.loads(trace_path.read_text())["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["ts"], e["dur"], e["args"]["bytes"]) for e in spans] == [("build:s", 0, 250_000, 7)]


def test_a_long_critical_path_is_wrapped_inside_the_picture() -> None:
    from planner.cli.render import _wrapped

    path = [f"build:node-with-a-long-name-{i}" for i in range(40)]
    lines = _wrapped(["critical path 9.00 s:", *path], 140)
    assert all(len(line) <= 140 for line in lines) and len(lines) > 1
    assert " ".join(lines).replace("→ ", "").split()[4:] == path  # every step, in order


def test_user_strings_print_literally_in_the_plan_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 32: rich's emoji codes turned `export:art:` into `export` and an emoji, markup ate `[x]`."""
    from planner.cli.render import print_plan_table
    from planner.plan.model import Plan, PlanNode, PlanStep, Reason

    node = PlanNode(
        name="art", kind="artifact", image=None, key="k" * 32, action="build", needs=[],
        reasons=[Reason(code="new", detail="[bold]not markup[/bold] :fire:")], transfers=[],
    )  # fmt: skip
    steps = [PlanStep(id="export:art", node="art", kind="export", destination="local", path="out/[x]")]
    print_plan_table(
        Plan(project="p", offline=False, nodes=[node], levels=[["art"]], summary={}, steps=steps)
    )
    out = capsys.readouterr().out
    assert "export:art: " in out and "out/[x]" in out and "[bold]not markup[/bold]" in out and ":fire:" in out
