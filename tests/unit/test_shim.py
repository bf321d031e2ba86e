"""The docker shim: which docker commands become `planner apply`, and passthrough to the real docker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from planner.commands.shim import install
from planner.shim import translate


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compose", "build"], ["apply"]),
        (["compose", "build", "api", "web"], ["apply", "api", "web"]),
        (["compose", "-f", "a.yml", "-f", "b.yml", "build"], ["apply", "--file", "a.yml", "--file", "b.yml"]),
        (["compose", "--file=a.yml", "-p", "x", "build", "-q"], ["apply", "--file", "a.yml", "--project-name", "x", "-q"]),
        (["compose", "--profile", "p", "--env-file", ".env.ci", "build", "--no-cache"],
         ["apply", "--profile", "p", "--env-file", ".env.ci", "--no-cache"]),
        (["compose", "--progress", "plain", "build", "--pull"], ["apply"]),
        (["compose", "--project-directory", "/p", "build"], ["apply", "--project-directory", "/p"]),
        # not planner's: other commands, unknown options, options that change what a build means
        (["compose", "up", "--build"], None),
        (["compose", "build", "--build-arg", "X=1"], None),
        (["compose", "build", "--push"], None),
        (["compose", "--unknown", "build"], None),
        (["build", "."], None),
        (["ps"], None),
        ([], None),
    ],
)  # fmt: skip
def test_translate(argv: list[str], expected: list[str] | None) -> None:
    assert translate(argv) == expected


def test_installed_shim_passes_everything_else_to_the_real_docker(tmp_path: Path) -> None:
    fake_bin = tmp_path / "real"
    fake_bin.mkdir()
    fake = fake_bin / "docker"
    fake.write_text('#!/bin/sh\necho "real docker: $*"\nexit 7\n')
    fake.chmod(0o755)
    shim = install(tmp_path / "shim")
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{fake_bin}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run([str(shim), "ps", "-a"], capture_output=True, text=True, env=env, check=False)
    assert (result.returncode, result.stdout.strip()) == (7, "real docker: ps -a")
    result = subprocess.run(
        [str(shim), "compose", "build", "--build-arg", "A=1"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.stdout.strip() == "real docker: compose build --build-arg A=1"
    assert "running the real docker compose build" in result.stderr


def test_shim_runs_planner_for_compose_build(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    build:\n      context: ./missing\n")
    shim = install(tmp_path / "shim")
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [str(shim), "compose", "build"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 2  # planner's own exit code for bad input: it was planner that ran
    assert result.stderr.startswith("planner: ")
