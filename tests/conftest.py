"""Shared fixtures. `docker_client`: a pinged docker-py client for tests marked `docker`.

Without a reachable engine those tests are skipped with the reason, or fail when PLANNER_REQUIRE_DOCKER=1 (CI).
Every test that needs a service (the engine, a registry, a second dockerd, busybox, `ip`, the Docker Compose v2
binary) reaches it through a fixture or helper that calls `docker_unavailable`, never by starting it bare: a
test marked `docker` gets `docker_client` whatever fixtures it names, and one marked `oracle` gets the binary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NoReturn

import docker
import pytest

REQUIRE_DOCKER_ENV = "PLANNER_REQUIRE_DOCKER"


def docker_unavailable(reason: str) -> NoReturn:
    """Skip the calling test, or fail it when PLANNER_REQUIRE_DOCKER=1."""
    if os.environ.get(REQUIRE_DOCKER_ENV) == "1":
        pytest.fail(f"{reason}; required because {REQUIRE_DOCKER_ENV}=1")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _services_of_markers(request: pytest.FixtureRequest) -> None:
    """A test marked `docker` needs the engine, one marked `oracle` the Compose v2 binary, even when none of
    its fixtures asks for them: without them it skips (or fails under PLANNER_REQUIRE_DOCKER=1)."""
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_client")
    if request.node.get_closest_marker("oracle") is not None:
        from tests.oracle import require_compose_v2

        require_compose_v2()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """`docker.from_env()` after a successful ping (API version negotiated with the engine)."""
    reason = ""
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure to reach the engine means "no Docker here"
        reason = f"no Docker engine reachable: {exc}"
    if reason:
        docker_unavailable(reason)  # outside the handler: no chained docker-py traceback in the report
    try:
        yield client
    finally:
        client.close()
