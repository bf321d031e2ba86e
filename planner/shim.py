"""The `docker` shim: `docker compose [options] build [services]` runs `planner apply` instead; every other
command goes to the real docker unchanged (exec, so exit codes, signals and terminals behave as before).

Install: `planner shim install DIR` (commands/shim.py) writes DIR/docker; put DIR first on PATH. The real docker is found on PATH
past the shim's own folder, or named by $PLANNER_REAL_DOCKER. A build with options planner does not take
(e.g. `--build-arg`, `--push`, `--ssh`) goes to the real `docker compose build`, with a note on stderr, so the
shim never changes what a build means.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from planner.commands.shim import SHIM_DIR_ENV

# docker compose global options that take a value, and how they map to planner's
COMPOSE_VALUE_OPTIONS = {
    "-f": "--file", "--file": "--file", "-p": "--project-name", "--project-name": "--project-name",
    "--project-directory": "--project-directory", "--profile": "--profile", "--env-file": "--env-file",
    "--progress": None, "--ansi": None, "--parallel": None,
}  # fmt: skip
COMPOSE_FLAGS = {"--compatibility", "--dry-run", "--all-resources"}
BUILD_FLAGS = {
    "--no-cache": "--no-cache",
    "-q": "-q",
    "--quiet": "-q",
    "--pull": None,
    "--with-dependencies": None,
}


def real_docker() -> str | None:
    """The docker the shim stands in front of: $PLANNER_REAL_DOCKER, else the first `docker` on PATH that is
    not in the shim's own folder."""
    configured = os.environ.get("PLANNER_REAL_DOCKER")
    if configured:
        return configured
    shim_dir = os.environ.get(SHIM_DIR_ENV)
    skip = Path(shim_dir).resolve() if shim_dir else None
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "docker"
        if not folder or not candidate.is_file() or not os.access(candidate, os.X_OK):
            continue
        if skip is not None and Path(folder).resolve() == skip:
            continue
        return str(candidate)
    return None


def translate(argv: list[str]) -> list[str] | None:
    """`docker` arguments → `planner apply` arguments, or None when planner should not handle them."""
    if len(argv) < 2 or argv[0] != "compose":
        return None
    planner_args: list[str] = []
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        option, has_value, value = argv[index].partition("=")
        if option in COMPOSE_FLAGS:
            index += 1
            continue
        if option not in COMPOSE_VALUE_OPTIONS:
            return None
        if not has_value:
            index += 1
            if index >= len(argv):
                return None
            value = argv[index]
        mapped = COMPOSE_VALUE_OPTIONS[option]
        if mapped:
            planner_args += [mapped, value]
        index += 1
    if index >= len(argv) or argv[index] != "build":
        return None
    services = []
    for arg in argv[index + 1 :]:
        if arg.startswith("-"):
            if arg not in BUILD_FLAGS:
                return None
            if BUILD_FLAGS[arg]:
                planner_args.append(str(BUILD_FLAGS[arg]))
        else:
            services.append(arg)
    return ["apply", *planner_args, *services]


def main() -> None:
    argv = sys.argv[1:]
    planner_args = translate(argv)
    if planner_args is not None:
        from planner.main import main as planner_main  # a no-op build answers from the memo

        sys.argv = ["planner", *planner_args]
        planner_main(planner_args)
        return
    docker = real_docker()
    if docker is None:
        print("planner shim: the real docker is not on PATH (set PLANNER_REAL_DOCKER)", file=sys.stderr)
        raise SystemExit(127)
    if argv[:1] == ["compose"] and "build" in argv:
        print(
            "planner shim: options planner does not take; running the real docker compose build",
            file=sys.stderr,
        )
    os.execv(docker, [docker, *argv])


if __name__ == "__main__":
    main()
