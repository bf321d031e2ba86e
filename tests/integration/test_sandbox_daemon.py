"""The sandbox daemon the tests (and bench/) start must leave the host daemon's networking alone."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.conftest import docker_unavailable
from tests.integration.conftest import dockerd_or_skip
from tests.integration.services import DaemonProcess, temp_root

pytestmark = pytest.mark.docker


def _links() -> set[str]:
    ip = shutil.which("ip")
    if ip is None:
        docker_unavailable("the `ip` command (Debian iproute2) is not installed")
    out = subprocess.run([ip, "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


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
