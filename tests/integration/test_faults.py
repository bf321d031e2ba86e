"""Faults with the real registry and engine: nothing is recorded that did not happen, and a rerun recovers.

- a push that fails (the registry gone before it, or killed while dockerd uploads a layer) is `fell-back` (never
  `ok`), the deliveries stream instead, and the next apply pushes;
- a registry that lost a layer blob: the pull falls back to building, and the rebuilt image is pushed again;
- a stamp is written only once the build it describes succeeded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from planner.apply.run import ApplyOptions, execute
from planner.compose.options import ProjectOptions
from planner.engine.daemon import Daemon, Progress
from planner.keys.store import Store
from planner.plan.pipeline import make_plan
from tests.integration.conftest import registry_or_skip
from tests.integration.services import SESSION_LABEL, DaemonProcess, start_registry, temp_root
from tests.integration.test_apply import run, steps
from tests.integration.test_transfers import layered_project

pytestmark = pytest.mark.docker


def registry_has(host: str, repository: str, tag: str) -> bool:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        return urllib.request.urlopen(request, timeout=5).status == 200
    except urllib.error.HTTPError:
        return False


@pytest.mark.parametrize("when", ["before-the-push", "mid-push"])
def test_a_push_that_failed_is_not_recorded_and_the_next_apply_shares_the_image(
    tmp_path: Path, name: str, sandbox: DaemonProcess, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The default codec (gzip: dockerd's push, which retries a lost upload before it gives up)."""
    with temp_root("planner-reg3-") as reg_root:
        registry = registry_or_skip(reg_root)
        port = int(registry.host.rsplit(":", 1)[1])
        root = layered_project(tmp_path / "p", name, registry.host, sandbox.url)
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(root)}
        store = Store.open(tmp_path / "cache")
        options = ProjectOptions(environ=environ, cwd=str(root))
        planned = make_plan(options, None, [], offline=False, store=store)
        push = next(s for s in planned.plan.steps if s.id == "push:app")
        assert push.method != "layers"  # dockerd's push (planner's own upload: test_uncompressed.py)
        killed: list[dict[str, object]] = []
        if when == "before-the-push":
            registry.stop()  # dies between the plan and the push
        else:
            original = Daemon.push

            def dying(self: Daemon, ref: str, progress: Progress | None = None) -> None:
                def on_event(event: dict[str, object]) -> None:
                    if not killed and event.get("status") == "Pushing":  # a layer upload is under way
                        registry.process.kill()
                        registry.process.wait()
                        killed.append(event)
                    if progress is not None:
                        progress(event)

                original(self, ref, on_event)

            monkeypatch.setattr(Daemon, "push", dying)
        timing = tmp_path / "t1.jsonl"
        result = execute(planned, ApplyOptions(quiet=True, timing_log=timing), store)
        store.close()
        assert when != "mid-push" or killed, "the registry was never killed: no upload progress was seen"
        assert result.exit_code == 0, [(r.step.id, r.error) for r in result.results.values()]
        status = {r["step"]: (r["status"], r["bytes"]) for r in steps(timing)}
        assert status["push:app"][0] == "fell-back"  # not "ok": nothing was shared
        assert status["transfer:app:sandbox"][0] == "ok"  # streamed instead
        report = run(root, "report", str(timing))
        assert "not done: push:app (fell-back)" in report.stdout, report.stdout + report.stderr

        again = start_registry(reg_root, port)  # the registry is back, with the same storage
        try:
            env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
            planned_json = json.loads(run(root, "plan", "--format", "json", env=env).stdout)
            assert [s["id"] for s in planned_json["steps"]] == ["push:app"]  # the share is still pending
            second = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t2.jsonl"), env=env)
            assert second.returncode == 0, second.stderr
            assert [(r["step"], r["status"]) for r in steps(tmp_path / "t2.jsonl")] == [("push:app", "ok")]
            key = planned.manifests["app"].key
            assert registry_has(again.host, f"t/{name}-app", key)
            third = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t3.jsonl"), env=env)
            assert third.returncode == 0 and steps(tmp_path / "t3.jsonl") == []  # shared: nothing left
        finally:
            again.stop()


def manifest_blobs_present(host: str, repository: str, tag: str) -> bool:
    """Whether every layer and the config the manifest names can be fetched."""
    import urllib.error
    import urllib.request

    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}", headers=accept)
    manifest = json.loads(urllib.request.urlopen(request, timeout=5).read())
    for blob in [manifest["config"], *manifest["layers"]]:
        head = urllib.request.Request(f"http://{host}/v2/{repository}/blobs/{blob['digest']}", method="HEAD")
        try:
            urllib.request.urlopen(head, timeout=5)
        except urllib.error.HTTPError:
            return False
    return True


def test_a_registry_that_lost_a_blob_is_healed_by_building_and_pushing_again(
    tmp_path: Path, name: str, sandbox: DaemonProcess
) -> None:
    """Another session (the sandbox daemon plays it: its own daemon, no layers, a cold cache) finds the ref
    in the registry but cannot pull it: it builds instead, with a warning, and pushes the image again."""
    with temp_root("planner-reg4-") as reg_root:
        registry = registry_or_skip(reg_root)
        try:
            root = layered_project(tmp_path / "p", name, registry.host, sandbox.url, destinations="[local]")
            assert run(root, "apply", "-q", env={"PLANNER_CACHE_DIR": str(tmp_path / "c1")}).returncode == 0
            repository = f"t/{name}-app"
            planned = json.loads(
                run(root, "plan", "--format", "json", env={"PLANNER_CACHE_DIR": str(tmp_path / "c1")}).stdout
            )
            key = planned["nodes"][0]["key"]
            blobs = sorted(
                (registry.storage / "docker/registry/v2/blobs").rglob("data"), key=lambda p: -p.stat().st_size
            )
            blobs[0].unlink()  # the big layer is gone; the manifest still names it
            assert not manifest_blobs_present(registry.host, repository, key)

            session = {"PLANNER_CACHE_DIR": str(tmp_path / "c2"), "DOCKER_HOST": sandbox.url}
            fresh = json.loads(run(root, "plan", "--format", "json", env=session).stdout)
            assert fresh["nodes"][0]["action"] == "pull"
            healed = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"), env=session)
            assert healed.returncode == 0, healed.stderr
            assert "building it here instead" in healed.stderr
            assert [(r["step"], r["status"]) for r in steps(tmp_path / "t.jsonl")] == [("pull:app", "ok")]
            assert manifest_blobs_present(registry.host, repository, key)  # whole again, for everyone
        finally:
            registry.stop()


def test_a_failed_build_leaves_its_stamp_unwritten(tmp_path: Path, name: str, busybox_image: str) -> None:
    root = tmp_path / "p"
    (root / "app").mkdir(parents=True)
    (root / "app/Dockerfile").write_text(f"FROM {busybox_image}\nLABEL {SESSION_LABEL}\nRUN false\n")
    (root / "web").mkdir()
    (root / "web/Dockerfile").write_text(f"FROM scratch\nLABEL {SESSION_LABEL}\nCOPY version.txt /v\n")
    (root / "compose.yaml").write_text(
        f"name: {name}\nservices:\n  app:\n    build: ./app\n  web:\n    build: ./web\n"
    )
    (root / "planner.yaml").write_text(
        "stamps:\n  version:\n    from: app\n    path: web/version.txt\n    template: '{key}'\n"
    )
    result = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"),
                 env={"PLANNER_CACHE_DIR": str(tmp_path / "cache")})  # fmt: skip
    assert result.returncode == 1
    status = {r["step"]: r["status"] for r in steps(tmp_path / "t.jsonl")}
    assert status["build:app"] == "failed" and status["stamp:version"] == "not-run"
    assert not (root / "web/version.txt").exists()


def test_an_unreachable_registry_is_said_by_apply_and_fails_warm(
    tmp_path: Path, name: str, sandbox: DaemonProcess
) -> None:
    root = layered_project(tmp_path / "p", name, "127.0.0.1:1", sandbox.url, destinations="[local]")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    applied = run(root, "apply", "-q", env=env)
    assert applied.returncode == 0, applied.stderr  # built; only the sharing is missing
    assert "app: not shared (registry unreachable: not shared); the next apply pushes it" in applied.stderr
    warmed = run(root, "warm", env={**env, "DOCKER_HOST": sandbox.url})
    assert warmed.returncode == 1, warmed.stderr
    assert "the registry could not be asked: 127.0.0.1:1" in warmed.stderr
    assert "registry unreachable: app -> local" in warmed.stderr
