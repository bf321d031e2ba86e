"""`planner shim install|uninstall|status`: the `docker` (or `docker-compose`) launcher of the shim
(planner/cli/shim.py) in a folder, and where it stands on PATH."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from planner.base.errors import UsageError

NAMES = ("docker", "docker-compose")
NAME_ENV = "PLANNER_SHIM_NAME"  # the name the launcher stands for: `docker` or `docker-compose`
SHIM_DIR_ENV = "PLANNER_SHIM_DIR"  # the launcher names its own folder, so the shim can skip it on PATH
REAL_ENV = {"docker": "PLANNER_REAL_DOCKER", "docker-compose": "PLANNER_REAL_DOCKER_COMPOSE"}
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


def install(folder: Path, force: bool = False, name: str = "docker") -> Path:
    """Write the shim as `folder/NAME` (a small launcher of planner.cli.shim's main).

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
    if name not in NAMES:
        raise UsageError(f"shim install: --name {name}: must be one of {', '.join(NAMES)}")
    target = folder / name
    if target.is_dir() and not target.is_symlink():
        raise UsageError(f"shim install: {target} is a folder; not replacing it")
    if (target.exists() or target.is_symlink()) and not is_shim(target) and not force:
        raise UsageError(
            f"shim install: {target} exists and is not planner's shim; not overwriting it",
            hint="pass --force to replace it",
        )
    launcher = shutil.which("planner-docker-shim")
    command = f'"{launcher}"' if launcher else f'"{sys.executable}" -m planner.cli.shim'
    body = (
        f"#!/bin/sh\n{MARKER}: `{name} ... build` runs planner\n"
        f'{NAME_ENV}="{name}" {SHIM_DIR_ENV}="{folder.resolve()}" exec {command} "$@"\n'
    )
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    try:
        temporary.write_text(body)
        temporary.chmod(0o755)
        os.replace(temporary, target)  # replaces a symlink itself, never the file it points to
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"shim install: cannot write {target}: {exc.strerror or exc}") from None
    return target


def uninstall(folder: Path) -> list[Path]:
    """Remove the shim's launchers from `folder` (only files `install` wrote; anything else stays)."""
    removed = []
    for name in NAMES:
        target = folder / name
        if is_shim(target):
            try:
                target.unlink()
            except OSError as exc:
                raise UsageError(f"shim uninstall: cannot remove {target}: {exc.strerror or exc}") from None
            removed.append(target)
    if not removed:
        raise UsageError(f"shim uninstall: no planner shim in {folder}")
    return removed


@dataclass(frozen=True)
class ShimStatus:
    name: str
    shim: Path | None  # the first shim for `name` on PATH
    ahead: bool  # the shim comes before every real `name` on PATH (it is what `name` runs)
    real: str | None  # what the shim forwards to
    first: str | None  # what `name` runs from this PATH


def status(environ: dict[str, str] | None = None) -> list[ShimStatus]:
    """Per name: which shim is on PATH, whether it is ahead of the real tool, and what it forwards to."""
    environ = dict(os.environ) if environ is None else environ
    found = []
    for name in NAMES:
        shim: Path | None = None
        first: str | None = None
        for folder in environ.get("PATH", "").split(os.pathsep):
            candidate = Path(folder) / name
            if not folder or not candidate.is_file() or not os.access(candidate, os.X_OK):
                continue
            first = first or str(candidate)
            if is_shim(candidate):
                shim = candidate
                break
        forwards = real_tool(name, {**environ, SHIM_DIR_ENV: str(shim.parent)} if shim else environ)
        found.append(ShimStatus(name, shim, shim is not None and first == str(shim), forwards, first))
    return found


def real_tool(name: str = "docker", environ: dict[str, str] | None = None) -> str | None:
    """The tool the shim stands in front of: $PLANNER_REAL_DOCKER (…_COMPOSE), else the first `name` on PATH
    that is neither in the shim's own folder nor a shim."""
    environ = dict(os.environ) if environ is None else environ
    configured = environ.get(REAL_ENV.get(name, "PLANNER_REAL_DOCKER"))
    if configured:
        return configured
    shim_dir = environ.get(SHIM_DIR_ENV)
    skip = Path(shim_dir).resolve() if shim_dir else None
    for folder in environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if not folder or not candidate.is_file() or not os.access(candidate, os.X_OK):
            continue
        if (skip is not None and Path(folder).resolve() == skip) or is_shim(candidate):
            continue
        return str(candidate)
    return None
