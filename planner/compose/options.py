"""Project options: which compose files, which directory, which environment, profiles and name.

This mirrors the order in which Docker Compose v2 assembles its project options (docker/compose
`toProjectOptions`): OS environment first (it always wins), `.env` of the working directory, `COMPOSE_FILE`, default
file discovery walking up from the working directory, then the `.env` of the project directory, then profiles and
the project name. Every relative option path is relative to the current working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from planner.base import inputs
from planner.base.errors import ComposeFileError, EnvFileError, Location, UsageError
from planner.compose.envfile import resolve_environment

DEFAULT_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
DEFAULT_OVERRIDE_NAMES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
STDIN = Path("-")  # `-f -`: the compose file is read from standard input
_NAME_CHARS = re.compile(r"[a-z0-9_-]")
_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class ProjectOptions:
    """What the user asked for, as given on the command line and in the process environment."""

    files: Sequence[str] = ()
    project_directory: str | None = None
    project_name: str | None = None
    profiles: Sequence[str] = ()
    env_files: Sequence[str] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: str = field(default_factory=os.getcwd)
    interpolate: bool = True


@dataclass(frozen=True)
class ResolvedOptions:
    """Everything the loader needs, with absolute paths and the final interpolation environment."""

    config_files: tuple[Path, ...]
    working_dir: Path
    environment: dict[str, str]
    profiles: tuple[str, ...]
    project_name: str | None  # set by -p or COMPOSE_PROJECT_NAME; else the files' `name:` or the directory
    default_name: str
    warnings: tuple[str, ...] = ()  # Compose's warnings about the files found, in its words


def normalize_project_name(name: str) -> str:
    """Compose's NormalizeProjectName: lower-case, keep [a-z0-9_-], drop leading '_' and '-'."""
    return "".join(_NAME_CHARS.findall(name.lower())).lstrip("_-")


def check_project_name(name: str, source: str) -> str:
    if not _VALID_NAME.match(name):
        raise UsageError(
            f'invalid project name "{name}" (from {source}): must consist only of lowercase alphanumeric '
            "characters, hyphens, and underscores as well as start with a letter or number"
        )
    return name


def resolve_options(options: ProjectOptions) -> ResolvedOptions:
    cwd = Path(options.cwd)
    environment = dict(options.environ)
    environment.setdefault("PWD", str(cwd))
    files = [STDIN if f == "-" else _absolute(cwd, f) for f in options.files]
    project_dir = _absolute(cwd, options.project_directory) if options.project_directory else None

    def working_dir() -> Path:
        if project_dir is not None:
            return project_dir
        on_disk = [f for f in files if f != STDIN]  # `-f -` alone: the current directory
        return on_disk[0].parent if on_disk else cwd

    # --env-file, else COMPOSE_ENV_FILES (comma-separated, relative to the current directory), else `.env`
    # unless COMPOSE_DISABLE_ENV_FILE is true (which leaves explicit env files alone).
    env_file_names = list(options.env_files)
    if not env_file_names and options.environ.get("COMPOSE_ENV_FILES"):
        env_file_names = options.environ["COMPOSE_ENV_FILES"].split(",")
    env_files = [_absolute(cwd, f) for f in env_file_names]
    dotenv_disabled = _parse_bool(options.environ, "COMPOSE_DISABLE_ENV_FILE")

    def default_env_file() -> list[Path]:
        return [] if dotenv_disabled else _default_env_file(working_dir())

    environment = _load_env_files(env_files or default_env_file(), environment)

    if not files and "COMPOSE_FILE" in environment:
        separator = environment.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        files = [_absolute(cwd, f) for f in environment["COMPOSE_FILE"].split(separator)]
    warnings: list[str] = []
    if not files:
        files = _discover(working_dir(), warnings)
    # The project directory may have changed with the files: its .env fills in what is still unset.
    environment = _load_env_files(env_files or default_env_file(), environment)

    for path in files:
        if path != STDIN and not inputs.exists(path):
            raise ComposeFileError(
                "compose file not found", Location(str(path)), hint="check -f / COMPOSE_FILE"
            )

    profiles = tuple(p for p in options.profiles if p)
    if not profiles and environment.get("COMPOSE_PROFILES"):
        profiles = tuple(p for p in environment["COMPOSE_PROFILES"].split(",") if p)

    wd = working_dir()
    name: str | None = None
    if options.project_name:
        name = check_project_name(options.project_name, "-p/--project-name")
    elif environment.get("COMPOSE_PROJECT_NAME"):
        name = check_project_name(environment["COMPOSE_PROJECT_NAME"], "COMPOSE_PROJECT_NAME")
    return ResolvedOptions(
        config_files=tuple(files),
        working_dir=wd,
        environment=environment,
        profiles=profiles,
        project_name=name,
        default_name=normalize_project_name(wd.name),
        warnings=tuple(warnings),
    )


def _parse_bool(environ: Mapping[str, str], name: str) -> bool:
    """Go's strconv.ParseBool on a variable of the process environment (absent is false)."""
    if name not in environ:
        return False
    value = environ[name]
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise UsageError(f'strconv.ParseBool: parsing "{value}": invalid syntax', hint=f"check {name}")


def _absolute(base: Path, path: str) -> Path:
    return Path(os.path.normpath(base / path))


def _default_env_file(directory: Path) -> list[Path]:
    candidate = directory / ".env"
    return [candidate] if inputs.is_file(candidate) else []


def _load_env_files(paths: list[Path], environment: dict[str, str]) -> dict[str, str]:
    for path in paths:  # any readable path will do: /dev/null, a /dev/fd/N of process substitution...
        if not inputs.exists(path) or inputs.is_dir(path):
            raise EnvFileError("env file not found", Location(str(path)), hint="check --env-file")
    return resolve_environment(paths, environment) if paths else environment


def _discover(start: Path, warnings: list[str]) -> list[Path]:
    """Default files: the first directory from `start` upwards holding a compose file, plus its override (when
    there are several of a kind, the first name wins, and Compose warns)."""
    directory = start
    while True:
        found = [directory / n for n in DEFAULT_FILE_NAMES if inputs.is_file(directory / n)]
        if found:
            overrides = [directory / n for n in DEFAULT_OVERRIDE_NAMES if inputs.is_file(directory / n)]
            for kind, paths in (("config", found), ("override", overrides)):
                if len(paths) > 1:
                    listed = ", ".join(str(p) for p in paths)
                    warnings += [
                        f"Found multiple {kind} files with supported names: {listed}",
                        f"Using {paths[0]}",
                    ]
            return found[:1] + overrides[:1]
        if directory.parent == directory:
            raise ComposeFileError(
                "no configuration file provided: not found",
                Location(str(start)),
                hint="name one with -f, or add compose.yaml",
            )
        directory = directory.parent
