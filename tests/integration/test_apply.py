"""`planner apply` with the real engine (and, for helix, a real registry and sandbox daemon)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from planner.engine.labels import LABEL_KEY
from tests.integration.conftest import remove_project_images
from tests.integration.services import DaemonProcess, RegistryProcess

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def run(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], cwd=root, env=full_env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def steps(timing: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in timing.read_text().splitlines()] if timing.exists() else []


def phases(timing: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for record in steps(timing):
        if record["status"] == "ok":
            found.setdefault(record["phase"], []).append(record["node"])
    return {phase: sorted(nodes) for phase, nodes in found.items()}


def test_first_apply_builds_second_does_nothing_edits_rebuild_exactly_what_changed(
    basic: Path, tmp_path: Path
) -> None:
    cache = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    first = run(basic, "apply", "--timing-log", str(tmp_path / "t1.jsonl"), "-q", env=cache)
    assert first.returncode == 0, first.stderr
    assert phases(tmp_path / "t1.jsonl") == {"build": ["api", "web"]}

    second = run(basic, "apply", "--timing-log", str(tmp_path / "t2.jsonl"), "-q", env=cache)
    assert second.returncode == 0, second.stderr
    assert steps(tmp_path / "t2.jsonl") == []  # no builder call, not even a tag
    assert "2 skip" in second.stderr

    (basic / "web/index.html").write_text("<h1>changed</h1>\n")
    third = run(basic, "apply", "--timing-log", str(tmp_path / "t3.jsonl"), "-q", env=cache)
    assert third.returncode == 0, third.stderr
    assert phases(tmp_path / "t3.jsonl") == {"build": ["web"]}

    (basic / "api/app.txt").write_text("api v2\n")
    fourth = run(basic, "apply", "--timing-log", str(tmp_path / "t4.jsonl"), "-q", env=cache)
    assert fourth.returncode == 0, fourth.stderr
    assert phases(tmp_path / "t4.jsonl") == {"build": ["api", "web"]}  # web copies from api: it follows


def test_explain_names_the_changed_inputs(basic: Path, tmp_path: Path) -> None:
    cache = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    assert run(basic, "apply", "-q", env=cache).returncode == 0
    unchanged = run(basic, "explain", "web", env=cache)
    assert unchanged.returncode == 0 and "exactly these inputs" in unchanged.stdout
    (basic / "web/index.html").write_text("<h1>changed</h1>\n")
    (basic / "web/new.css").write_text("h1 {}\n")
    (basic / "api/app.txt").write_text("api v3\n")
    explained = json.loads(run(basic, "explain", "web", "--format", "json", env=cache).stdout)
    changes = {(c["change"], c["input"], c["name"]) for c in explained["changes"]}
    # web's Dockerfile COPYs index.html only: new.css is in its context but no input of its key
    assert changes == {("changed", "file", "index.html"), ("changed", "upstream", "api")}
    assert explained["context"] == "the key covers the context paths the build reads"
    other_machine = run(basic, "explain", "web", env={"PLANNER_CACHE_DIR": str(tmp_path / "other")})
    assert "not in this machine's cache" in other_machine.stdout


def test_revert_moves_the_names_back_without_building(basic: Path, tmp_path: Path, project_name: str) -> None:
    import docker

    cache = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    app = basic / "api/app.txt"
    original = app.read_text()
    assert run(basic, "apply", "-q", env=cache).returncode == 0
    app.write_text("something else\n")
    assert run(basic, "apply", "-q", env=cache).returncode == 0
    app.write_text(original)
    result = run(basic, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"), env=cache)
    assert result.returncode == 0, result.stderr
    assert "build" not in phases(tmp_path / "t.jsonl")
    client = docker.from_env()
    labels = client.images.get(f"{project_name}-api:latest").labels
    planned = json.loads(run(basic, "plan", "--format", "json", env=cache).stdout)
    assert labels[LABEL_KEY] == next(n["key"] for n in planned["nodes"] if n["name"] == "api")


def failing_project(root: Path, name: str) -> Path:
    root.mkdir()
    for node, dockerfile in {
        "a": "FROM scratch\nCOPY a.txt /a\n",
        "b": f"FROM {name}-a\nCOPY b.txt /b\n",
        "c": "FROM scratch\nCOPY does-not-exist /x\n",
        "d": f"FROM {name}-c\nCOPY d.txt /d\n",
    }.items():
        (root / node).mkdir()
        (root / node / "Dockerfile").write_text(dockerfile)
        (root / node / f"{node}.txt").write_text(f"{node} {name}")
    services = "".join(f"  {n}:\n    build: ./{n}\n" for n in "abcd")
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n{services}")
    return root


def test_failure_stops_dependents_and_keep_going_finishes_the_rest(tmp_path: Path, project_name: str) -> None:
    root = failing_project(tmp_path / "p", project_name)
    cache = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    result = run(root, "apply", "--keep-going", "--timing-log", str(tmp_path / "t.jsonl"), "-q", env=cache)
    assert result.returncode == 1
    status = {r["step"]: r["status"] for r in steps(tmp_path / "t.jsonl")}
    assert status == {"build:a": "ok", "build:b": "ok", "build:c": "failed", "build:d": "not-run"}
    assert "build:c failed" in result.stderr
    assert "does-not-exist" in result.stderr  # the build log is shown on failure
    log_file = Path(result.stderr.split("full log: ")[1].split()[0])
    assert "does-not-exist" in log_file.read_text()  # and kept

    # Nothing is recorded for what failed: the next plan still builds c and d, and only them.
    planned = json.loads(run(root, "plan", "--format", "json", env=cache).stdout)
    assert {n["name"]: n["action"] for n in planned["nodes"]} == {
        "a": "skip",
        "b": "skip",
        "c": "build",
        "d": "build",
    }


def test_without_keep_going_nothing_new_starts_after_a_failure(tmp_path: Path, project_name: str) -> None:
    root = failing_project(tmp_path / "p", project_name)
    result = run(root, "apply", "--jobs", "1", "c", "d", "--timing-log", str(tmp_path / "t.jsonl"), "-q",
                 env={"PLANNER_CACHE_DIR": str(tmp_path / "cache")})  # fmt: skip
    assert result.returncode == 1
    assert {r["step"]: r["status"] for r in steps(tmp_path / "t.jsonl")} == {
        "build:c": "failed",
        "build:d": "not-run",
    }


def test_services_sharing_one_image_and_build_are_built_once(
    tmp_path: Path, project_name: str, busybox_image: str, docker_client: Any
) -> None:
    """#13: services on one image name and build definition (one project has 20) make one build step, every
    name they give the image is there afterwards, and the next apply does nothing."""
    root = tmp_path / "p"
    (root / "app").mkdir(parents=True)
    (root / "app/Dockerfile").write_text(f"FROM {busybox_image}\nCOPY id /id\nRUN cat /id > /copied\n")
    (root / "app/id").write_text(f"{project_name} {time.time()}\n")  # this test's own content: its own key
    image, tag = f"{project_name}/app:1", f"{project_name}/app:extra"
    build = f"      context: ./app\n      network: none\n      tags: [{tag}]\n"
    workers = [f"worker{i}" for i in range(4)]
    services = "".join(
        f"  {w}:\n    image: {image}\n    command: [sh, -c, 'echo {w}']\n    build:\n{build}" for w in workers
    )
    (root / "compose.yaml").write_text(f"name: {project_name}\nservices:\n{services}")
    cache = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}

    first = run(root, "apply", "--timing-log", str(tmp_path / "t1.jsonl"), env=cache)
    assert first.returncode == 0, first.stderr
    builds = [r["step"] for r in steps(tmp_path / "t1.jsonl") if r["phase"] == "build"]
    assert builds == ["build:worker0"], steps(tmp_path / "t1.jsonl")
    assert "1 build, 3 on another node's image (made once); steps: 1 ok" in first.stderr

    planned = json.loads(run(root, "plan", "--format", "json", env=cache).stdout)
    keys = {n["name"]: n["key"] for n in planned["nodes"]}
    assert sorted(keys) == workers and len(set(keys.values())) == 1
    made = docker_client.images.get(image)
    assert made.labels[LABEL_KEY] == keys["worker0"]
    assert docker_client.images.get(tag).id == made.id  # every name the services give it, on the one image
    assert {n["action"] for n in planned["nodes"]} == {"skip"}

    second = run(root, "apply", "--timing-log", str(tmp_path / "t2.jsonl"), env=cache)
    assert second.returncode == 0, second.stderr
    assert steps(tmp_path / "t2.jsonl") == []  # no builder call, not even a tag
    assert "steps: nothing to do" in second.stderr


def slow_project(root: Path, name: str, base: str, seconds: int) -> Path:
    (root / "slow").mkdir(parents=True)
    # the echo makes the step unique, so no earlier run's build cache can answer it
    (root / "slow/Dockerfile").write_text(
        f"FROM {base}\nRUN echo {name} {time.time()} && sleep {seconds}\nCOPY x /x\n"
    )
    (root / "slow/x").write_text(name)
    (root / "compose.yaml").write_text(
        f"name: {name}\nservices:\n  slow:\n    build:\n      context: ./slow\n      network: none\n"
    )
    return root


def test_interrupt_cancels_the_build_and_records_nothing(
    tmp_path: Path, project_name: str, busybox_image: str
) -> None:
    root = slow_project(tmp_path / "p", project_name, busybox_image, 60)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-m", "planner", "apply", "-q"], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(4)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - started < 30, "the build was not cancelled"
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    planned = json.loads(
        run(root, "plan", "--format", "json", env={"PLANNER_CACHE_DIR": str(tmp_path / "cache")}).stdout
    )
    assert planned["nodes"][0]["action"] == "build"  # nothing half-done counts as built


def test_two_concurrent_applies_build_each_node_once(
    tmp_path: Path, project_name: str, busybox_image: str
) -> None:
    root = slow_project(tmp_path / "p", project_name, busybox_image, 2)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "planner", "apply", "-q", "--timing-log", str(tmp_path / f"t{i}.jsonl")],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    builds = [r for i in range(2) for r in steps(tmp_path / f"t{i}.jsonl") if r["phase"] == "build"]
    assert len(builds) == 1
    assert any("waiting for the apply" in err for _, err in outputs)


def test_helix_apply_delivers_the_desktop_to_the_sandbox(
    tmp_path: Path, project_name: str, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    root = tmp_path / "helix"
    shutil.copytree(REPO / "examples/compose/helix", root, symlinks=False)
    rules = root / "planner.yaml"
    rules.write_text(rules.read_text().replace("image: helix-", f"image: {project_name}-helix-"))
    for folder in ("api", "frontend", "desktop", "sandbox", "zed/crates", "qwen-code/packages"):
        (root / folder / "test-id").write_text(project_name)  # this test's own content, hence its own keys
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache"), "PLANNER_REGISTRY": registry.host,
           "SANDBOX_DOCKER_HOST": sandbox.url, "COMPOSE_PROJECT_NAME": project_name}  # fmt: skip
    try:
        first = run(root, "apply", "--timing-log", str(tmp_path / "t1.jsonl"), "-q", env=env)
        assert first.returncode == 0, first.stderr
        done = phases(tmp_path / "t1.jsonl")
        assert done["build"] == ["api", "frontend", "helix-sandbox", "helix-ubuntu"]
        assert done["export"] == ["qwen-code-build", "zed-build"]
        assert done["transfer"] == ["helix-ubuntu"]
        assert (root / "zed-build/zed").is_file()
        assert (root / "qwen-code-build/qwen-code.tar").is_file()
        version = (root / "sandbox-images/helix-ubuntu.version").read_text().strip()
        import docker

        sandbox_client = docker.APIClient(base_url=sandbox.url)
        key = sandbox_client.inspect_image(f"{project_name}-helix-ubuntu:latest")["Config"]["Labels"][
            LABEL_KEY
        ]
        assert key.startswith(version)
        second = run(root, "apply", "--timing-log", str(tmp_path / "t2.jsonl"), "-q", env=env)
        assert second.returncode == 0, second.stderr
        assert steps(tmp_path / "t2.jsonl") == []

        # The memo answers a no-op (a full run loads the pipeline, a memo answer does not) until the
        # sandbox loses the image's name: its listing answers differently, and the apply names it again there
        # (the image itself is still there under another name: nothing moves).
        traced = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
        time.sleep(2.1)  # outputs and stamps the first apply wrote age past the memo's racy window
        # a full run loads the pipeline; a memo answer does not
        assert (
            "planner.plan.pipeline" in run(root, "apply", "-q", env=traced).stderr
        )  # full no-op: remembered
        answered = run(root, "apply", "-q", env=traced)
        assert answered.returncode == 0 and "planner.plan.pipeline" not in answered.stderr
        assert "nothing to do" in answered.stderr
        sandbox_client.tag(f"{project_name}-helix-ubuntu:latest", f"{project_name}-kept", "1")
        sandbox_client.remove_image(f"{project_name}-helix-ubuntu:latest")
        again = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t3.jsonl"), env=env)
        assert again.returncode == 0, again.stderr
        done = {r["step"]: r["status"] for r in steps(tmp_path / "t3.jsonl")}
        assert done.get("tag:helix-ubuntu:sandbox") == "ok" and "transfer" not in phases(
            tmp_path / "t3.jsonl"
        )
        sandbox_client.inspect_image(f"{project_name}-helix-ubuntu:latest")
    finally:
        remove_project_images(project_name, sandbox.url)
