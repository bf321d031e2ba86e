"""Golden data roots without a daemon: what `golden status` and `plan` say per node (decide_goldens), and the
files promote, clone and prune make from a data root written out here as dockerd 20.10 keeps it.
The real parts (XFS reflinks, dockerds on clones, the top-up apply) are in tests/integration/test_golden.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from planner.base.errors import InputError
from planner.build.stack import Node
from planner.compose.model import BuildConfig
from planner.engine import golden
from planner.engine.observation import DaemonView, GoldenImage, GoldenView, Observation
from planner.keys.manifest import Manifest
from planner.plan.decide import decide_goldens
from planner.plan.model import PlanNode
from planner.rules.model import EffectiveRules

OLD, NEW, OTHER = "a" * 32, "b" * 32, "c" * 32


def _node(name: str, destinations: list[str]) -> Node:
    return Node(name, "image", BuildConfig(context="/ctx"), name, EffectiveRules(destinations=destinations))


def _decide(view: GoldenView, daemons: tuple[str, ...] = ("local", "sandbox")) -> dict[str, tuple[str, str]]:
    graph = {"app": _node("app", ["local", "sandbox"]), "api": _node("api", ["local"])}
    nodes = [
        PlanNode(name="app", kind="image", image="app", key=NEW, action="skip"),
        PlanNode(name="api", kind="image", image="api", key=OTHER, action="skip"),
    ]
    manifests = {
        "app": Manifest("app", NEW, files={".:start.sh": "file 644 new"}),
        "api": Manifest("api", OTHER),
    }
    observation = Observation(daemons={d: DaemonView(d) for d in daemons}, registry=None, goldens=(view,))
    old = {OLD: Manifest("app", OLD, files={".:start.sh": "file 644 old"})}
    (report,) = decide_goldens(nodes, graph, manifests, observation, old)
    return {
        n.name: (n.state, n.note + "".join(f" {c.change} {c.input} {c.name}" for c in n.changes))
        for n in report.nodes
    }


def test_a_node_held_under_another_key_is_stale_with_its_changed_inputs() -> None:
    view = GoldenView("sandbox", "/g", "v1", images=(GoldenImage("sha256:1", OLD, "app", ("app:latest",)),))
    states = _decide(view)
    assert states == {
        "app": (
            "stale",
            "1 input(s) differ from the golden's build (key aaaaaaaaaaaa) changed file .:start.sh",
        )
    }


def test_the_current_key_is_present_and_only_the_destinations_nodes_count() -> None:
    view = GoldenView("sandbox", "/g", "v1", images=(GoldenImage("sha256:1", NEW, "app", ("app:latest",)),))
    assert _decide(view) == {"app": ("present", "")}  # api never goes to the sandbox


def test_a_golden_named_by_path_alone_is_asked_about_every_image_node() -> None:
    view = GoldenView("golden", "/g", "v1", images=(GoldenImage("sha256:1", NEW, "app", ("app:latest",)),))
    assert {n: s for n, (s, _) in _decide(view).items()} == {"app": "present", "api": "absent"}


def test_an_image_with_the_nodes_name_but_no_key_label_is_not_trusted() -> None:
    view = GoldenView("sandbox", "/g", "v1", images=(GoldenImage("sha256:9", None, None, ("app:latest",)),))
    state, note = _decide(view)["app"]
    assert state == "absent" and "sha256:9" in note and "not trusted" in note


def _data_root(root: Path, images: dict[str, tuple[str, str | None]]) -> Path:
    """A stopped fuse-overlayfs daemon's data root: image ID -> (name, io.planner.key label)."""
    store = root / "image/fuse-overlayfs"
    (store / "imagedb/content/sha256").mkdir(parents=True)
    (root / "fuse-overlayfs/l").mkdir(parents=True)
    repositories: dict[str, dict[str, str]] = {}
    for image_id, (name, key) in images.items():
        labels = {"io.planner.key": key, "io.planner.node": name.split(":")[0]} if key else {}
        config = {"os": "linux", "architecture": "amd64", "config": {"Labels": labels}}
        (store / "imagedb/content/sha256" / image_id).write_text(json.dumps(config))
        repositories.setdefault(name.split(":")[0], {})[name] = f"sha256:{image_id}"
    (store / "repositories.json").write_text(json.dumps({"Repositories": repositories}))
    (root / "fuse-overlayfs/l/layer").write_bytes(os.urandom(4096))
    return root


def test_promote_writes_the_manifest_and_switches_current(tmp_path: Path) -> None:
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW), "2" * 64: ("busybox:latest", None)})
    made = golden.promote(source, tmp_path / "golden")
    version = golden.current(tmp_path / "golden")
    assert made.version is not None and version.id == made.version.id
    manifest = version.manifest
    assert manifest["storage_driver"] == "fuse-overlayfs" and manifest["source"] == str(source.resolve())
    assert manifest["planner_version"] and manifest["created"]
    assert [(i["names"], i["key"]) for i in manifest["images"]] == [
        (["app:latest"], NEW),
        (["busybox:latest"], None),
    ]
    assert (version.data / "fuse-overlayfs/l/layer").read_bytes() == (
        source / "fuse-overlayfs/l/layer"
    ).read_bytes()
    assert os.readlink(tmp_path / "golden/current") == f"versions/{version.id}"


def test_an_interrupted_promote_leaves_no_version_and_current_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW)})
    first = golden.promote(source, tmp_path / "golden").version
    assert first is not None

    def cut(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(golden, "_materialise", cut)
    with pytest.raises(KeyboardInterrupt):
        golden.promote(source, tmp_path / "golden")
    assert golden.current(tmp_path / "golden").id == first.id
    assert os.listdir(tmp_path / "golden/versions") == [first.id]  # no partial left either


def test_clone_refuses_a_data_root_that_holds_files_and_a_reflink_it_cannot_make(tmp_path: Path) -> None:
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW)})
    golden.promote(source, tmp_path / "golden")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/file").touch()
    with pytest.raises(InputError, match="not an empty folder"):
        golden.clone(tmp_path / "golden", tmp_path / "busy", "copy")
    if golden.pick_method(golden.current(tmp_path / "golden").data, tmp_path, "auto", "vfs") != "reflink":
        with pytest.raises(InputError, match="reflink"):
            golden.clone(tmp_path / "golden", tmp_path / "new", "reflink")
        assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match="does not nest"):
        golden.pick_method(source, tmp_path, "overlay", "overlay2")


def test_prune_keeps_current_the_newest_n_and_versions_clones_use(tmp_path: Path) -> None:
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW)})
    ids = []
    for n in range(4):
        made = golden.promote(source, tmp_path / "golden").version
        assert made is not None
        ids.append(made.id)
        if n == 0:
            cloned = golden.clone(tmp_path / "golden", tmp_path / "clone/data", "copy")
            assert cloned.method == "copy" and (tmp_path / "clone/data/fuse-overlayfs/l/layer").is_file()
    pruned = golden.prune(tmp_path / "golden", keep=2)
    assert sorted(pruned.kept) == [ids[0], ids[2], ids[3]] and pruned.removed == [ids[1]]
    assert pruned.in_use == {ids[0]: [str(tmp_path / "clone/data")]}
    golden.promote(source, tmp_path / "golden")
    shutil.rmtree(tmp_path / "clone")  # the clone is gone: its version is free
    assert ids[0] in golden.prune(tmp_path / "golden", keep=0).removed
    assert golden.versions(tmp_path / "golden") == [golden.current(tmp_path / "golden").id]


@pytest.mark.parametrize("made", [False, True], ids=["new-folder", "empty-folder"])
def test_a_prune_during_a_clone_keeps_the_version_being_cloned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: bool
) -> None:
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW)})
    first = golden.promote(source, tmp_path / "golden").version
    assert first is not None
    materialise = golden._materialise
    pruned: list[golden.Pruned] = []

    def meanwhile(*args: object) -> object:  # a new version is promoted and old ones pruned mid-clone
        monkeypatch.setattr(golden, "_materialise", materialise)
        golden.promote(source, tmp_path / "golden")
        pruned.append(golden.prune(tmp_path / "golden", keep=0))
        return materialise(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(golden, "_materialise", meanwhile)
    if made:
        (tmp_path / "clone/data").mkdir(parents=True)  # e.g. a mount point made beforehand
    golden.clone(tmp_path / "golden", tmp_path / "clone/data", "copy")
    assert pruned[0].removed == [] and first.id in pruned[0].in_use
    assert (tmp_path / "clone/data/fuse-overlayfs/l/layer").is_file()


def test_a_cloners_pid_reused_by_another_process_does_not_hold_the_version(tmp_path: Path) -> None:
    """#16: a clone's registration names the cloning process by pid and start time; a SIGKILLed cloner whose pid
    now belongs to another process (here: this test's own pid, with another start time) holds nothing."""
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW)})
    first = golden.promote(source, tmp_path / "golden").version
    assert first is not None
    golden.promote(source, tmp_path / "golden")
    started = golden.process_start(os.getpid())
    assert started is not None and started.isdigit()
    registration = first.path / "clones" / "killed.json"
    registration.parent.mkdir(exist_ok=True)
    half_made = str(tmp_path / "clone/data")  # the killed cloner never made it
    registration.write_text(json.dumps({"path": half_made, "pid": os.getpid(), "started": started}) + "\n")
    assert golden.clones_of(first) == [Path(half_made)]  # the cloner itself, still at work: in use
    registration.write_text(json.dumps({"path": half_made, "pid": os.getpid(), "started": "1"}) + "\n")
    assert golden.clones_of(first) == []  # the same pid, another process
    pruned = golden.prune(tmp_path / "golden", keep=0)
    assert pruned.removed == [first.id] and pruned.in_use == {}


def test_auto_without_reflinks_takes_an_overlay_only_for_drivers_that_run_on_it(tmp_path: Path) -> None:
    source = _data_root(tmp_path / "src", {"1" * 64: ("app:latest", NEW)})
    (tmp_path / "clones").mkdir()
    if golden.can_reflink(source / "fuse-overlayfs/l/layer", tmp_path / "clones"):
        pytest.skip(f"{tmp_path} clones files: auto takes a reflink")
    assert (
        golden.pick_method(source, tmp_path / "clones", "auto", "overlay2") == "copy"
    )  # overlay does not nest
    mountable = golden._overlay_mountable(tmp_path / "clones")
    chosen = golden.pick_method(source, tmp_path / "clones", "auto", "fuse-overlayfs")
    assert chosen == ("overlay" if mountable else "copy")
    assert os.listdir(tmp_path / "clones") == []  # the probes leave nothing behind
