"""Shared fixtures. `docker_client`: a pinged docker-py client for tests marked `docker`.

Without a reachable engine those tests are skipped with the reason, or fail when PLANNER_REQUIRE_DOCKER=1 (CI).
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
