"""Secret build arg values kept out of outputs beyond `planner config`: plan reasons, explain changes, apply's
step logs and errors. A secret arg is one whose name matches secrets.DEFAULT_SECRET_PATTERNS or the rules'
`secret_args`; its value (when at least secrets.MIN_SECRET_LENGTH long) is masked wherever it appears, e.g. in a
base image ref built from it (`FROM ${BASE}`) or in a build log line that echoes it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from planner.base.secrets import credential_values, longest_first, mask_text, secret_values

if TYPE_CHECKING:
    from planner.build.graph import BuildGraph
    from planner.compose.model import ComposeProject
    from planner.compose.options import ProjectOptions
    from planner.plan.manifest_diff import Change
    from planner.plan.model import Plan


def config_secret_args(
    project: ComposeProject, options: ProjectOptions, rules_option: str | None
) -> list[str]:
    """The rules' `secret_args` for `planner config` (none without a rules file; a bad file raises RulesError)."""
    from planner.rules.load import load_rules, rules_path

    path = rules_path(Path(project.working_dir), rules_option, options.environ, Path(options.cwd))
    rules, _ = load_rules(path, project.environment)
    return list(rules.secret_args)


def node_secrets(graph: BuildGraph) -> dict[str, tuple[str, ...]]:
    """Each node's secret values (every node of the stack, selected or not): its secret args' and the
    credentials of its remote contexts (a build log names the URL it fetches)."""
    extra = graph.stack.rules.secret_args
    return {
        name: longest_first(
            [
                *secret_values(node.build.args, extra),
                *credential_values([node.build.context, *node.build.additional_contexts.values()]),
            ]
        )
        for name, node in graph.stack.nodes.items()
    }


def stack_secrets(graph: BuildGraph) -> tuple[str, ...]:
    """Every node's secret arg values together, for text that belongs to no one node."""
    return longest_first(value for values in node_secrets(graph).values() for value in values)


def mask_plan(plan: Plan, graph: BuildGraph) -> Plan:
    """The plan with each node's secret values masked in its reasons and transfer reasons."""
    secrets = node_secrets(graph)
    if not any(secrets.values()):
        return plan
    nodes = []
    for node in plan.nodes:
        values = secrets.get(node.name, ())
        reasons = [r.model_copy(update={"detail": mask_text(r.detail, values)}) for r in node.reasons]
        transfers = [t.model_copy(update={"reason": mask_text(t.reason, values)}) for t in node.transfers]
        nodes.append(node.model_copy(update={"reasons": reasons, "transfers": transfers}))
    steps = [
        s.model_copy(update={"detail": mask_text(s.detail, secrets.get(s.node, ()))}) for s in plan.steps
    ]
    return plan.model_copy(update={"nodes": nodes, "steps": steps})


def mask_changes(changes: Iterable[Change], values: Iterable[str]) -> list[Change]:
    """`planner explain`'s changes with secret values masked in their names (e.g. a base ref)."""
    from dataclasses import replace

    values = tuple(values)
    return [replace(c, name=mask_text(c.name, values)) for c in changes]
