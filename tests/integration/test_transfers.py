"""Transfers through a real registry into a real second dockerd, fallbacks, warm, and registry gc."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from planner.apply.run import ApplyOptions, execute
from planner.compose.options import ProjectOptions
from planner.keys.store import Store
from planner.plan.pipeline import make_plan
from tests.integration.conftest import registry_or_skip
from tests.integration.services import SESSION_LABEL, DaemonProcess, RegistryProcess, temp_root
from tests.integration.test_apply import phases, run, steps

pytestmark = pytest.mark.docker
BIG = 6 * 1024 * 1024


def layered_project(
    root: Path,
    name: str,
    registry: str,
    sandbox: str,
    share: bool = True,
    destinations: str = "[local, sandbox]",
) -> Path:
    (root / "app/big").mkdir(parents=True)
    (root / "app/big/blob").write_bytes(os.urandom(BIG))
    (root / "app/small.txt").write_text(f"{name} v1\n")
    (root / "app/Dockerfile").write_text("FROM scratch\nCOPY big /big\nCOPY small.txt /small.txt\n")
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n  app:\n    build: ./app\n")
    (root / "planner.yaml").write_text(
        f"registry:\n  url: {registry}\n  namespace: t\n  share: {str(share).lower()}\n"
        f"destinations:\n  sandbox:\n    host: {sandbox}\n"
        f"rules:\n  - match: '*'\n    destinations: {destinations}\n"
    )
    return root


def test_a_changed_top_layer_moves_only_that_layer(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    root = layered_project(tmp_path / "p", name, registry.host, sandbox.url)
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    first = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t1.jsonl"), env=env)
    assert first.returncode == 0, first.stderr
    assert phases(tmp_path / "t1.jsonl") == {"build": ["app"], "push": ["app"], "transfer": ["app"]}
    stored = registry.blob_bytes()
    assert stored >= BIG

    (root / "app/small.txt").write_text(f"{name} v2 with a few more bytes\n")
    second = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t2.jsonl"), env=env)
    assert second.returncode == 0, second.stderr
    pushed = registry.blob_bytes() - stored
    assert 0 < pushed < 64 * 1024, f"pushed {pushed} bytes for a one-line change"
    delivered = [r for r in steps(tmp_path / "t2.jsonl") if r["phase"] == "transfer"]
    assert len(delivered) == 1 and delivered[0]["bytes"] < 64 * 1024

    third = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t3.jsonl"), env=env)
    assert third.returncode == 0 and steps(tmp_path / "t3.jsonl") == []  # present everywhere: nothing moves


def test_registry_killed_after_planning_falls_back_to_streaming(
    tmp_path: Path, name: str, sandbox: DaemonProcess
) -> None:
    with temp_root("planner-reg2-") as reg_root:
        doomed = registry_or_skip(reg_root)  # its own registry, to kill: skips like the fixture when absent
        root = layered_project(tmp_path / "p", name, doomed.host, sandbox.url, destinations="[local]")
        cache = tmp_path / "cache"
        shared = run(root, "apply", "-q", env={"PLANNER_CACHE_DIR": str(cache)})  # built and shared
        assert shared.returncode == 0, shared.stderr
        rules = root / "planner.yaml"
        rules.write_text(rules.read_text().replace("[local]", "[local, sandbox]"))
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(root)}
        store = Store.open(cache)
        planned = make_plan(
            ProjectOptions(environ=environ, cwd=str(root)), None, [], offline=False, store=store
        )
        node = planned.plan.nodes[0]
        # the registry holds the key: the sandbox pulls it from there (nothing is exported)
        assert {t.destination: t.mode for t in node.transfers}["sandbox"] == "registry"
        doomed.stop()
        result = execute(planned, ApplyOptions(quiet=True), store)
    assert result.exit_code == 0, [(r.step.id, r.error) for r in result.results.values()]
    assert any("streaming save | load" in w for w in result.warnings), (
        result.warnings,
        [(r.step.id, r.status, r.error) for r in result.results.values()],
    )
    import docker

    labels = docker.APIClient(base_url=sandbox.url).inspect_image(f"{name}-app:latest")["Config"]["Labels"]
    assert labels["io.planner.key"] == planned.manifests["app"].key  # the right image, by key


def test_a_destination_reaches_the_registry_under_its_own_name(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    """A nested daemon often sees the registry under another host:port; the delivery uses that name."""
    root = layered_project(tmp_path / "p", name, registry.host, sandbox.url)
    rules = root / "planner.yaml"
    port = registry.host.rsplit(":", 1)[1]
    rules.write_text(
        rules.read_text().replace(
            f"host: {sandbox.url}\n", f"host: {sandbox.url}\n    registry: localhost:{port}\n"
        )
        + "    transfer: registry\n"
    )
    result = run(root, "apply", "-q", env={"PLANNER_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    import docker

    tags = docker.APIClient(base_url=sandbox.url).inspect_image(f"{name}-app:latest")["RepoTags"]
    assert any(tag.startswith(f"localhost:{port}/t/") for tag in tags), tags


def test_unreachable_sandbox_fails_clearly_and_records_nothing(
    tmp_path: Path, name: str, registry: RegistryProcess
) -> None:
    dead = f"unix://{tmp_path}/nothing.sock"
    root = layered_project(tmp_path / "p", name, registry.host, dead)
    result = run(
        root,
        "apply",
        "-q",
        "--timing-log",
        str(tmp_path / "t.jsonl"),
        env={"PLANNER_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 1
    assert "sandbox" in result.stderr and "unreachable" in result.stderr
    status = {r["step"]: r["status"] for r in steps(tmp_path / "t.jsonl")}
    assert status["build:app"] == "ok" and status["transfer:app:sandbox"] == "failed"


def test_fresh_daemon_gets_images_from_a_warm_registry_without_building(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    root = layered_project(tmp_path / "p", name, registry.host, sandbox.url, destinations="[local]")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    assert run(root, "apply", "-q", env=env).returncode == 0  # built and shared (pushed)

    # Another session: its own daemon (the second dockerd plays it) and a cold cache, same sources.
    session = tmp_path / "session"
    shutil.copytree(root, session)
    fresh = {"PLANNER_CACHE_DIR": str(tmp_path / "cache2"), "DOCKER_HOST": sandbox.url}
    planned = run(session, "plan", "--format", "json", env=fresh)
    assert [n["action"] for n in __import__("json").loads(planned.stdout)["nodes"]] == ["pull"]
    applied = run(session, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"), env=fresh)
    assert applied.returncode == 0, applied.stderr
    assert phases(tmp_path / "t.jsonl") == {"pull": ["app"]}


def test_warm_fills_a_destination_from_the_registry(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    root = layered_project(tmp_path / "p", name, registry.host, sandbox.url)
    rules = root / "planner.yaml"
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    rules.write_text(rules.read_text().replace("destinations: [local, sandbox]", "destinations: [local]"))
    assert run(root, "apply", "-q", env=env).returncode == 0
    rules.write_text(rules.read_text().replace("destinations: [local]", "destinations: [local, sandbox]"))
    warmed = run(root, "warm", "--destination", "sandbox", env=env)
    assert warmed.returncode == 0, warmed.stderr
    assert "pulled 1" in warmed.stderr
    again = run(root, "warm", "--destination", "sandbox", env=env)
    assert "pulled 0, already present 1" in again.stderr


def test_gc_keeps_the_newest_keys(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    root = layered_project(tmp_path / "p", name, registry.host, sandbox.url, destinations="[local]")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    for version in range(3):
        (root / "app/small.txt").write_text(f"{name} {version}\n")
        assert run(root, "apply", "-q", env=env).returncode == 0
    dry = run(root, "gc", "--keep", "1", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "keep 1, would remove 2" in dry.stdout
    done = run(root, "gc", "--keep", "1", "--delete", env=env)
    assert "keep 1, removed 2" in done.stdout, done.stdout + done.stderr
    assert "keep 1, would remove 0" in run(root, "gc", "--keep", "1", env=env).stdout
    # the current key is still there: a fresh session could still pull it
    planned = __import__("json").loads(
        run(root, "plan", "--format", "json", env={**env, "DOCKER_HOST": sandbox.url}).stdout
    )
    assert planned["nodes"][0]["action"] == "pull"


def test_gc_keeps_the_current_key_of_an_image_built_on_a_tagged_base(
    tmp_path: Path, project_name: str, registry: RegistryProcess, busybox_image: str, clean_images: None
) -> None:
    """The current key is the one `apply` computes, with the tagged base resolved through the local daemon.

    Keys A, B, C are applied and pushed in turn, then the file goes back to A: A is current but the oldest
    ref in the registry, so `--keep 1` keeps C (newest) and A (current), and removes only B.
    """
    import json
    import urllib.request

    from planner.base.refs import repository_path

    root = tmp_path / "p"
    (root / "app").mkdir(parents=True)
    (root / "app/Dockerfile").write_text(
        f"FROM {busybox_image}\nLABEL {SESSION_LABEL}\nCOPY small.txt /small.txt\n"
    )
    (root / "compose.yaml").write_text(f"name: {project_name}\nservices:\n  app:\n    build: ./app\n")
    (root / "planner.yaml").write_text(
        f"registry:\n  url: {registry.host}\n  namespace: t\n  share: true\n"
        "rules:\n  - match: '*'\n    destinations: [local]\n"
    )
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}

    def current_key() -> str:
        planned = run(root, "plan", "--format", "json", env=env)
        assert planned.returncode == 0, planned.stderr
        return str(json.loads(planned.stdout)["nodes"][0]["key"])

    def tags() -> set[str]:
        url = f"http://{registry.host}/v2/t/{repository_path(f'{project_name}-app')}/tags/list"
        with urllib.request.urlopen(url, timeout=10) as response:
            return set(json.load(response).get("tags") or [])

    keys = []
    for version in ("A", "B", "C"):
        (root / "app/small.txt").write_text(f"{project_name} {version}\n")
        applied = run(root, "apply", "-q", env=env)
        assert applied.returncode == 0, applied.stderr
        keys.append(current_key())
    a, b, c = keys
    assert len(set(keys)) == 3 and tags() == {a, b, c}

    (root / "app/small.txt").write_text(f"{project_name} A\n")  # back to A: current again, and the oldest ref
    assert run(root, "apply", "-q", env=env).returncode == 0
    assert current_key() == a
    done = run(root, "gc", "--keep", "1", "--delete", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "keep 2, removed 1" in done.stdout and f"- {b}" in done.stdout, done.stdout
    assert tags() == {a, c}


def test_a_manifest_deleted_from_the_registry_is_pushed_again_and_no_memo_hides_it(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    """Issue 32: planner believed its record of past pushes, so a manifest deleted from the registry stayed
    missing while every plan said the build was shared. Now each plan asks (a HEAD per manifest); a no-op
    apply still answers from its memo, which asks the registry again and runs in full when it answers otherwise."""
    import json
    import time

    root = layered_project(tmp_path / "p", name, registry.host, sandbox.url, destinations="[local]")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    assert run(root, "apply", "-q", env=env).returncode == 0  # built and pushed
    time.sleep(2.1)  # past the racy window, so the no-op below keeps a memo
    assert run(root, "apply", "-q", env=env).returncode == 0
    memo = run(root, "apply", "-q", "--timing-log", str(tmp_path / "noop.jsonl"), env=env)
    assert memo.returncode == 0 and "nothing to do" in memo.stderr
    assert steps(tmp_path / "noop.jsonl") == []

    tags = registry.storage / f"docker/registry/v2/repositories/t/{name}-app/_manifests/tags"
    (tag,) = list(tags.iterdir())
    shutil.rmtree(tag)  # the manifest's tag is gone from the registry (as `registry garbage-collect` may do)
    planned = json.loads(run(root, "plan", "--format", "json", env=env).stdout)
    assert [s["kind"] for s in planned["steps"]] == ["push"]
    again = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"), env=env)
    assert again.returncode == 0, again.stderr
    assert phases(tmp_path / "t.jsonl") == {"push": ["app"]}
    assert (tags / tag.name).is_dir()
