"""`planner shim install DIR`: write the `docker` launcher of the shim (planner/shim.py) into DIR."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SHIM_DIR_ENV = "PLANNER_SHIM_DIR"  # the launcher names its own folder, so the shim can skip it on PATH


def install(folder: Path) -> Path:
    """Write the shim as `folder/docker` (a small launcher of planner.shim's main)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "docker"
    launcher = shutil.which("planner-docker-shim")
    command = f'"{launcher}"' if launcher else f'"{sys.executable}" -m planner.shim'
    body = f'#!/bin/sh\n# planner docker shim: `docker compose build` runs `planner apply`\n{SHIM_DIR_ENV}="{folder.resolve()}" exec {command} "$@"\n'
    target.write_text(body)
    target.chmod(0o755)
    return target
