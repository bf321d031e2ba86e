"""`planner apply`: take the project lock, plan against what really exists, run the steps, report.

Taking the lock before planning is what makes two concurrent applies build each node once: the second plans
after the first finished and finds its images (all skip).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from planner.apply.executor import Events, Executor, Step, StepContext, StepResult
from planner.apply.lock import lock_path, project_lock
from planner.apply.steps import ApplyContext, make_steps
from planner.apply.timing import TimingLog
from planner.compose.options import ProjectOptions
from planner.decide import SHARE, Forcing
from planner.engine.builders import make_builder
from planner.engine.daemon import LOCAL, Daemon, close_all
from planner.errors import RuntimeFailure
from planner.keys.statcache import open_store
from planner.localcache import default_cache_dir
from planner.observe import destinations_of, make_registry
from planner.plan import Planned, make_plan
from planner.plan_model import PlanNode
from planner.redact import mask_steps


@dataclass
class ApplyOptions:
    # Builds run inside the daemon and transfers wait on I/O: more steps than cores keep both busy.
    jobs: int = max(4, os.cpu_count() or 2)
    keep_going: bool = False
    timing_log: Path | None = None
    forcing: Forcing = field(default_factory=Forcing)
    quiet: bool = False


@dataclass
class ApplyResult:
    planned: Planned
    results: dict[str, StepResult]
    interrupted: bool
    warnings: list[str]
    logs: dict[str, Path] = field(default_factory=dict)  # step id -> its log file

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results.values() if r.status in ("failed", "cancelled")]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if any(r.status != "ok" for r in self.results.values()) else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.planned.plan.project,
            "interrupted": self.interrupted,
            "steps": [
                {
                    "step": r.step.id,
                    "node": r.step.node,
                    "phase": r.step.phase,
                    "status": r.status,
                    "duration": round(r.duration, 3),
                    "bytes": r.bytes,
                    "error": r.error,
                }
                for r in self.results.values()
            ],
            "warnings": self.warnings,
            "plan": self.planned.plan.model_dump(),
        }


def _unreachable_steps(plan_nodes: list[PlanNode]) -> list[Step]:
    """Deliveries the plan could not judge become failing steps: asked for, but impossible now."""
    steps = []
    for node in plan_nodes:
        for transfer in node.transfers:
            if (
                transfer.mode == "unknown" and transfer.destination != SHARE
            ):  # an unshared build is no failure
                message = f"{node.name} -> {transfer.destination}: {transfer.reason}"

                def fail(step: StepContext, message: str = message) -> None:
                    raise RuntimeFailure(message)

                steps.append(
                    Step(f"transfer:{node.name}:{transfer.destination}", node.name, "transfer", fail)
                )
    return steps


def apply(
    options: ProjectOptions, rules: str | None, selected: Sequence[str], apply_options: ApplyOptions
) -> ApplyResult:
    cache_dir = default_cache_dir(dict(options.environ))
    from planner.stack import load_stack

    stack = load_stack(options, rules)  # the project names the lock; files are read again only after waiting
    lock = lock_path(cache_dir, stack.compose.working_dir, stack.compose.name)
    with project_lock(lock) as waited:
        if waited:
            stack = load_stack(options, rules)  # the other apply may have written outputs or stamps
        planned = make_plan(
            options,
            rules,
            selected,
            offline=False,
            forcing=apply_options.forcing,
            cache_dir=cache_dir,
            stack=stack,
        )
        unknown = [n for n in planned.plan.nodes if n.action == "unknown"]
        if unknown:
            reasons = "; ".join(r.detail for r in unknown[0].reasons)
            raise RuntimeFailure(f"cannot apply: {reasons}")
        return _execute(planned, apply_options, cache_dir)


def _execute(planned: Planned, apply_options: ApplyOptions, cache_dir: Path) -> ApplyResult:
    graph = planned.graph
    daemons = {name: Daemon(name, url) for name, url in destinations_of(graph).items()}
    registry = make_registry(graph)
    store = open_store(cache_dir)
    warnings: list[str] = []
    timing_handle: TextIO | None = None
    try:
        rules = graph.stack.rules
        ctx = ApplyContext(
            graph=graph, manifests=planned.manifests, daemons=daemons, registry=registry,
            builder=make_builder(rules.builder.kind, rules.builder.name, daemons[LOCAL]), store=store,
            registry_refs=planned.registry_refs,
            local_tags={k: i.tags for k, i in planned.observation.daemons[LOCAL].images.items()},
            no_cache=set(graph.nodes) if apply_options.forcing.everything else set(apply_options.forcing.nodes),
            warn=warnings.append,
        )  # fmt: skip
        steps = make_steps(ctx, planned.plan.nodes) + _unreachable_steps(planned.plan.nodes)
        mask_steps(steps, graph)  # secret arg values never reach printed or kept logs, nor errors
        for node in planned.plan.nodes:
            if node.action == "build":
                from planner.apply.steps import build_request

                ctx.builder.check(build_request(ctx, graph.nodes[node.name], [], {}))
        if apply_options.timing_log is not None:
            apply_options.timing_log.parent.mkdir(parents=True, exist_ok=True)
            timing_handle = apply_options.timing_log.open("a")
        timing = TimingLog(timing_handle)
        if apply_options.quiet or not steps:
            executor = Executor(
                steps, apply_options.jobs, apply_options.keep_going, Events(finished=timing.write)
            )
            results = executor.run()
        else:
            from planner.apply.progress import LiveProgress  # rich only when there is something to show

            with LiveProgress(len(steps)) as progress:
                events = progress.events()
                shown = events.finished

                def finished(result: StepResult) -> None:
                    shown(result)
                    timing.write(result)

                events.finished = finished
                executor = Executor(steps, apply_options.jobs, apply_options.keep_going, events)
                results = executor.run()
        logs = keep_logs(cache_dir / "logs" / graph.stack.compose.name, results)
        return ApplyResult(planned, results, executor.interrupted, warnings, logs)
    finally:
        if timing_handle is not None:
            timing_handle.close()
        close_all(daemons.values(), registry, store)


def keep_logs(folder: Path, results: dict[str, StepResult]) -> dict[str, Path]:
    """Each step's log in its own file (the latest run of that step), for reading after the fact."""
    kept = {}
    for step_id, result in results.items():
        if not result.log:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (step_id.replace(":", "_").replace("/", "_") + ".log")
            path.write_text("\n".join(result.log) + "\n")
            kept[step_id] = path
        except OSError:
            continue  # logs are a convenience: a read-only cache must not fail the apply
    return kept


def print_summary(result: ApplyResult, stream: TextIO = sys.stderr) -> None:
    counts: dict[str, int] = {}
    for step in result.results.values():
        counts[step.status] = counts.get(step.status, 0) + 1
    actions: dict[str, int] = {}
    for node in result.planned.plan.nodes:
        actions[node.action] = actions.get(node.action, 0) + 1
    plan_part = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
    step_part = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
    print(f"planner apply: {result.planned.plan.project}: {plan_part}; steps: {step_part}", file=stream)
    for warning in result.warnings:
        print(f"  warning: {warning}", file=stream)
    for failed in result.failed:
        print(f"  {failed.step.id} {failed.status}: {failed.error}", file=stream)
        for line in failed.log[-30:]:
            print(f"    | {line}", file=stream)
        if failed.step.id in result.logs:
            print(f"    full log: {result.logs[failed.step.id]}", file=stream)
    if result.interrupted:
        print("  interrupted: running steps were cancelled; nothing unfinished was recorded", file=stream)
