"""The sandbox daemon the tests (and bench/) start must leave the host daemon's networking alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from tests.conftest import docker_unavailable
from tests.integration.conftest import REPO, dockerd_or_skip
from tests.integration.services import OWNER, DaemonProcess, link_names, running, sweep_leftovers, temp_root

pytestmark = pytest.mark.docker


def _links() -> set[str]:
    found: set[str] | None = None
    reason = ""
    try:
        found = link_names()
    except RuntimeError as exc:
        reason = str(exc)
    if found is None:
        docker_unavailable(reason)  # outside the handler: no chained traceback in the report
    return found


def test_starting_and_stopping_a_sandbox_daemon_keeps_the_hosts_docker0(docker_client: Any) -> None:
    before = _links()
    if "docker0" not in before:
        pytest.skip("the host daemon has no docker0 bridge here")
    with temp_root("pl-sbx-") as root:
        process: DaemonProcess = dockerd_or_skip(root)
        try:
            assert process.bridge is not None and process.bridge in _links()
            assert "docker0" in _links()
        finally:
            process.stop()
    after = _links()
    assert "docker0" in after
    assert process.bridge not in after  # its own bridge goes with it


def test_the_shared_sandbox_daemon_keeps_the_hosts_docker0(sandbox: DaemonProcess) -> None:
    assert "docker0" in _links()


LEFTOVER = """
import io, sys, time
from pathlib import Path
import docker
from tests.integration.services import TEST_LABEL, TEST_SESSION, start_dockerd

daemon = start_dockerd(Path(sys.argv[1]))
client = docker.from_env()
dockerfile = f"FROM scratch\\nLABEL {TEST_LABEL}={TEST_SESSION}\\n".encode()
image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=sys.argv[2], rm=True)
print(daemon.process.pid, daemon.bridge, flush=True)
time.sleep(300)
"""


def test_a_killed_test_session_leaves_nothing_behind(
    tmp_path: Path, busybox_image: str, docker_client: Any
) -> None:
    """A test process killed outright (a CI timeout, kill -9) runs no teardown: its sandbox daemon ends with it
    (the kernel's parent-death signal), and the next session's sweep removes its bridge and the images it
    labelled, and nothing of a session that still runs (this one's busybox base)."""
    _links()
    tag = f"planner-test/leftover:{os.getpid()}"
    with temp_root("pl-sbx-") as root, temp_root("pl-sbx-") as ours:
        (ours / OWNER).write_text(f"{os.getpid()}\n")  # a live session's sandbox root: never swept
        session = subprocess.Popen(
            [sys.executable, "-c", LEFTOVER, str(root), tag], cwd=REPO, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        try:
            assert session.stdout is not None
            line = session.stdout.readline().split()
            assert len(line) == 2, "the session did not start its daemon"
            pid, bridge = int(line[0]), line[1]
            assert bridge in _links() and docker_client.images.get(tag)
        finally:
            session.kill()
            session.wait()
        deadline = time.monotonic() + 60
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(pid), "the sandbox daemon outlived the session that started it"
        assert bridge in _links() and (root / "data").is_dir()  # nobody removed them: the sweep's job
        removed = sweep_leftovers()
        assert {f"bridge {bridge}", f"folder {root}"} <= set(removed)
        assert bridge not in _links() and not root.exists()
        assert (ours / OWNER).exists()
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
    assert docker_client.images.get(busybox_image)  # this session's, still in use
