"""Fixtures several unit test modules share."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI in-process, without this shell's compose and rules settings (modules that need other variables
    cleared define their own)."""
    for name in (
        "PLANNER_RULES",
        "COMPOSE_FILE",
        "COMPOSE_PROFILES",
        "COMPOSE_PROJECT_NAME",
        "SANDBOX_IMAGE",
    ):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()
