"""Golden data roots with real parts: an XFS filesystem with reflink on a loop device, a real dockerd filled by
`planner apply` on examples/compose/helix (as its sandbox destination) and stopped, promote, clones by reflink and
by copy, fresh daemons started on them, a stale node topped up exactly, a promote while a clone is in use, an
interrupted clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from planner.engine import clonefs
from planner.engine import golden as golden_files
from tests.conftest import docker_unavailable
from tests.integration.conftest import REPO, dockerd_or_skip, remove_project_images
from tests.integration.services import (
    TEST_LABEL,
    TEST_SESSION,
    DaemonProcess,
    RegistryProcess,
    remove_test_images,
)
from tests.integration.test_apply import run, steps
from tests.integration.xfs import xfs_mount

pytestmark = pytest.mark.docker
BIG = 3 * 1024 * 1024


@dataclass
class Golden:
    xfs: Path
    source: Path  # the stopped daemon's root (data root: source / "data")
    golden: Path
    project: Path
    name: str
    env: dict[str, str]
    busybox: str
    images: dict[str, list[str]]  # what the source daemon listed before it stopped: ID -> names


def _api(url: str) -> Any:
    import docker

    return docker.APIClient(base_url=url, timeout=120)


def _images(url: str) -> dict[str, list[str]]:
    client = _api(url)
    try:
        return {i["Id"]: sorted(i["RepoTags"] or []) for i in client.images()}
    finally:
        client.close()


def _run_container(url: str, image: str) -> str:
    client = _api(url)
    try:
        host = client.create_host_config(network_mode="none")
        made = client.create_container(
            image, ["echo", "ran on the clone"], labels={TEST_LABEL: TEST_SESSION}, host_config=host
        )
        client.start(made)
        client.wait(made, timeout=60)
        out = client.logs(made).decode()
        client.remove_container(made, force=True)
        return out
    finally:
        client.close()


def _helix(root: Path, name: str) -> Path:
    shutil.copytree(REPO / "examples/compose/helix", root, symlinks=True)
    rules = root / "planner.yaml"
    text = (REPO / "rules/helix.yaml").read_text()
    rules.unlink()
    # api goes to the sandbox as well: a node the desktop change leaves alone, which the top-up must not send
    text = text.replace("image: helix-", f"image: {name}-")
    rules.write_text(text + "  - match: api\n    destinations: [local, sandbox]\n")
    (root / "desktop/big.bin").write_bytes(os.urandom(BIG))  # the desktop layer: a few MB
    # as many MB in a layer below it that no desktop change touches: sending the whole image moves twice the
    # changed layer, so the top-up's bound (1.2x the changed layer) tells an exact delivery from a whole one
    (root / "qwen-code/packages/cli/big.bin").write_bytes(os.urandom(BIG))
    for folder in ("api", "desktop", "zed", "qwen-code", "sandbox"):  # keys of this test's own
        (root / folder / "test-id").write_text(name)
    return root


@pytest.fixture(scope="module")
def golden(
    registry: RegistryProcess, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Golden]:
    try:
        manager = xfs_mount("2G")
        xfs = manager.__enter__()
    except RuntimeError as exc:
        docker_unavailable(str(exc))
    name = f"gd{os.getpid()}"
    tmp = tmp_path_factory.mktemp("golden")
    source = xfs / "src"
    daemon = dockerd_or_skip(source)
    try:
        project = _helix(tmp / "helix", name)
        env = {
            "PLANNER_CACHE_DIR": str(tmp / "cache"), "PLANNER_REGISTRY": registry.host,
            "SANDBOX_DOCKER_HOST": daemon.url, "COMPOSE_PROJECT_NAME": name,
        }  # fmt: skip
        applied = run(project, "apply", "-q", env=env)
        assert applied.returncode == 0, applied.stderr
        saved = subprocess.run(["docker", "save", busybox_image], capture_output=True, check=True).stdout
        _api(daemon.url).load_image(saved)

        # a daemon still uses the data root: refused
        refused = run(project, "golden", "promote", str(source / "data"), str(xfs / "golden"))
        assert refused.returncode == 2 and "in use" in refused.stderr, refused.stderr
        images = _images(daemon.url)
        daemon.stop()
        promoted = run(project, "golden", "promote", str(source / "data"), str(xfs / "golden"), env=env)
        assert promoted.returncode == 0, promoted.stderr
        assert "by reflink" in promoted.stdout, promoted.stdout
        yield Golden(xfs, source, xfs / "golden", project, name, env, busybox_image, images)
    finally:
        daemon.stop()
        remove_project_images(name)
        remove_test_images(None)
        manager.__exit__(None, None, None)


@pytest.fixture
def started() -> Iterator[list[DaemonProcess]]:
    daemons: list[DaemonProcess] = []
    yield daemons
    for daemon in daemons:
        remove_test_images(daemon.url)
        daemon.stop()
        if os.path.ismount(daemon.root / "data"):  # an overlay clone
            subprocess.run(["umount", str(daemon.root / "data")], check=True)


def test_a_promote_without_reflinks_copies_never_an_overlay_over_the_source(
    golden: Golden, tmp_path: Path
) -> None:
    """The source data root goes on changing (or is deleted) after the promote: a version on another
    filesystem is a copy of its own, even where an overlay mount would be quicker."""
    elsewhere = tmp_path / "golden"  # not on the XFS mount: no reflinks
    promoted = run(golden.project, "golden", "promote", str(golden.source / "data"), str(elsewhere))
    assert promoted.returncode == 0, promoted.stderr
    assert "by copy" in promoted.stdout, promoted.stdout
    version = golden_files.current(elsewhere)
    assert not os.path.ismount(version.data) and version.manifest["method"] == "copy"
    assert {i["id"] for i in version.manifest["images"]} == {
        i["id"] for i in golden_files.current(golden.golden).manifest["images"]
    }


def test_the_manifest_lists_every_image_with_its_key(golden: Golden) -> None:
    manifest = json.loads((golden.golden / "current/manifest.json").read_text())
    assert manifest["storage_driver"] == "fuse-overlayfs"
    assert manifest["source"] == str(golden.source / "data")
    by_node = {i["node"]: i for i in manifest["images"] if i["key"]}
    assert f"{golden.name}-ubuntu:latest" in by_node["helix-ubuntu"]["names"]
    assert any(golden.busybox in i["names"] and i["key"] is None for i in manifest["images"])
    assert by_node["helix-ubuntu"]["key"] in manifest["inputs"]  # input manifests travel with the golden


@pytest.mark.parametrize("method", ["reflink", "copy", "overlay"])
def test_a_daemon_on_a_clone_holds_the_same_images_and_needs_nothing(
    golden: Golden, method: str, started: list[DaemonProcess]
) -> None:
    root = golden.xfs / f"clone-{method}"
    cloned = run(
        golden.project, "golden", "clone", "--method", method, str(golden.golden), str(root / "data")
    )
    assert cloned.returncode == 0, cloned.stderr
    assert f"by {method} in" in cloned.stdout
    source_images = {
        i["id"]: sorted(i["names"]) for i in golden_files.current(golden.golden).manifest["images"]
    }
    daemon = dockerd_or_skip(root)
    started.append(daemon)
    assert _images(daemon.url) == source_images == golden.images
    assert _run_container(daemon.url, golden.busybox).strip() == "ran on the clone"

    env = {**golden.env, "SANDBOX_DOCKER_HOST": daemon.url}
    planned = run(golden.project, "plan", "--format", "json", env=env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    at_sandbox = {
        n["name"]: t["mode"] for n in plan["nodes"] for t in n["transfers"] if t["destination"] == "sandbox"
    }
    assert at_sandbox == {"helix-ubuntu": "none", "api": "none"}
    assert not [s for s in plan["steps"] if s.get("destination") == "sandbox"]


def test_a_changed_desktop_file_is_stale_and_apply_delivers_only_it(
    golden: Golden, started: list[DaemonProcess], tmp_path: Path
) -> None:
    start = golden.project / "desktop/start.sh"
    before = start.read_text()
    start.write_text(before + "echo changed\n")
    try:
        status = run(golden.project, "golden", "status", str(golden.golden), "-d", "sandbox", "--format", "json",
                     env=golden.env)  # fmt: skip
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        states = {n["name"]: n for n in report["nodes"]}
        assert {n: s["state"] for n, s in states.items()} == {"helix-ubuntu": "stale", "api": "present"}
        stale = states["helix-ubuntu"]
        assert stale["golden_key"] != stale["key"]
        assert {"change": "changed", "input": "file", "name": ".:desktop/start.sh"} in stale[
            "changes"
        ] or any(
            c["name"].endswith("desktop/start.sh") and c["change"] == "changed" for c in stale["changes"]
        ), stale["changes"]
        everything = json.loads(
            run(
                golden.project, "golden", "status", str(golden.golden), "--format", "json", env=golden.env
            ).stdout
        )
        every = {n["name"]: n["state"] for n in everything["nodes"]}  # GOLDEN named by path: every image node
        assert every["helix-ubuntu"] == "stale" and every["api"] == "present"
        assert every["frontend"] == "absent"  # frontend never went to the sandbox

        root = golden.xfs / "clone-topup"
        cloned = run(golden.project, "golden", "clone", str(golden.golden), str(root / "data"))
        assert cloned.returncode == 0, cloned.stderr
        assert " by reflink in " in cloned.stdout  # auto, on XFS made with reflink=1
        daemon = dockerd_or_skip(root)
        started.append(daemon)
        timing = tmp_path / "t.jsonl"
        env = {**golden.env, "SANDBOX_DOCKER_HOST": daemon.url}
        applied = run(golden.project, "apply", "-q", "--timing-log", str(timing), env=env)
        assert applied.returncode == 0, applied.stderr
        delivered = [r for r in steps(timing) if r["step"].endswith(":sandbox") and r["phase"] == "transfer"]
        assert [r["node"] for r in delivered] == ["helix-ubuntu"], steps(timing)
        client = _api(daemon.url)
        try:
            layer = next(
                h["Size"] for h in client.history(f"{golden.name}-ubuntu") if "desktop/" in h["CreatedBy"]
            )
            whole = client.inspect_image(f"{golden.name}-ubuntu")["Size"]
        finally:
            client.close()
        assert layer >= BIG
        assert whole >= layer + BIG  # the unchanged layers weigh as much: the bound below can fail
        assert delivered[0]["bytes"] <= 1.2 * layer, (delivered[0]["bytes"], layer, whole)
    finally:
        start.write_text(before)


def test_a_destination_naming_its_golden_gets_its_age_and_stale_nodes_in_the_plan(golden: Golden) -> None:
    rules = golden.project / "planner.yaml"
    start = golden.project / "desktop/start.sh"
    rules_before, start_before = rules.read_text(), start.read_text()
    host = "    host: ${SANDBOX_DOCKER_HOST:-unix:///run/planner-sandbox/docker.sock}\n"
    assert host in rules_before
    rules.write_text(rules_before.replace(host, host + f"    golden: {golden.golden}\n"))
    start.write_text(start_before + "echo changed\n")
    try:
        version = golden_files.current(golden.golden).id
        text = run(golden.project, "plan", env=golden.env)
        assert text.returncode == 0, text.stderr
        words = " ".join(text.stdout.split())  # the console wraps long lines
        line = words[words.index("golden(sandbox):") :]
        assert line.startswith(f"golden(sandbox): {golden.golden} version {version}, "), line
        assert " old: 1 present, 1 stale (helix-ubuntu)" in line, line
        plan = json.loads(run(golden.project, "plan", "--format", "json", env=golden.env).stdout)
        (report,) = plan["goldens"]
        assert report["destination"] == "sandbox" and report["version"] == version and report["created"]
        assert {n["name"]: n["state"] for n in report["nodes"]} == {"helix-ubuntu": "stale", "api": "present"}
        status = run(
            golden.project, "golden", "status", str(golden.golden), "--format", "json", env=golden.env
        )
        assert json.loads(status.stdout)["destination"] == "sandbox"  # the destination whose rules name it
    finally:
        rules.write_text(rules_before)
        start.write_text(start_before)


@pytest.mark.parametrize("method", ["reflink", "overlay"])  # an overlay clone reads the version's own files
def test_promote_while_a_clone_is_in_use_leaves_the_clone_working(
    golden: Golden, started: list[DaemonProcess], method: str
) -> None:
    root = golden.xfs / f"clone-busy-{method}"
    cloned = run(
        golden.project, "golden", "clone", "--method", method, str(golden.golden), str(root / "data")
    )
    assert cloned.returncode == 0, cloned.stderr
    used = golden_files.current(golden.golden).id
    daemon = dockerd_or_skip(root)
    started.append(daemon)
    again = run(
        golden.project, "golden", "promote", str(golden.source / "data"), str(golden.golden), env=golden.env
    )
    assert again.returncode == 0, again.stderr
    assert golden_files.current(golden.golden).id != used
    assert _run_container(daemon.url, golden.busybox).strip() == "ran on the clone"
    unused = golden_files.current(golden.golden).id
    assert (
        run(golden.project, "golden", "promote", str(golden.source / "data"), str(golden.golden)).returncode
        == 0
    )
    pruned = run(golden.project, "golden", "prune", str(golden.golden), "--keep", "0")
    assert pruned.returncode == 0, pruned.stderr
    in_use = next(line for line in pruned.stdout.splitlines() if line.startswith(f"kept {used}: in use by"))
    users = in_use.split(": in use by ", 1)[1].split(", ")
    assert str(root / "data") in users, pruned.stdout
    assert f"removed {unused}" in pruned.stdout
    left = golden_files.versions(golden.golden)  # with versions earlier tests' clones still use
    assert used in left and golden_files.current(golden.golden).id in left and unused not in left
    assert _run_container(daemon.url, golden.busybox).strip() == "ran on the clone"


def test_an_interrupted_clone_leaves_no_data_root(golden: Golden, monkeypatch: pytest.MonkeyPatch) -> None:
    copied = clonefs._copy_data
    calls = {"n": 0}

    def interrupted(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        copied(*args)

    monkeypatch.setattr(clonefs, "_copy_data", interrupted)
    target = golden.xfs / "clone-cut" / "data"
    with pytest.raises(KeyboardInterrupt):
        golden_files.clone(golden.golden, target, "copy", jobs=1)
    assert calls["n"] >= 5
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # and no partial beside it


def test_a_clone_killed_midway_leaves_no_data_root(golden: Golden) -> None:
    target = golden.xfs / "clone-killed" / "data"
    target.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = ["python3", "-c", "import sys, planner.engine.golden as g, planner.engine.clonefs as c, os, signal\n"
               "orig = c._copy_data\n"
               "def slow(*a):\n    orig(*a)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
               "c._copy_data = slow\n"
               f"g.clone(g.Path({str(golden.golden)!r}), g.Path({str(target)!r}), 'copy', 1)\n"]  # fmt: skip
    killed = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                            check=False)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert not target.exists()  # the partial beside it is never DATA_ROOT
    again = run(golden.project, "golden", "clone", "--method", "copy", str(golden.golden), str(target))
    assert again.returncode == 0, again.stderr
    assert [p.name for p in target.parent.iterdir()] == ["data"]  # the dead run's partial was cleared
