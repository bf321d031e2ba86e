"""The decision (pure): per node skip | build | pull, per destination none | registry | tarball, with reasons.

Judged at each destination, never at the source: an image present locally still travels to a sandbox that
lacks it, and a sandbox that holds the key gets nothing even when the local daemon lost it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from planner.engine.daemon import LOCAL
from planner.explain import diff_manifests, reasons_from
from planner.keys.compute import Manifest
from planner.observe import Observation
from planner.plan_model import Action, PlanNode, Reason, Transfer, TransferMode
from planner.stack import Node


@dataclass(frozen=True)
class Forcing:
    """Builds the user forces: `--no-cache` for all nodes (`everything`) or some."""

    everything: bool = False
    nodes: frozenset[str] = frozenset()

    def forces(self, name: str) -> bool:
        return self.everything or name in self.nodes


def _change_reasons(
    node: Node, previous: Manifest | None, current: Manifest, had_previous_key: bool
) -> list[Reason]:
    if previous is not None:
        reasons = reasons_from(diff_manifests(previous, current))
        return reasons or [
            Reason(code="key-changed", detail="inputs hash differently (planner version change?)")
        ]
    if had_previous_key:
        return [
            Reason(
                code="inputs-changed", detail="the previous build's manifest is not in this machine's cache"
            )
        ]
    if node.kind == "artifact":
        return [Reason(code="new", detail="no output on disk for this key")]
    return [Reason(code="new", detail="no image with this key here or in the registry")]


def decide_action(
    node: Node,
    manifest: Manifest,
    observation: Observation,
    registry_ref: str | None,
    previous: Manifest | None,
    forcing: Forcing,
) -> tuple[Action, list[Reason]]:
    """What to do at the home daemon (local) for one node."""
    if node.rules.skip:
        return "skip", [Reason(code="rules-skip", detail="rules say never build this node")]
    if node.rules.always:
        return "build", [Reason(code="forced", detail="rules: always")]
    if forcing.forces(node.name):
        return "build", [Reason(code="forced", detail="--no-cache")]
    had_previous = node.name in observation.previous_keys
    if node.kind == "artifact":
        if observation.artifacts.get(node.name):
            return "skip", [Reason(code="present", detail="output on disk holds this key")]
        return "build", _change_reasons(node, previous, manifest, had_previous)
    local = observation.daemons[LOCAL]
    if not local.reachable:
        return "unknown", [Reason(code="daemon-unreachable", detail=f"{LOCAL}: {local.error}")]
    if local.has(manifest.key):
        return "skip", [Reason(code="present", detail=f"{LOCAL} holds an image with this key")]
    registry = observation.registry
    if (
        registry_ref is not None
        and registry is not None
        and registry.reachable
        and registry_ref in registry.present
    ):
        return "pull", [Reason(code="in-registry", detail=registry_ref)]
    reasons = _change_reasons(node, previous, manifest, had_previous)
    if registry is not None and not registry.reachable:
        reasons.append(Reason(code="registry-unreachable"))
    return "build", reasons


SHARE = "registry"  # the pseudo-destination of a build pushed for other sessions and CI


def decide_transfers(
    node: Node,
    key: str,
    action: Action,
    observation: Observation,
    registry_configured: bool,
    share: bool = False,
) -> list[Transfer]:
    """How the image reaches each of its destinations (and, with `share`, the registry after a build)."""
    if node.kind != "image":
        return []
    transfers = []
    if share and action == "build" and registry_configured:
        usable = observation.registry is not None and observation.registry.reachable
        transfers.append(
            Transfer(destination=SHARE, mode="registry" if usable else "unknown",
                     reason="push the build for other sessions" if usable else "registry unreachable: not shared")
        )  # fmt: skip
    registry = observation.registry
    registry_ok = registry_configured and registry is not None and registry.reachable
    for destination in node.rules.destinations:
        if destination == LOCAL:
            if action == "pull":
                transfers.append(
                    Transfer(destination=LOCAL, mode="registry", reason="pulled from the registry")
                )
            elif action == "skip":
                transfers.append(Transfer(destination=LOCAL, mode="none", reason="present"))
            else:
                transfers.append(Transfer(destination=LOCAL, mode="none", reason="built here"))
            continue
        view = observation.daemons.get(destination)
        if view is None or not view.reachable:
            error = view.error if view is not None else "not queried"
            transfers.append(
                Transfer(destination=destination, mode="unknown", reason=f"unreachable: {error}")
            )
            continue
        if view.has(key):
            # present by key, but compose there runs it by name: a lost name is put back, nothing moved
            unnamed = sorted(set(node.image_names()) - set(view.images[key].tags))
            if unnamed:
                transfers.append(
                    Transfer(
                        destination=destination, mode="tag", reason=f"present, not named {', '.join(unnamed)}"
                    )
                )
            else:
                transfers.append(Transfer(destination=destination, mode="none", reason="present"))
            continue
        mode, reason = _transfer_mode(node.rules.transfer, registry_configured, registry_ok)
        transfers.append(Transfer(destination=destination, mode=mode, reason=reason))
    return transfers


def _transfer_mode(rule: str, configured: bool, reachable: bool) -> tuple[TransferMode, str]:
    if rule == "tarball":
        return "tarball", "missing; rules: transfer tarball"
    if rule == "registry":
        if not configured:
            return "unknown", "missing; rules ask for the registry but none is configured"
        if not reachable:
            return "unknown", "missing; rules ask for the registry, which is unreachable"
        return "registry", "missing; only layers the destination lacks move"
    if reachable:
        return "registry", "missing; only layers the destination lacks move"
    if configured:
        return "tarball", "missing; registry unreachable, streaming save | load"
    return "tarball", "missing; no registry configured, streaming save | load"


def decide(
    nodes: Mapping[str, Node],
    order: Collection[str],
    needs: Mapping[str, list[str]],
    manifests: Mapping[str, Manifest],
    observation: Observation,
    registry_refs: Mapping[str, str],
    previous: Mapping[str, Manifest | None],
    forcing: Forcing,
    registry_configured: bool,
    share: bool = False,
) -> list[PlanNode]:
    planned = []
    for name in order:
        node = nodes[name]
        key = manifests[name].key
        action, reasons = decide_action(
            node, manifests[name], observation, registry_refs.get(name), previous.get(name), forcing
        )
        planned.append(
            PlanNode(
                name=name,
                kind=node.kind,
                image=node.image,
                key=key,
                action=action,
                needs=list(needs[name]),
                reasons=reasons,
                transfers=decide_transfers(node, key, action, observation, registry_configured, share),
            )
        )
    return planned
