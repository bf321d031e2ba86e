"""The decision table, with an in-memory double of what the daemons and the registry hold.

Every combination of (key present locally) × (registry: none configured / unreachable / holds the key / lacks it)
× (sandbox: holds the key under the node's name / holds it but lost the name / lacks it / unreachable) × (transfer
rule) is checked against the rules written out below as a specification.
"""

from __future__ import annotations

import itertools

import pytest

from planner.build.stack import Node
from planner.compose.model import BuildConfig
from planner.engine.observation import DaemonView, KeyedImage, Observation, RegistryView
from planner.keys.manifest import Manifest
from planner.plan.decide import Forcing, decide, decide_action, decide_transfers
from planner.rules.model import EffectiveRules

KEY = "k" * 32
REF = f"127.0.0.1:5000/planner/app:{KEY}"


def image_node(transfer: str = "auto", **rules: object) -> Node:
    effective = EffectiveRules(destinations=["local", "sandbox"], transfer=transfer, **rules)  # type: ignore[arg-type]
    return Node("app", "image", BuildConfig(context="/ctx"), "app", effective)


def daemon(name: str, state: str) -> DaemonView:
    if state == "unreachable":
        return DaemonView(name, error="unreachable at unix:///x.sock: No such file or directory")
    images = {}
    if state == "present":
        images = {KEY: KeyedImage("sha256:1", KEY, ("app:latest", REF))}
    elif state == "unnamed":  # e.g. `docker rmi app` there: only the registry ref still names it
        images = {KEY: KeyedImage("sha256:1", KEY, (REF,))}
    return DaemonView(name, images=images)


def registry_view(state: str) -> RegistryView | None:
    if state == "none":
        return None
    if state == "unreachable":
        return RegistryView("127.0.0.1:5000", error="unreachable: Connection refused")
    return RegistryView("127.0.0.1:5000", present=frozenset({REF}) if state == "has" else frozenset())


def expected_action(local: str, registry: str) -> str:
    if local in ("present", "unnamed"):
        return "skip"
    if registry == "has":
        return "pull"
    return "build"


def expected_sandbox_mode(sandbox: str, registry: str, rule: str) -> str:
    if sandbox == "unreachable":
        return "unknown"
    if sandbox == "present":
        return "none"
    if sandbox == "unnamed":
        return "tag"  # nothing moves; the name is put back
    if rule == "tarball":
        return "tarball"
    registry_usable = registry in ("has", "lacks")
    if rule == "registry":
        return "registry" if registry_usable else "unknown"
    # auto: through the registry only where it holds the key (the session daemon's image is exported anyway
    # otherwise, and streaming that export beats a round trip through the registry)
    return "registry" if registry == "has" else "tarball"


COMBINATIONS = list(
    itertools.product(
        ["present", "unnamed", "absent"],
        ["none", "unreachable", "has", "lacks"],
        ["present", "unnamed", "absent", "unreachable"],
        ["auto", "registry", "tarball"],
    )
)


@pytest.mark.parametrize(("local", "registry", "sandbox", "rule"), COMBINATIONS)
def test_decision_table(local: str, registry: str, sandbox: str, rule: str) -> None:
    node = image_node(transfer=rule)
    observation = Observation(
        daemons={"local": daemon("local", local), "sandbox": daemon("sandbox", sandbox)},
        registry=registry_view(registry),
    )
    ref = REF if registry != "none" else None
    action, reasons = decide_action(node, Manifest("app", KEY), observation, ref, None, Forcing())
    assert action == expected_action(local, registry)
    assert reasons, "every decision carries a reason"
    transfers = decide_transfers(node, KEY, action, observation, registry != "none", ref=ref)
    by_destination = {t.destination: t for t in transfers}
    assert set(by_destination) == {"local", "sandbox"}
    expected_local = {"pull": "registry", "skip": "tag" if local == "unnamed" else "none"}.get(action, "none")
    assert by_destination["local"].mode == expected_local
    assert by_destination["sandbox"].mode == expected_sandbox_mode(sandbox, registry, rule)
    assert all(t.reason for t in transfers)


@pytest.mark.parametrize(
    ("codec", "share", "mode"),
    [("none", True, "tarball"), ("gzip", True, "registry"), ("gzip", False, "tarball")],
)
def test_a_new_build_goes_through_a_gzip_registry_dockerd_pushes_to(
    codec: str, share: bool, mode: str
) -> None:
    """dockerd's own push needs no export and skips the layers it pushed before; planner's uncompressed push
    reads the export, which then streams straight into the destination too."""
    node = image_node()
    observation = Observation(
        daemons={"local": daemon("local", "absent"), "sandbox": daemon("sandbox", "absent")},
        registry=registry_view("lacks"),
    )
    transfers = decide_transfers(node, KEY, "build", observation, True, share, REF, codec)  # type: ignore[arg-type]
    assert {t.destination: t.mode for t in transfers}["sandbox"] == mode


@pytest.mark.parametrize(
    ("held", "sizes", "expected"),
    [
        (0, [10, 20, 30], (3, 60)),  # an empty destination: every layer moves
        (2, [10, 20, 30], (1, 30)),  # it holds the two lower layers: only the top moves
        (3, [10, 20, 30], (0, 0)),
        (1, [10, None, 30], (2, None)),  # a size the history could not place: the count, no bytes
    ],
)
def test_a_delivery_says_what_it_moves(
    held: int, sizes: list[int | None], expected: tuple[int, int | None]
) -> None:
    from planner.base.layer_chain import chain_ids

    diffs = [f"sha256:{c * 64}" for c in "abc"]
    node = image_node()
    sandbox = DaemonView("sandbox", chains=frozenset(chain_ids(diffs)[:held]))
    observation = Observation(
        daemons={"local": daemon("local", "present"), "sandbox": sandbox},
        registry=registry_view("lacks"),
        layers={KEY: tuple(zip(diffs, sizes, strict=True))},
    )
    transfers = decide_transfers(node, KEY, "skip", observation, True, ref=REF)
    delivery = next(t for t in transfers if t.destination == "sandbox")
    assert (delivery.mode, delivery.layers, delivery.size) == ("tarball", *expected)
    # the same layers held at another position (another chain) are not held: a load looks chains up
    elsewhere = DaemonView("sandbox", chains=frozenset(chain_ids(diffs[1:])))
    observation = Observation(
        daemons={"local": daemon("local", "present"), "sandbox": elsewhere},
        registry=registry_view("lacks"),
        layers={KEY: tuple(zip(diffs, [10, 20, 30], strict=True))},
    )
    moved = next(
        t
        for t in decide_transfers(node, KEY, "skip", observation, True, ref=REF)
        if t.destination == "sandbox"
    )
    assert (moved.layers, moved.size) == (3, 60)


def test_transfer_is_judged_at_the_destination_not_the_source() -> None:
    """The users' wrapper once skipped a transfer because the source had the image (their PR #1771)."""
    node = image_node()
    observation = Observation(
        daemons={"local": daemon("local", "present"), "sandbox": daemon("sandbox", "absent")},
        registry=registry_view("lacks"),
    )
    plan = decide(
        {"app": node},
        ["app"],
        {"app": []},
        {"app": Manifest("app", KEY)},
        observation,
        {"app": REF},
        {},
        Forcing(),
        True,
    )
    assert plan[0].action == "skip"
    assert [(t.destination, t.mode) for t in plan[0].transfers] == [
        ("local", "none"),
        ("sandbox", "tarball"),  # the registry lacks it: the local image is streamed
    ]


@pytest.mark.parametrize(
    ("rules", "forcing", "action", "code"),
    [
        ({"always": True}, Forcing(), "build", "forced"),
        ({}, Forcing(everything=True), "build", "forced"),
        ({}, Forcing(nodes=frozenset({"app"})), "build", "forced"),
        ({}, Forcing(nodes=frozenset({"other"})), "skip", "present"),
        ({"skip": True}, Forcing(everything=True), "skip", "rules-skip"),
    ],
)
def test_forcing_and_rules(rules: dict[str, bool], forcing: Forcing, action: str, code: str) -> None:
    node = image_node(**rules)
    observation = Observation(
        daemons={"local": daemon("local", "present"), "sandbox": daemon("sandbox", "present")}, registry=None
    )
    got, reasons = decide_action(node, Manifest("app", KEY), observation, None, None, forcing)
    assert (got, reasons[0].code) == (action, code)


def test_unreachable_local_daemon_makes_the_action_unknown() -> None:
    observation = Observation(daemons={"local": daemon("local", "unreachable")}, registry=None)
    action, reasons = decide_action(image_node(), Manifest("app", KEY), observation, None, None, Forcing())
    assert action == "unknown"
    assert reasons[0].code == "daemon-unreachable"


def test_rebuild_reasons_name_what_changed() -> None:
    old = Manifest(
        "app",
        "old",
        files={"src/a.py": "f 644 1", "src/gone.py": "f 644 2"},
        args={"TOKEN": "h1", "V": "1"},
        upstream={"base": "k1"},
    )
    new = Manifest(
        "app",
        KEY,
        files={"src/a.py": "f 644 9", "src/new.py": "f 644 3"},
        args={"TOKEN": "h2", "V": "1"},
        upstream={"base": "k2"},
    )
    observation = Observation(
        daemons={"local": daemon("local", "absent")}, registry=None, previous_keys={"app": "old"}
    )
    action, reasons = decide_action(image_node(), new, observation, None, old, Forcing())
    assert action == "build"
    by_code = {r.code: r.detail for r in reasons}
    assert by_code["file-changed"] == "+ src/new.py, - src/gone.py, ~ src/a.py"
    assert by_code["arg-changed"] == "~ TOKEN"  # names only: values are never shown
    assert by_code["upstream-changed"] == "~ base"


def test_missing_previous_manifest_is_said_plainly() -> None:
    observation = Observation(
        daemons={"local": daemon("local", "absent")}, registry=None, previous_keys={"app": "old"}
    )
    _, reasons = decide_action(image_node(), Manifest("app", KEY), observation, None, None, Forcing())
    assert reasons[0].code == "inputs-changed"
    assert "not in this machine's cache" in reasons[0].detail


def test_artifacts_are_judged_by_their_output_on_disk() -> None:
    node = Node("tool", "artifact", BuildConfig(context="/ctx"), None, EffectiveRules(), "local", "/out")
    present = Observation(
        daemons={"local": daemon("local", "absent")}, registry=None, artifacts={"tool": True}
    )
    assert decide_action(node, Manifest("tool", KEY), present, None, None, Forcing())[0] == "skip"
    stale = Observation(
        daemons={"local": daemon("local", "absent")}, registry=None, artifacts={"tool": False}
    )
    action, reasons = decide_action(node, Manifest("tool", KEY), stale, None, None, Forcing())
    assert (action, reasons[0].code) == ("build", "new")
    assert decide_transfers(node, KEY, action, stale, True) == []
