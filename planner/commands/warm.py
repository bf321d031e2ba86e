"""`planner warm`: apply restricted to what only pulls, for session start-up scripts.

The plan is made as `apply` makes it; warm then runs only its steps that fill a daemon from the registry (a
pull, a transfer through the registry the registry can already serve, a name put back) and lists what only an
`apply` can provide (a build, a push, a streamed delivery). It decides nothing of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from planner.apply.executor import DONE, StepResult
from planner.base.errors import UsageError
from planner.base.names import LOCAL
from planner.compose.options import ProjectOptions
from planner.keys.store import Store
from planner.plan.model import PlanStep
from planner.plan.pipeline import Planned, make_plan

WARM_KINDS = ("pull", "tag", "transfer")


@dataclass
class WarmResult:
    pulled: list[str] = field(default_factory=list)  # "node -> destination" filled by a step
    present: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    results: dict[str, StepResult] = field(default_factory=dict)
    registry_error: str | None = None  # the registry could not be asked: what is unavailable may be there

    @property
    def exit_code(self) -> int:
        if self.registry_error is not None and self.unavailable:
            return 1
        return 1 if any(r.status not in DONE for r in self.results.values()) else 0


def warm_steps(planned: Planned, only: Sequence[str]) -> tuple[list[PlanStep], WarmResult]:
    """The plan's steps warm runs, and per node and destination whether it is present, filled, or left to
    apply. A step runs when it only pulls or names (a transfer through the registry, or one whose registry
    pull fails and that has nothing to fall back on, fails as in apply) and every step it needs runs too;
    needs on pulls into a destination warm was told to leave alone are dropped (the registry serves them)."""
    steps = {step.id: step for step in planned.plan.steps}
    wanted = set(only)

    def pulls_only(step: PlanStep) -> bool:
        if step.kind not in WARM_KINDS:
            return False
        if step.kind == "pull":
            return True  # a pulled image is final: what its build would wait for does not matter here
        if step.kind == "transfer" and step.mode not in ("registry", "unknown"):
            return False
        return all(need in steps and pulls_only(steps[need]) for need in step.needs)

    def where(step: PlanStep) -> str:
        return step.destination or LOCAL

    chosen: list[PlanStep] = []
    kept: set[str] = set()
    for step in planned.plan.steps:
        if not pulls_only(step) or (wanted and where(step) not in wanted):
            continue
        kept.add(step.id)
        chosen.append(step)
    # warm builds nothing: a pull that fails fails (apply's plan falls back to building instead)
    chosen = [
        s.model_copy(
            update={
                "needs": [n for n in s.needs if n in kept],
                "fallback": None if s.kind == "pull" else s.fallback,
            }
        )
        for s in chosen
    ]

    result = WarmResult()
    by_target = {(s.node, where(s)): s for s in chosen}
    for node in planned.plan.nodes:
        if node.kind != "image":
            continue
        modes = {t.destination: t.mode for t in node.transfers}
        for destination in sorted({LOCAL, *modes} - {"registry"}):
            if wanted and destination not in wanted:
                continue
            label = f"{node.name} -> {destination}"
            held = node.action == "skip" if destination == LOCAL else True
            present = held and modes.get(destination) == "none"
            if (node.name, destination) in by_target:
                result.pulled.append(label)
            elif present:
                result.present.append(label)
            else:
                result.unavailable.append(label)
    return chosen, result


def warm(
    options: ProjectOptions, rules: str | None, selected: Sequence[str], only: Sequence[str], jobs: int
) -> WarmResult:
    from planner.apply.run import ApplyOptions, execute

    with Store.for_environ(options.environ) as store:
        planned = make_plan(options, rules, selected, offline=False, store=store)
        if planned.graph.stack.rules.registry is None:
            raise UsageError(
                "warm fills daemons from the registry, and the rules file names none (registry.url)"
            )
        known = set(planned.observation.daemons)
        unknown = [d for d in only if d not in known]
        if unknown:
            raise UsageError(
                f"--destination: unknown destination(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        steps, result = warm_steps(planned, only)
        restricted = Planned(
            planned.graph, planned.manifests, planned.plan.model_copy(update={"steps": steps}),
            planned.observation, planned.registry_refs, planned.routes,
        )  # fmt: skip
        applied = execute(restricted, ApplyOptions(jobs=jobs, keep_going=True, quiet=True), store)
    result.results = applied.results
    registry = planned.observation.registry
    if registry is not None and registry.error is not None:
        result.registry_error = f"{registry.host}: {registry.error}"
    return result
