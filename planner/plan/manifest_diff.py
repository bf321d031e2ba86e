"""What differs between two input manifests, as changes (for `planner explain`) and as plan reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from planner.base.names import printable
from planner.keys.manifest import Manifest
from planner.plan.model import Reason

ChangeKind = Literal["added", "removed", "changed"]
SYMBOL = {"added": "+", "removed": "-", "changed": "~"}
# Reason codes, in the order a reader wants them.
ORDER = (
    "dockerfile", "file", "scope", "arg", "target", "platforms", "label", "context", "input", "env", "upstream", "base",
    "output",
)  # fmt: skip
MAX_DETAIL_ITEMS = 5


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    what: str  # one of ORDER
    name: str  # printable: a non-UTF-8 file name shows its bytes as `\xNN` (plan_model.printable)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", printable(self.name))

    def line(self) -> str:
        return f"{SYMBOL[self.kind]} {self.what} {self.name}"


def _map_changes(what: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    changes = [Change("added", what, k) for k in sorted(new.keys() - old.keys())]
    changes += [Change("removed", what, k) for k in sorted(old.keys() - new.keys())]
    changes += [Change("changed", what, k) for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    return changes


def _bases(manifest: Manifest) -> dict[str, str]:
    """Base ref -> what decides it: a masked ref changes when the secret behind it does (its name does not)."""
    return {
        ref: f"{identity} {manifest.masked_bases.get(ref, '')}" for ref, identity in manifest.bases.items()
    }


def diff_manifests(old: Manifest, new: Manifest) -> list[Change]:
    """Every input that differs; arg values are compared by hash and never shown."""
    changes: list[Change] = []
    if old.dockerfile != new.dockerfile:
        changes.append(Change("changed", "dockerfile", "text"))
    changes += _map_changes("file", old.files, new.files)
    if old.scope != new.scope:
        changes.append(Change("changed", "scope", f"{old.scope or '(none)'} -> {new.scope or '(none)'}"))
    changes += _map_changes("arg", old.args, new.args)
    if old.target != new.target:
        changes.append(Change("changed", "target", f"{old.target or '(none)'} -> {new.target or '(none)'}"))
    if sorted(old.platforms) != sorted(new.platforms):
        changes.append(Change("changed", "platforms", ",".join(new.platforms) or "(none)"))
    changes += _map_changes("label", old.labels, new.labels)
    changes += _map_changes("context", old.contexts, new.contexts)
    changes += _map_changes("input", old.inputs, new.inputs)
    changes += _map_changes("env", old.env, new.env)
    changes += _map_changes("upstream", old.upstream, new.upstream)
    changes += _map_changes("base", _bases(old), _bases(new))
    if old.output != new.output:
        changes.append(Change("changed", "output", f"{old.output} -> {new.output}"))
    return changes


def reasons_from(changes: list[Change]) -> list[Reason]:
    """One reason per kind of input, e.g. `file-changed (~ src/a.py, + src/b.py)`."""
    reasons = []
    for what in ORDER:
        group = [c for c in changes if c.what == what]
        if not group:
            continue
        shown = ", ".join(f"{SYMBOL[c.kind]} {c.name}" for c in group[:MAX_DETAIL_ITEMS])
        if len(group) > MAX_DETAIL_ITEMS:
            shown += f", and {len(group) - MAX_DETAIL_ITEMS} more"
        reasons.append(Reason(code=f"{what}-changed", detail=shown))
    return reasons
