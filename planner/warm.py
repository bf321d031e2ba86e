"""`planner warm`: pull the current keys from the registry into destinations that lack them; build nothing.

For session start-up scripts: a fresh daemon gets every image another session or CI already built, and what the
registry does not hold is listed (an `apply` builds it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from planner.apply.executor import Executor, Step, StepContext, StepResult
from planner.compose.options import ProjectOptions
from planner.engine.daemon import LOCAL, Daemon
from planner.errors import RuntimeFailure, UsageError
from planner.plan import make_plan
from planner.stack import Node


@dataclass
class WarmResult:
    pulled: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    results: dict[str, StepResult] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if any(r.status != "ok" for r in self.results.values()) else 0


def warm(
    options: ProjectOptions, rules: str | None, selected: Sequence[str], only: Sequence[str], jobs: int
) -> WarmResult:
    planned = make_plan(options, rules, selected, offline=False)
    observation = planned.observation
    assert observation is not None
    known = set(observation.daemons)
    unknown = [d for d in only if d not in known]
    if unknown:
        raise UsageError(
            f"--destination: unknown destination(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    from planner.observe import destinations_of, make_registry, ref_at

    daemons = {name: Daemon(name, url) for name, url in destinations_of(planned.graph).items()}
    client = make_registry(planned.graph)

    result = WarmResult()
    steps: list[Step] = []
    registry = observation.registry
    for name, node in planned.graph.nodes.items():
        if node.kind != "image":
            continue
        key = planned.manifests[name].key
        ref = planned.registry_refs.get(name)
        for destination in only or sorted({LOCAL, *node.rules.destinations}):
            view = observation.daemons.get(destination)
            label = f"{name} -> {destination}"
            if view is None:
                continue
            if view.has(key):
                result.present.append(label)
            elif ref is None or registry is None or not registry.reachable or ref not in registry.present:
                result.unavailable.append(label)
            elif not view.reachable:
                steps.append(_failing(label, f"{destination} {view.error}"))
            else:
                result.pulled.append(label)
                steps.append(
                    Step(
                        f"pull:{name}:{destination}",
                        name,
                        "pull",
                        _pull(
                            daemons[destination], ref_at(planned.graph, client, destination, ref), node, key
                        ),
                    )
                )
    try:
        result.results = Executor(steps, jobs, keep_going=True).run()
    finally:
        for daemon in daemons.values():
            daemon.close()
    return result


def _pull(daemon: Daemon, ref: str, node: Node, key: str) -> Callable[[StepContext], None]:
    def run(step: StepContext) -> None:
        daemon.pull(ref)
        if daemon.image_key(ref) != key:
            raise RuntimeFailure(f"{daemon.name}: {ref} does not carry key {key[:12]}")
        for name in node.image_names():
            daemon.tag(ref, name)

    return run


def _failing(label: str, message: str) -> Step:
    def run(step: StepContext) -> None:
        raise RuntimeFailure(message)

    return Step(f"pull:{label}", label, "pull", run)


def print_warm(result: WarmResult, stream: TextIO = sys.stderr) -> None:
    failed = [r for r in result.results.values() if r.status != "ok"]
    print(f"planner warm: pulled {len(result.pulled) - len(failed)}, already present {len(result.present)}, "
          f"not in the registry {len(result.unavailable)}, failed {len(failed)}", file=stream)  # fmt: skip
    for label in result.unavailable:
        print(f"  not in the registry (apply builds it): {label}", file=stream)
    for item in failed:
        print(f"  {item.step.id} failed: {item.error}", file=stream)
