"""Every scenario of the shared compose corpus: planner's resolved model equals Docker Compose v2's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from planner.base.errors import InputError
from planner.compose.loader import load_project
from planner.compose.options import ProjectOptions
from tests.conformance.corpus import corpus_dir, normalise, scenarios

ROOT = corpus_dir()
CASES = scenarios(ROOT) if ROOT else []

pytestmark = pytest.mark.skipif(ROOT is None, reason="../shared/compose-corpus is not present")


def _options(case_dir: Path, invocation: dict[str, Any], home: str) -> ProjectOptions:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, **(invocation.get("env") or {})}
    return ProjectOptions(
        files=tuple(invocation["files"]),
        project_directory=invocation.get("project_directory"),
        profiles=tuple(invocation.get("profiles") or ()),
        env_files=tuple(invocation.get("env_files") or ()),
        environ=environ,
        cwd=str(case_dir / invocation["cwd"]),
        interpolate=not invocation.get("no_interpolate", False),
    )


def test_corpus_is_complete() -> None:
    """The corpus README promises 68 + 17 scenarios; a partial copy should not pass silently."""
    assert len(CASES) >= 85


@pytest.mark.parametrize(("case_dir", "scenario"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_scenario(case_dir: Path, scenario: dict[str, Any]) -> None:
    assert ROOT is not None
    with tempfile.TemporaryDirectory(prefix="corpus-home-") as home:
        options = _options(case_dir, scenario["invocation"], home)
        if scenario["expect"] == "error":
            with pytest.raises(InputError) as raised:
                load_project(options)
            assert scenario.get("error_contains", "") in raised.value.one_line()
            return
        project = load_project(options)
    extra_keys = {n: list((s.get("extra") or {}).keys()) for n, s in scenario["services"].items()}
    assert normalise(project.to_config(), case_dir, ROOT, extra_keys) == scenario["services"]
    if scenario.get("project_name"):
        assert project.name == scenario["project_name"]
