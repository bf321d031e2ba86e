"""Cache writes that may wait until a run's answer is out.

Keeping a walk snapshot, the stat records, input manifests and a memo only accelerates the next run, and each
is safe whenever it lands: what it records was read during the run, its racy window is taken when it is
written (later is stricter), and a run that starts before it lands finds the older entry, which it proves by
lstat like any other. So a run in a resident server's child (planner/resident/) answers first and writes after,
and the next edit's plan does not wait for the last one's bookkeeping. In a one-shot process each write happens
at once, where it is asked for, as before."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Queue:
    holding: bool = False
    actions: list[Callable[[], object]] = field(default_factory=list)


queue = _Queue()


def later(action: Callable[[], object]) -> None:
    """Run `action` now, or after the answer when this process holds its cache writes."""
    if queue.holding:
        queue.actions.append(action)
    else:
        action()


def hold() -> None:
    queue.holding = True


def run_held() -> None:
    """The held writes, in the order they were asked for (one that fails is reported and the rest go on)."""
    actions, queue.actions = queue.actions, []
    queue.holding = False
    for action in actions:
        try:
            action()
        except Exception:
            sys.stderr.write("planner: warning: a cache write failed after the answer:\n")
            traceback.print_exc()
