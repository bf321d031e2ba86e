"""`planner golden promote|clone|status|prune`: golden Docker data roots for destination daemons.

promote, clone and prune work on files (planner/engine/golden.py); status is the plan's own report on the
golden (`Plan.goldens`, made by decide from the golden's manifest), so it says what the first `apply` of a
session started from the golden will deliver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner.base.errors import InputError
from planner.build.stack import load_stack
from planner.compose.options import ProjectOptions
from planner.engine import golden as files
from planner.keys.store import Store
from planner.plan.model import GoldenReport
from planner.plan.pipeline import make_plan


def promote(data_root: Path, golden: Path, environ: Mapping[str, str], jobs: int) -> files.Made:
    with Store.for_environ(environ) as store:

        def inputs(keys: list[str]) -> dict[str, Any]:
            kept = {key: store.manifest(key) for key in keys}
            return {key: dataclasses.asdict(m) for key, m in kept.items() if m is not None}

        return files.promote(data_root, golden, jobs, inputs)


def clone(golden: Path, data_root: Path, method: str, jobs: int) -> files.Made:
    return files.clone(golden, data_root, method, jobs)


def prune(golden: Path, keep: int) -> files.Pruned:
    return files.prune(golden, keep)


def status(options: ProjectOptions, rules: str | None, golden: Path, destination: str | None) -> GoldenReport:
    """The plan's report on GOLDEN for `destination` (default: the destination whose rules name GOLDEN, else
    every image node as if GOLDEN served them all)."""
    stack = load_stack(options, rules)
    wanted = golden.resolve()
    if destination is None:
        named = [d for d, c in stack.rules.destinations.items() if c.golden and _resolve(c.golden) == wanted]
        destination = named[0] if named else "golden"
    elif destination not in stack.rules.destinations and destination != "local":
        raise InputError(
            f"--destination {destination}: not a destination of the rules "
            f"(known: {', '.join(['local', *sorted(stack.rules.destinations)])})"
        )
    planned = make_plan(options, rules, [], offline=False, stack=stack, goldens={destination: str(golden)})
    return next(r for r in planned.plan.goldens if r.destination == destination)


def _resolve(path: str) -> Path:
    return Path(path).resolve()
