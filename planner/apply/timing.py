"""The timing log (JSON lines, one per step) and `planner report`: per-node phases, totals, critical path."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from planner.apply.executor import StepResult
from planner.errors import InputError

PHASES = ("stamp", "build", "export", "pull", "tag", "push", "transfer")


def record(result: StepResult) -> dict[str, Any]:
    return {
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
    def __init__(self, handle: TextIO | None) -> None:
        self.handle = handle

    def write(self, result: StepResult) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(record(result)) + "\n")
            self.handle.flush()


@dataclass
class Report:
    rows: dict[str, dict[str, float]]  # node -> phase -> seconds
    totals: dict[str, float]
    wall: float
    critical_path: list[str]
    critical_seconds: float
    bytes: dict[str, int]


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


def analyse(records: list[dict[str, Any]]) -> Report:
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, float] = defaultdict(float)
    moved: dict[str, int] = defaultdict(int)
    for item in records:
        rows[item["node"]][item["phase"]] += item["duration"]
        totals[item["phase"]] += item["duration"]
        moved[item["phase"]] += int(item.get("bytes") or 0)
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
        {k: dict(v) for k, v in rows.items()}, dict(totals), wall, critical[1], critical[0], dict(moved)
    )
