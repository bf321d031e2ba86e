"""`planner explain NODE`: the node's current inputs against those of the build present at its home daemon."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.compose.options import ProjectOptions
from planner.explain import Change, diff_manifests
from planner.keys.manifests import ManifestStore
from planner.keys.statcache import open_store
from planner.localcache import default_cache_dir
from planner.plan import make_plan
from planner.redact import mask_changes, node_secrets


@dataclass
class Explanation:
    node: str
    key: str
    action: str
    compared_with: str | None  # the key of the build compared against
    note: str
    changes: list[Change] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "key": self.key,
            "action": self.action,
            "compared_with": self.compared_with,
            "note": self.note,
            "changes": [{"change": c.kind, "input": c.what, "name": c.name} for c in self.changes],
        }

    def text(self) -> str:
        lines = [f"{self.node}: key {self.key[:12]}, action {self.action}"]
        lines.append(self.note)
        lines += [f"  {c.line()}" for c in self.changes]
        return "\n".join(lines) + "\n"


def explain_node(options: ProjectOptions, rules: str | None, node: str) -> Explanation:
    planned = make_plan(options, rules, [node], offline=False)
    current = planned.manifests[node]
    planned_node = next(n for n in planned.plan.nodes if n.name == node)
    observation = planned.observation
    previous_key = observation.previous_keys.get(node) if observation is not None else None
    if planned_node.action == "skip" and previous_key is None:
        return Explanation(
            node, current.key, "skip", current.key, "the present build has exactly these inputs"
        )
    if previous_key is None:
        return Explanation(
            node, current.key, planned_node.action, None,
            "no earlier build of this node is present at its home daemon: nothing to compare with",
        )  # fmt: skip
    store = open_store(default_cache_dir(dict(options.environ)))
    try:
        previous = ManifestStore(store).get(previous_key)
    finally:
        if store is not None:
            store.close()
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
