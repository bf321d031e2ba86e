"""One export of the session daemon's image for the steps the plan says read it together (`export_with`).

On Engine 20.10 `docker save` writes the whole image to a temporary folder before it streams a byte, so two
readings of one export (the uncompressed push and a streamed delivery) cost twice the slowest part of a cold
delivery. The steps of a group become ready together; each asks for the export here, the first ones wait
briefly for the rest, and then one `docker save` is read once and teed to all that came. A step that arrives
after the reading began reads its own export, as the plan says: slower, never wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from planner.base.streams import Branch, tee
from planner.plan.model import PlanStep

JOIN_WAIT = (
    3.0  # seconds the first step of a group waits for the others (they become ready at the same moment)
)


@dataclass
class _Group:
    members: frozenset[str]
    attached: list[str] = field(default_factory=list)
    branches: dict[str, Branch] | None = None


def _own(export: Callable[[], Iterable[bytes]]) -> Branch:
    """A reading of a step's own, behind a branch like a shared one: the reading's generator is then only ever
    run and closed by its reader thread, and the step may close its branch from any thread (a consumer that
    reads it on a thread of its own, as the layer parsers do, once raised `generator already executing` when
    the step closed the generator itself while that thread was inside it; issue 32)."""
    return tee(export(), 1)[0]


class SharedExports:
    """The export groups of one apply, from the plan's `export_with`."""

    def __init__(self, steps: Sequence[PlanStep], wait: float = JOIN_WAIT) -> None:
        self._wait = wait
        self._condition = threading.Condition()
        self._groups: dict[str, _Group] = {}
        for step in steps:
            if step.export_with and step.id not in self._groups:
                group = _Group(frozenset([step.id, *step.export_with]))
                for member in group.members:
                    self._groups[member] = group

    def chunks(
        self, step_id: str, export: Callable[[], Iterable[bytes]], cancelled: threading.Event
    ) -> Branch:
        """The export for `step_id`: a branch of the group's one reading, or its own reading if it came late
        or has no group. `export` starts a reading; it is called once per reading. Close the result
        (`Branch.close`) when done with it, also on failure."""
        group = self._groups.get(step_id)
        if group is None:
            return _own(export)
        deadline = time.monotonic() + self._wait
        with self._condition:
            if group.branches is not None:
                return _own(export)  # the group's reading began without this step
            group.attached.append(step_id)
            self._condition.notify_all()
            while group.branches is None:
                left = deadline - time.monotonic()
                if len(group.attached) == len(group.members) or left <= 0 or cancelled.is_set():
                    readers = list(group.attached)
                    group.branches = dict(zip(readers, tee(export(), len(readers)), strict=True))
                    self._condition.notify_all()
                    break
                self._condition.wait(min(left, 0.1))
            return group.branches[step_id]
