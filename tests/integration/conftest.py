"""Session fixtures for the real services (see services.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import docker_unavailable
from tests.integration.services import (
    DaemonProcess,
    RegistryProcess,
    remove_test_images,
    start_dockerd,
    start_registry,
    temp_root,
)


@pytest.fixture(scope="session")
def registry(docker_client: Any) -> Iterator[RegistryProcess]:
    with temp_root("planner-reg-") as root:
        try:
            process = start_registry(root)
        except RuntimeError as exc:
            docker_unavailable(str(exc))
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="session")
def sandbox(docker_client: Any) -> Iterator[DaemonProcess]:
    with temp_root("pl-sbx-") as root:
        try:
            process = start_dockerd(root)
        except RuntimeError as exc:
            docker_unavailable(str(exc))
        try:
            yield process
        finally:
            remove_test_images(process.url)
            process.stop()


@pytest.fixture
def clean_images(docker_client: Any) -> Iterator[None]:
    """Remove every test-labelled image from the session daemon after the test."""
    yield
    remove_test_images(None)
