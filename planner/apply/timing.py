"""The timing log (JSON lines, one per step) and `planner report`: per-node phases, totals, critical path."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from planner.apply.executor import StepResult
from planner.base.errors import InputError

PHASES = ("stamp", "build", "export", "pull", "tag", "push", "transfer")


def record(result: StepResult, run: str = "") -> dict[str, Any]:
    return {
        "run": run,
        "step": result.step.id,
        "node": result.step.node,
        "phase": result.step.phase,
        "status": result.status,
        "start": round(result.start, 6),
        "duration": round(result.duration, 6),
        "bytes": result.bytes,
        "deps": result.step.deps,
        "detail": result.step.detail,
        "error": result.error,
    }


class TimingLog:
    """Appends one JSON line per finished step; every line of one apply carries the same `run` id, so a log
    that several applies appended to can be read per run."""

    def __init__(self, handle: TextIO | None) -> None:
        import os
        import time

        self.handle = handle
        self.run = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self.records: list[dict[str, Any]] = []  # kept in memory too: `apply --trace` is written from them

    def write(self, result: StepResult) -> None:
        item = record(result, self.run)
        self.records.append(item)
        if self.handle is not None:
            self.handle.write(json.dumps(item) + "\n")
            self.handle.flush()


@dataclass
class Report:
    rows: dict[str, dict[str, float]]  # node -> phase -> seconds
    totals: dict[str, float]
    wall: float
    critical_path: list[str]
    critical_seconds: float
    bytes: dict[str, int]  # phase -> bytes moved by steps that succeeded
    runs: int = 1  # applies in the log
    shown: str = "the only run"  # which of them the report covers
    unfinished: dict[str, str] = field(default_factory=dict)  # step -> status, for steps that did not succeed
    steps: list[dict[str, Any]] = field(
        default_factory=list
    )  # the records the report covers (for the timeline)

    def summary(self) -> dict[str, Any]:
        """`report --format json`."""
        return {
            "rows": self.rows, "totals": self.totals, "wall": round(self.wall, 6),
            "critical_path": self.critical_path, "critical_seconds": round(self.critical_seconds, 6),
            "bytes": self.bytes, "runs": self.runs, "shown": self.shown, "unfinished": self.unfinished,
        }  # fmt: skip


def runs_of(records: list[dict[str, Any]]) -> list[str]:
    """Run ids in the order they appear (records written before run ids existed form one run, "")."""
    seen: dict[str, None] = {}
    for item in records:
        seen.setdefault(str(item.get("run", "")), None)
    return list(seen)


def select_run(records: list[dict[str, Any]], all_runs: bool) -> tuple[list[dict[str, Any]], int, str]:
    """The records of the last run (or all of them), how many runs the log holds, and which were taken."""
    runs = runs_of(records)
    if all_runs or len(runs) <= 1:
        return records, len(runs), ("all runs" if len(runs) > 1 else "the only run")
    last = runs[-1]
    return (
        [r for r in records if str(r.get("run", "")) == last],
        len(runs),
        f"the last run ({last or 'unnamed'})",
    )


def read_log(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the timing log: {exc.strerror}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or "step" not in item or "duration" not in item:
                raise ValueError("not a step record")
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not a planner timing record ({exc})") from None
        records.append(item)
    return records


def analyse(records: list[dict[str, Any]], all_runs: bool = False) -> Report:
    records, runs, shown = select_run(records, all_runs)
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, float] = defaultdict(float)
    moved: dict[str, int] = defaultdict(int)
    unfinished: dict[str, str] = {}
    for item in records:
        rows[item["node"]][item["phase"]] += item["duration"]
        totals[item["phase"]] += item["duration"]
        status = item.get("status", "ok")
        if status == "ok":
            moved[item["phase"]] += int(item.get("bytes") or 0)  # a failed push moved nothing anyone can use
        else:
            unfinished[item["step"]] = str(status)
    started = [i["start"] for i in records if i.get("start")]
    ended = [i["start"] + i["duration"] for i in records if i.get("start")]
    wall = (max(ended) - min(started)) if started else 0.0
    # Critical path: the longest chain of durations along step dependencies.
    by_id = {i["step"]: i for i in records}
    best: dict[str, tuple[float, list[str]]] = {}

    def longest(step_id: str) -> tuple[float, list[str]]:
        if step_id in best:
            return best[step_id]
        item = by_id[step_id]
        chains = [longest(d) for d in item.get("deps") or [] if d in by_id]
        prefix = max(chains, key=lambda c: c[0]) if chains else (0.0, [])
        best[step_id] = (prefix[0] + item["duration"], [*prefix[1], step_id])
        return best[step_id]

    critical = max((longest(s) for s in by_id), key=lambda c: c[0], default=(0.0, []))
    return Report(
        {k: dict(v) for k, v in rows.items()}, dict(totals), wall, critical[1], critical[0], dict(moved),
        runs, shown, unfinished, records,
    )  # fmt: skip


def timed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of steps that ran (a step that never started has no start time to place it by)."""
    return [r for r in records if r.get("start")]


def trace_events(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Chrome trace-event JSON (chrome://tracing, Perfetto): one complete ("X") event per step that ran, µs from
    the first step's start, one thread per node (named by "M" metadata events), `cat` = phase."""
    ran = sorted(timed(records), key=lambda r: (r["start"], r["step"]))
    origin = ran[0]["start"] if ran else 0.0
    tids: dict[str, int] = {}
    for item in ran:
        tids.setdefault(str(item["node"]), len(tids) + 1)
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "planner apply"}}
    ]
    events += [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": node}}
        for node, tid in tids.items()
    ]
    for item in ran:
        events.append(
            {
                "name": item["step"],
                "cat": item["phase"],
                "ph": "X",
                "ts": max(0, round((item["start"] - origin) * 1e6)),
                "dur": max(0, round(item["duration"] * 1e6)),
                "pid": 1,
                "tid": tids[str(item["node"])],
                "args": {
                    key: item.get(key)
                    for key in ("run", "status", "bytes", "deps", "detail", "error")
                    if item.get(key) not in (None, "", [])
                },
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_trace(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace_events(records)) + "\n")
