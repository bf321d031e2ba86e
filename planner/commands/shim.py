"""`planner shim install DIR`: write the `docker` launcher of the shim (planner/shim.py) into DIR."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from planner.errors import UsageError

SHIM_DIR_ENV = "PLANNER_SHIM_DIR"  # the launcher names its own folder, so the shim can skip it on PATH
MARKER = "# planner docker shim"  # the launcher's second line: how install knows a `docker` is its own


def is_shim(path: Path) -> bool:
    """Whether `path` is a regular file written by `install` (a symlink never is: it may be the real docker)."""
    try:
        if not path.is_file() or path.is_symlink():
            return False
        with path.open("rb") as handle:
            return MARKER.encode() in handle.read(4096)
    except OSError:
        return False


def install(folder: Path, force: bool = False) -> Path:
    """Write the shim as `folder/docker` (a small launcher of planner.shim's main).

    Refuses (UsageError, exit 2) when `folder` is not a folder, and when `folder/docker` exists and is not the
    shim, unless `force`; even then a folder is never replaced, and a symlink is replaced, not written through."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"shim install: {folder} is not a folder", hint="give the folder to write `docker` into"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"shim install: cannot create {folder}: {exc.strerror or exc}") from None
    target = folder / "docker"
    if target.is_dir() and not target.is_symlink():
        raise UsageError(f"shim install: {target} is a folder; not replacing it")
    if (target.exists() or target.is_symlink()) and not is_shim(target) and not force:
        raise UsageError(
            f"shim install: {target} exists and is not planner's shim; not overwriting it",
            hint="pass --force to replace it",
        )
    launcher = shutil.which("planner-docker-shim")
    command = f'"{launcher}"' if launcher else f'"{sys.executable}" -m planner.shim'
    body = f'#!/bin/sh\n{MARKER}: `docker compose build` runs `planner apply`\n{SHIM_DIR_ENV}="{folder.resolve()}" exec {command} "$@"\n'
    temporary = folder / f".docker.{os.getpid()}.tmp"
    try:
        temporary.write_text(body)
        temporary.chmod(0o755)
        os.replace(temporary, target)  # replaces a symlink itself, never the file it points to
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"shim install: cannot write {target}: {exc.strerror or exc}") from None
    return target
