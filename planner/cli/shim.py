"""The `docker` (and `docker-compose`) shim: builds planner can do become planner runs; every other command goes
to the real tool unchanged (exec, so argv, stdin, terminals, exit codes and signals behave as before).

Which command lines planner takes, and with which planner arguments, is planner/commands/shimargs.py (the grammar of
docker, Compose v2 and buildx, by the options' real arities):
- `docker [global opts] compose [opts] build [opts] [SERVICE...]` (and `docker-compose [opts] build ...`):
  `planner apply` with the compose options, `--build-arg`, `--no-cache`, `-q`, `--with-dependencies`,
  `--dry-run`, `--parallel N` (as `--jobs`); `--pull` first runs `planner pull-bases` (pull the tag-named
  base images again), `--push` then runs `planner push-images` (push the services' compose image names).
- `docker build`/`docker buildx build`/`docker image build` with `-t`: `planner build-image` (a one-node
  stack: same keys, plan and apply; an image whose key is present is not built again).
- `-H`/`--context`/`--config` (and DOCKER_HOST, DOCKER_CONTEXT, the current context) select the daemon planner
  talks to, through DOCKER_HOST/DOCKER_CONFIG.
Anything planner cannot honour (`--print`, `--check`, `--ssh`, `--secret`, `--output` elsewhere, TLS options,
...) goes to the real tool unchanged, with one line on stderr naming the option. `PLANNER_SHIM=off` passes
everything through.

Install: `planner shim install DIR [--name docker|docker-compose]` (commands/shim.py). The real tool is
$PLANNER_REAL_DOCKER (or $PLANNER_REAL_DOCKER_COMPOSE), else the first one on PATH that is not a shim.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from planner.commands.shim import NAME_ENV, REAL_ENV, real_tool
from planner.commands.shimargs import DOCKER_GLOBAL, BadArgs, parse, route

PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
INSTALL_COMPOSE = (
    "install Docker Compose v2 as a docker CLI plugin: the docker-compose-plugin package (Docker's apt "
    "repository), or the v2 `docker-compose` binary copied to ~/.docker/cli-plugins/docker-compose"
)


def real_docker() -> str | None:
    return real_tool("docker")


def _compose_command(argv: list[str]) -> tuple[bool, str | None]:
    """Whether `docker ARGV` is a `docker compose` command, and the `--config` folder it names (the last one, as
    the docker CLI takes it)."""
    try:
        top = parse(argv, DOCKER_GLOBAL, interspersed=False)
    except BadArgs:
        return False, None
    return top.rest[:1] == ["compose"], top.last("--config")


def has_compose_plugin(docker: str, environ: dict[str, str], config_option: str | None = None) -> bool:
    """Whether `docker compose` works with this docker: a plugin file where the docker CLI looks for one, else
    (to be sure) `docker compose version` answering. The config folder is `--config` when the command line gives
    one (`config_option`), else DOCKER_CONFIG, else ~/.docker, as the docker CLI picks it."""
    config = Path(config_option or environ.get("DOCKER_CONFIG") or Path(environ.get("HOME", "/")) / ".docker")
    folders = [config / "cli-plugins", *map(Path, PLUGIN_DIRS)]
    try:
        extra = json.loads((config / "config.json").read_text()).get("cliPluginsExtraDirs") or []
        folders += [Path(f) for f in extra if isinstance(f, str)]
    except (OSError, ValueError, AttributeError):
        pass
    for folder in folders:
        if os.access(folder / "docker-compose", os.X_OK):
            return True
    try:
        probe = subprocess.run(
            [docker, *(["--config", config_option] if config_option else []), "compose", "version"],
            capture_output=True,
            timeout=30,
            check=False,
            env=environ,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def run_planner(steps: list[list[str]], env: dict[str, str]) -> int:
    """Run planner command lines in order, stopping at the first that fails: each through the cache folder's
    resident server where one runs and takes it (planner/resident/), else in this process."""
    from planner.cli.main import main as planner_main  # a no-op apply answers from the memo
    from planner.resident.client import handed_over

    os.environ.update(env)
    for step in steps:
        sys.argv = ["planner", *step]
        try:
            served = handed_over(step)
            if served is None:
                planner_main(step)
            code = served or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code:
            return code
    return 0


def main() -> None:
    argv = sys.argv[1:]
    name = os.environ.get(NAME_ENV) or "docker"
    decided = route(argv, name)
    if decided.handled:
        raise SystemExit(run_planner(decided.planner, decided.env))
    tool = real_tool(name)
    if tool is None:
        variable = REAL_ENV.get(name, "PLANNER_REAL_DOCKER")
        print(f"planner shim: the real {name} is not on PATH (set {variable})", file=sys.stderr)
        raise SystemExit(127)
    why = f" (passed through: {decided.reason})" if decided.reason else ""
    is_compose, config_option = _compose_command(argv) if name == "docker" else (False, None)
    if is_compose and not has_compose_plugin(tool, dict(os.environ), config_option):
        print(
            f"planner shim: {tool} has no compose plugin, so `docker compose` cannot run there{why}; "
            + INSTALL_COMPOSE,
            file=sys.stderr,
        )
        raise SystemExit(125)
    if decided.reason:
        print(f"planner shim: passing to the real {name}: {decided.reason}", file=sys.stderr)
    os.execv(tool, [tool, *argv])


if __name__ == "__main__":
    main()
