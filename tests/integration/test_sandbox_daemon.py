"""The sandbox daemon the tests (and bench/) start must leave the host daemon's networking alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import docker_unavailable
from tests.integration.conftest import dockerd_or_skip
from tests.integration.services import DaemonProcess, link_names, temp_root

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
