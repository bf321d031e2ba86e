"""Test cleanup removes only what this test session made: another session running its tests on the same daemon
at the same time keeps its labelled images and containers (they used to be swept by every `clean_images`)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from typing import Any

import pytest

from tests.integration.services import TEST_LABEL, TEST_SESSION, remove_test_images

pytestmark = pytest.mark.docker

REPOSITORY = "planner-test/cleanup"


def _import(client: Any, tag: str, session: str) -> str:
    """A one-file image labelled as made by `session`; its ID."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("x")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    client.api.import_image_from_data(
        buffer.getvalue(), repository=REPOSITORY, tag=tag, changes=[f"LABEL {TEST_LABEL}={session}"]
    )
    return str(client.api.inspect_image(f"{REPOSITORY}:{tag}")["Id"])


def test_cleanup_removes_this_sessions_images_and_keeps_another_sessions(docker_client: Any) -> None:
    client = docker_client
    other = f"{TEST_SESSION}-other"  # another session's value of the label (pid and random part differ)
    mine, theirs = f"{TEST_SESSION}-mine", f"{TEST_SESSION}-theirs"
    mine_id = _import(client, mine, TEST_SESSION)
    theirs_id = _import(client, theirs, other)
    theirs_container = client.api.create_container(theirs_id, command=["x"], labels={TEST_LABEL: other})["Id"]
    mine_container = client.api.create_container(mine_id, command=["x"], labels={TEST_LABEL: TEST_SESSION})[
        "Id"
    ]
    try:
        remove_test_images(None)
        ids = {image["Id"] for image in client.api.images(name=REPOSITORY)}
        containers = {c["Id"] for c in client.api.containers(all=True, filters={"label": TEST_LABEL})}
        assert theirs_id in ids and theirs_container in containers  # another session's: kept
        assert mine_id not in ids and mine_container not in containers  # this session's: removed
    finally:  # what this test made for the other session (and its own, should the check have failed)
        for container in (theirs_container, mine_container):
            with contextlib.suppress(Exception):
                client.api.remove_container(container, force=True)
        for tag in (theirs, mine):
            with contextlib.suppress(Exception):
                client.api.remove_image(f"{REPOSITORY}:{tag}", force=True)
