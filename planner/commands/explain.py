"""`planner explain NODE`: the node's current inputs against those of the build present at its home daemon."""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.compose.options import ProjectOptions
from planner.keys.store import Store
from planner.plan.manifest_diff import Change, diff_manifests
from planner.plan.pipeline import Planned, make_plan
from planner.plan.redact import mask_changes, node_secrets


@dataclass
class Explanation:
    node: str
    key: str
    action: str
    compared_with: str | None  # the key of the build compared against
    note: str
    changes: list[Change] = field(default_factory=list)
    context: str = ""  # how the key covers the main context, and why when it is all or the whole of it


def explain_node(options: ProjectOptions, rules: str | None, node: str) -> Explanation:
    with Store.for_environ(options.environ) as store:
        return _explain(options, rules, node, store)


def _explain(options: ProjectOptions, rules: str | None, node: str, store: Store) -> Explanation:
    planned = make_plan(options, rules, [node], offline=False, store=store)
    explanation = _compare(planned, node, store)
    current = planned.manifests[node]
    explanation.context = context_scope(current.scope, current.scope_reason)
    return explanation


def context_scope(scope: str, reason: str) -> str:
    if scope == "narrowed":
        return "the key covers the context paths the build reads"
    if scope == "all":
        return f"the key covers the whole context: {reason}"
    if scope == "whole":
        return f"the key covers the whole context (not narrowed: {reason})"
    return ""


def _compare(planned: Planned, node: str, store: Store) -> Explanation:
    current = planned.manifests[node]
    planned_node = next(n for n in planned.plan.nodes if n.name == node)
    previous_key = planned.observation.previous_keys.get(node)
    if planned_node.action == "skip" and previous_key is None:
        return Explanation(
            node, current.key, "skip", current.key, "the present build has exactly these inputs"
        )
    if previous_key is None:
        return Explanation(
            node, current.key, planned_node.action, None,
            "no earlier build of this node is present at its home daemon: nothing to compare with",
        )  # fmt: skip
    previous = store.manifest(previous_key)
    if previous is None:
        return Explanation(
            node, current.key, planned_node.action, previous_key,
            f"the present build (key {previous_key[:12]}) was made elsewhere: its input manifest is not in this "
            "machine's cache",
        )  # fmt: skip
    changes = mask_changes(diff_manifests(previous, current), node_secrets(planned.graph).get(node, ()))
    return Explanation(
        node, current.key, planned_node.action, previous_key,
        f"compared with the present build (key {previous_key[:12]}): {len(changes)} input(s) differ",
        changes,
    )  # fmt: skip
