"""`planner apply`: take the project lock, plan against what really exists, run the steps, report.

Taking the lock before planning is what makes two concurrent applies build each node once: the second plans
after the first finished and finds its images (all skip).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

from planner.apply.executor import DONE, Events, Executor, Step, StepResult
from planner.apply.lock import project_lock
from planner.apply.shared_export import SharedExports
from planner.apply.steps import ApplyContext, make_steps
from planner.apply.timing import TimingLog, write_trace
from planner.base.errors import InputError, RuntimeFailure, UsageError
from planner.base.secrets import mask_text
from planner.build.graph import BuildGraph
from planner.compose.options import ProjectOptions
from planner.engine.builders import make_builder
from planner.engine.connect import open_engines
from planner.keys.store import Store
from planner.plan.decide import Forcing
from planner.plan.model import SHARE, Plan
from planner.plan.observe import destinations_of
from planner.plan.pipeline import Planned, make_plan
from planner.plan.redact import node_secrets


@dataclass
class ApplyOptions:
    # Builds run inside the daemon and transfers wait on I/O: more steps than cores keep both busy.
    jobs: int = max(4, os.cpu_count() or 2)
    keep_going: bool = False
    timing_log: Path | None = None
    trace: Path | None = None  # Chrome trace-event JSON of the steps that finished, written when the run ends
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
        return 1 if any(r.status not in DONE for r in self.results.values()) else 0


def apply(
    options: ProjectOptions, rules: str | None, selected: Sequence[str], apply_options: ApplyOptions
) -> ApplyResult:
    from planner.build.stack import load_stack

    stack = load_stack(options, rules)  # the project names the lock; files are read again only after waiting
    if unknown := sorted(apply_options.forcing.nodes - set(stack.nodes)):  # bad input: before anything runs
        raise UsageError(
            f"--rebuild: unknown node(s) {', '.join(unknown)}; buildable: {', '.join(sorted(stack.nodes))}"
        )
    with Store.for_environ(options.environ) as store:
        lock = store.lock_path(stack.compose.working_dir, stack.compose.name)
        with project_lock(lock) as waited:
            if waited:
                stack = load_stack(options, rules)  # the other apply may have written outputs or stamps
            planned = make_plan(
                options,
                rules,
                selected,
                offline=False,
                forcing=apply_options.forcing,
                store=store,
                stack=stack,
            )
            refuse_unrunnable(planned.plan)
            return execute(planned, apply_options, store)


def refuse_unrunnable(plan: Plan) -> None:
    """A plan with a node it could not judge, or a build the builder cannot run, is not started at all."""
    for node in plan.nodes:
        for reason in node.reasons:
            if reason.code == "builder-unsupported":
                # a detail that names its own way out (decide.build_route's) needs no other
                raise InputError(
                    reason.detail, hint=None if "use `builder:" in reason.detail else BUILDER_HINT
                )
    unknown = [n for n in plan.nodes if n.action == "unknown"]
    if unknown:
        reasons = "; ".join(r.detail for r in unknown[0].reasons)
        raise RuntimeFailure(f"cannot apply: {reasons}")


BUILDER_HINT = "set `builder: {kind: buildx}` in planner.yaml (needs the docker buildx plugin)"


def execute(planned: Planned, apply_options: ApplyOptions, store: Store) -> ApplyResult:
    """Run the plan's steps as written (`warm` hands in a plan restricted to its pulls)."""
    graph = planned.graph
    warnings = [
        f"{node.name}: not shared ({transfer.reason}); the next apply pushes it"
        for node in planned.plan.nodes
        for transfer in node.transfers
        if transfer.destination == SHARE and transfer.mode == "unknown"
    ]
    timing_handle: TextIO | None = None
    timing = TimingLog(None)
    with open_engines(graph.stack.rules, destinations_of(graph)) as engines:
        try:
            rules = graph.stack.rules
            ctx = ApplyContext(
                graph=graph, manifests=planned.manifests, engines=engines,
                builder=make_builder(rules.builder.kind, rules.builder.name, engines.local, rules.builder.context), store=store,
                no_cache=set(graph.nodes) if apply_options.forcing.everything else set(apply_options.forcing.nodes),
                warn=warnings.append, exports=SharedExports(planned.plan.steps), routes=planned.routes,
            )  # fmt: skip
            steps = make_steps(ctx, planned.plan.steps)
            mask_steps(steps, graph)  # secret arg values never reach printed or kept logs, nor errors
            if any(step.kind in ("build", "export") for step in planned.plan.steps):
                ctx.builder.ready()
            if apply_options.timing_log is not None:
                apply_options.timing_log.parent.mkdir(parents=True, exist_ok=True)
                timing_handle = apply_options.timing_log.open("a")
                timing.handle = timing_handle
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
            logs = keep_logs(store.logs_dir(graph.stack.compose.name), results)
            return ApplyResult(planned, results, executor.interrupted, warnings, logs)
        finally:
            if timing_handle is not None:
                timing_handle.close()
            if (
                apply_options.trace is not None
            ):  # also after a failure or an interrupt: the steps that finished
                try:
                    write_trace(apply_options.trace, timing.records)
                except OSError as exc:
                    warnings.append(f"{apply_options.trace}: cannot write the trace: {exc.strerror}")


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


def mask_steps(steps: Sequence[Step], graph: BuildGraph) -> None:
    """Have each step mask its node's secret values (plan/redact.py finds them) in the log lines it keeps and in
    its error: apply's own steps, so the plan's redaction never imports apply."""
    secrets = node_secrets(graph)
    for step in steps:
        values = secrets.get(step.node, ())
        if values:
            step.redact = partial(mask_text, values=values)
