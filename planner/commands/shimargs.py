"""The shim's command-line grammar: which `docker` command lines planner runs, and with which arguments.

Pure (stdlib only, no planner imports): `route(argv, name)` says either "planner runs these planner command
lines, with these environment changes" or "pass the command to the real docker unchanged, because of this
option". The option tables are the real ones, with their arities, parsed as cobra/pflag parses them:
`--opt value`, `--opt=value`, `-o value`, `-ovalue`, `-o=value`, bool clusters (`-qm 1g`), `--` ending the
options, `--flag=false` for bools; an unknown option or a bad value means "pass through" (the real tool then
says what is wrong), so the shim never changes what a command means.

Sources (checked by tests/unit/test_shim_grammar.py against the binaries' `--help`): docker CLI 28 global
options and `docker build` (legacy builder), Docker Compose v2.40 root and `build` options (hidden ones from
its source: `--verbose`, `--no-ansi`, `--workdir`; on build `--compress`, `--force-rm`, `--no-rm`,
`--parallel`, `--progress`), and docker buildx 0.2x `build`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Flag:
    long: str  # "--file"
    short: str | None = None  # "-f"
    value: bool = False  # takes a value (else a bool flag)
    hidden: bool = False  # accepted but not shown by --help


def _table(*flags: Flag) -> dict[str, Flag]:
    out: dict[str, Flag] = {}
    for flag in flags:
        out[flag.long] = flag
        if flag.short:
            out[flag.short] = flag
    return out


def V(long: str, short: str | None = None, hidden: bool = False) -> Flag:
    return Flag(long, short, True, hidden)


def B(long: str, short: str | None = None, hidden: bool = False) -> Flag:
    return Flag(long, short, False, hidden)


HELP = B("--help", "-h")

# docker CLI 28: `docker --help`, Global Options
DOCKER_GLOBAL = _table(
    V("--config"), V("--context", "-c"), B("--debug", "-D"), V("--host", "-H"), V("--log-level", "-l"),
    B("--tls"), V("--tlscacert"), V("--tlscert"), V("--tlskey"), B("--tlsverify"), B("--version", "-v"), HELP,
)  # fmt: skip

# Docker Compose v2.40: `docker compose --help` (+ hidden --verbose, --no-ansi, --workdir)
COMPOSE_ROOT = _table(
    B("--all-resources"), V("--ansi"), B("--compatibility"), B("--dry-run"), V("--env-file"), V("--file", "-f"),
    V("--parallel"), V("--profile"), V("--progress"), V("--project-directory"), V("--project-name", "-p"),
    B("--verbose", hidden=True), B("--no-ansi", hidden=True), V("--workdir", hidden=True), B("--version", "-v", hidden=True), HELP,
)  # fmt: skip
# The standalone `docker-compose` v2 binary runs as `docker [these options] compose [the rest]`: compose's
# cmd/compatibility moves these docker CLI options there, when given before the first word that is not an option
# (a bool one exactly as written, a value one as `--opt value` or `--opt...=value`); `--verbose` is `--debug`,
# `-h` is `--help`, `-v`/`--version` is the `version` command.
STANDALONE_BOOL = ("--debug", "-D", "--verbose", "--tls", "--tlsverify")
STANDALONE_VALUE = ("--tlscacert", "--tlscert", "--tlskey", "--host", "-H", "--context", "--log-level")
STANDALONE_RENAMED = {"--verbose": "--debug", "-h": "--help", "--version": "version", "-v": "version"}
COMPLETION = ("__complete", "__completeNoDesc")

# Docker Compose v2.40: `docker compose build --help` (+ hidden --compress, --force-rm, --no-rm, --parallel,
# --progress; --dry-run is the root's persistent flag)
COMPOSE_BUILD = _table(
    V("--build-arg"), V("--builder"), B("--check"), B("--dry-run"), V("--memory", "-m"), B("--no-cache"),
    B("--print"), V("--provenance"), B("--pull"), B("--push"), B("--quiet", "-q"), V("--sbom"), V("--ssh"),
    B("--with-dependencies"), B("--compress", hidden=True), B("--force-rm", hidden=True), B("--no-rm", hidden=True),
    B("--parallel", hidden=True), V("--progress", hidden=True), HELP,
)  # fmt: skip

# docker CLI 28 `docker build --help` (the legacy builder: the real docker here has no buildx plugin)
DOCKER_BUILD = _table(
    V("--add-host"), V("--build-arg"), V("--cache-from"), V("--cgroup-parent"), B("--compress"), V("--cpu-period"),
    V("--cpu-quota"), V("--cpu-shares", "-c"), V("--cpuset-cpus"), V("--cpuset-mems"), B("--disable-content-trust"),
    V("--file", "-f"), B("--force-rm"), V("--iidfile"), V("--isolation"), V("--label"), V("--memory", "-m"),
    V("--memory-swap"), V("--network"), B("--no-cache"), V("--platform"), B("--pull"), B("--quiet", "-q"), B("--rm"),
    V("--security-opt"), V("--shm-size"), V("--tag", "-t"), V("--target"), V("--ulimit"),
    B("--squash", hidden=True), HELP,
)  # fmt: skip

# docker buildx 0.2x `docker buildx build --help` (and `docker build` when buildx is the default builder)
BUILDX_BUILD = _table(
    V("--add-host"), V("--allow"), V("--annotation"), V("--attest"), V("--build-arg"), V("--build-context"),
    V("--builder"), V("--cache-from"), V("--cache-to"), V("--call"), V("--cgroup-parent"), B("--check"),
    V("--file", "-f"), V("--iidfile"), V("--label"), B("--load"), V("--metadata-file"), V("--network"),
    B("--no-cache"), V("--no-cache-filter"), V("--output", "-o"), V("--platform"), V("--progress"),
    V("--provenance"), B("--pull"), B("--push"), B("--quiet", "-q"), V("--sbom"), V("--secret"), V("--shm-size"),
    V("--ssh"), V("--tag", "-t"), V("--target"), V("--ulimit"), B("--debug", "-D"),
    V("--cpu-shares", hidden=True), V("--cpuset-cpus", hidden=True), V("--memory", "-m", hidden=True),
    V("--memory-swap", hidden=True), V("--cpu-period", hidden=True), V("--cpu-quota", hidden=True),
    V("--cpuset-mems", hidden=True), V("--isolation", hidden=True), V("--security-opt", hidden=True),
    B("--force-rm", hidden=True), B("--rm", hidden=True), B("--compress", hidden=True), B("--squash", hidden=True),
    B("--disable-content-trust", hidden=True), B("--print", hidden=True), HELP,
)  # fmt: skip

TRUE = {"1", "t", "T", "TRUE", "true", "True"}
FALSE = {"0", "f", "F", "FALSE", "false", "False"}
PROGRESS = {"auto", "tty", "plain", "json", "quiet"}
ANSI = {"never", "always", "auto"}


class BadArgs(Exception):
    """The command line is not one the real tool accepts as planner reads it: pass it through."""

    def __init__(self, option: str, why: str) -> None:
        super().__init__(f"{option}: {why}")
        self.option = option
        self.why = why


@dataclass
class Parsed:
    options: list[tuple[str, str | None]] = field(default_factory=list)  # (long name, value; None: bool set)
    positionals: list[str] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)  # from the first positional on, when not interspersed

    def values(self, long: str) -> list[str]:
        return [v for k, v in self.options if k == long and v is not None]

    def last(self, long: str) -> str | None:
        found = self.values(long)
        return found[-1] if found else None

    def on(self, long: str) -> bool:
        """A bool flag's final state (`--x`, `--x=true`, `--x=false`: the last one wins)."""
        state = False
        for k, v in self.options:
            if k == long:
                state = v is None or v in TRUE
        return state

    def given(self) -> list[str]:
        """Option names in command-line order, each once."""
        return list(dict.fromkeys(k for k, _ in self.options))


def parse(tokens: Sequence[str], table: Mapping[str, Flag], interspersed: bool) -> Parsed:
    """pflag's parser: options by arity; positionals; with `interspersed=False` stop at the first positional."""
    parsed = Parsed()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token == "--":
            parsed.positionals += tokens[index:]
            if not interspersed:
                parsed.rest = list(tokens[index:])
            break
        if not token.startswith("-") or token == "-":
            if not interspersed:
                parsed.rest = list(tokens[index - 1 :])
                break
            parsed.positionals.append(token)
            continue
        if token.startswith("--"):
            name, has_value, value = token.partition("=")
            flag = table.get(name)
            if flag is None or flag.long != name:
                raise BadArgs(name, "unknown option")
            if flag.value:
                if not has_value:
                    if index >= len(tokens):
                        raise BadArgs(name, "needs a value")
                    value = tokens[index]
                    index += 1
                parsed.options.append((flag.long, value))
            else:
                if has_value and value not in TRUE | FALSE:
                    raise BadArgs(name, f"not a boolean: {value!r}")
                parsed.options.append((flag.long, value if has_value else None))
            continue
        cluster = token[1:]
        position = 0
        while position < len(cluster):
            short = "-" + cluster[position]
            flag = table.get(short)
            if flag is None or flag.short != short:
                raise BadArgs(short, "unknown option")
            tail = cluster[position + 1 :]
            if tail.startswith("="):
                if not flag.value and tail[1:] not in TRUE | FALSE:
                    raise BadArgs(short, f"not a boolean: {tail[1:]!r}")
                parsed.options.append((flag.long, tail[1:]))
                break
            if not flag.value:
                parsed.options.append((flag.long, None))
                position += 1
                continue
            if tail:
                parsed.options.append((flag.long, tail))
            elif index < len(tokens):
                parsed.options.append((flag.long, tokens[index]))
                index += 1
            else:
                raise BadArgs(short, "needs a value")
            break
    return parsed


@dataclass
class Route:
    """What the shim does with a command line.

    `planner`: planner command lines run in order (stopping at the first failure), with `env` changes; empty
    means pass through to the real `tool`, with `reason` naming the option that caused it (None: a command
    planner does not handle at all, passed silently)."""

    planner: list[list[str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    tool: str = "docker"

    @property
    def handled(self) -> bool:
        return bool(self.planner)


def passthrough(reason: str | None = None, tool: str = "docker") -> Route:
    return Route(reason=reason, tool=tool)


# What planner does with compose options: planner's option (value kept), or None (no effect on a build)
COMPOSE_PROJECT_MAP = {
    "--file": "--file", "--project-name": "--project-name", "--project-directory": "--project-directory",
    "--workdir": "--project-directory", "--profile": "--profile", "--env-file": "--env-file",
}  # fmt: skip
COMPOSE_IGNORED = {
    "--ansi",
    "--compatibility",
    "--all-resources",
    "--verbose",
    "--no-ansi",
    "--debug",
    "--log-level",
}
COMPOSE_BUILD_IGNORED = {
    "--compress",
    "--force-rm",
    "--no-rm",
    "--parallel",
}  # deprecated no-ops in Compose v2
COMPOSE_BUILD_PASSED = {
    "--print": "prints a bake file (the real compose does that)",
    "--check": "runs the build checks (the real compose does that)",
    "--builder": "selects a buildx builder planner does not drive",
    "--ssh": "ssh agents are not driven by planner's Engine builder",
    "--provenance": "attestations are not made by planner's Engine builder",
    "--sbom": "attestations are not made by planner's Engine builder",
    "--memory": "a build memory limit is not modelled by planner",
}
TLS = {"--tls", "--tlscacert", "--tlscert", "--tlskey", "--tlsverify"}
LOG_LEVELS = {"panic", "fatal", "error", "warn", "warning", "info", "debug", "trace"}  # logrus.ParseLevel


def standalone(argv: Sequence[str]) -> list[str]:
    """`docker-compose ARGV` as the docker command line the standalone binary runs (compose's Convert)."""
    moved: list[str] = []
    command = ["compose"]
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg in COMPLETION:
            command.insert(0, arg)
            continue
        if arg and not arg.startswith("-"):
            command += argv[index - 1 :]
            break
        arg = STANDALONE_RENAMED.get(arg, arg)
        if arg in STANDALONE_BOOL:
            moved.append(arg)
            continue
        for option in STANDALONE_VALUE:
            if arg == option:
                if index >= len(argv):
                    raise BadArgs(arg, "needs a value")
                moved += [arg, argv[index]]
                index += 1
                break
            if arg.startswith(option) and "=" in arg:
                moved += [option, arg.partition("=")[2]]
                break
        else:
            command.append(arg)
    return moved + command


def route(
    argv: Sequence[str],
    name: str = "docker",
    environ: Mapping[str, str] | None = None,
) -> Route:
    """The route of `name argv...` (name: `docker` or `docker-compose`, how the shim was called)."""
    environ = os.environ if environ is None else environ
    if environ.get("PLANNER_SHIM", "").lower() in ("off", "0", "false", "no"):
        return passthrough(None, name)
    try:
        top = parse(standalone(argv) if name == "docker-compose" else argv, DOCKER_GLOBAL, interspersed=False)
        command = top.rest[:1]
        if top.on("--help") or top.on("--version") or not command:
            return passthrough(None, name)
        rest = top.rest[1:]
        if command[0] == "compose":
            env = _daemon_env(top, environ)
            if isinstance(env, str):
                return passthrough(env if _is_compose_build(rest, COMPOSE_ROOT) else None, name)
            return _compose(rest, env, name)
        if name == "docker-compose":
            return passthrough(None, name)
        if command[0] == "build" or (command[0] in ("buildx", "image", "builder") and rest[:1] == ["build"]):
            table = BUILDX_BUILD if command[0] == "buildx" else DOCKER_BUILD
            body = rest if command[0] == "build" else rest[1:]
            env = _daemon_env(top, environ)
            if isinstance(env, str):
                return passthrough(env)
            spelled = "docker build" if command[0] == "build" else f"docker {command[0]} build"
            return _docker_build(body, table, env, spelled)
    except BadArgs as exc:
        # a note only where the command is a build: other commands go to the real docker as they are
        return passthrough(f"{exc.option}: {exc.why}" if "build" in argv else None, name)
    return passthrough()


def _is_compose_build(argv: Sequence[str], root: Mapping[str, Flag]) -> bool:
    try:
        return parse(argv, root, interspersed=False).rest[:1] == ["build"]
    except BadArgs:
        return False


def _daemon_env(top: Parsed, environ: Mapping[str, str]) -> dict[str, str] | str:
    """The environment that makes planner talk to the daemon the docker CLI would: `-H`, `--context`,
    `DOCKER_HOST`, `DOCKER_CONTEXT`, or the config's current context. A string: why it cannot (pass through)."""
    for option in TLS:
        if option in top.given():
            return f"{option}: TLS client options are not handed to planner"
    level = top.last("--log-level")
    if level is not None and level.lower() not in LOG_LEVELS:
        return f"--log-level: not a level: {level!r} (the real docker reports it)"
    env: dict[str, str] = {}
    config = top.last("--config")
    if config is not None:
        env["DOCKER_CONFIG"] = config
    hosts = top.values("--host")
    context = top.last("--context")
    if hosts and context is not None:
        return "--context: conflicts with -H (the real docker reports it)"
    if len(hosts) > 1:
        return "-H: more than one daemon"
    if hosts:
        env["DOCKER_HOST"] = hosts[0]
        return env
    if context is None and environ.get("DOCKER_HOST"):
        return env
    config_dir = Path(config or environ.get("DOCKER_CONFIG") or Path(environ.get("HOME", "/")) / ".docker")
    option = "--context"
    if context is None:
        option = "DOCKER_CONTEXT"
        context = environ.get("DOCKER_CONTEXT") or None
    if context is None:
        option = "the current docker context"
        context = _current_context(config_dir)
    if context in (None, "", "default"):
        return env
    host = context_host(config_dir, context)
    if host is None:
        return f"{option}: context {context!r} has no plain docker endpoint planner can use (TLS or unknown)"
    env["DOCKER_HOST"] = host
    return env


def _current_context(config_dir: Path) -> str | None:
    try:
        data = json.loads((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    current = data.get("currentContext") if isinstance(data, dict) else None
    return current if isinstance(current, str) else None


def context_host(config_dir: Path, name: str) -> str | None:
    """The docker endpoint of a named docker context (its meta.json), None when unknown or TLS."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (config_dir / "contexts" / "tls" / digest).exists():
        return None
    return host if isinstance(host, str) and host else None


def _compose(argv: Sequence[str], env: dict[str, str], tool: str) -> Route:
    root = parse(argv, COMPOSE_ROOT, interspersed=False)
    if root.on("--help") or root.on("--version") or root.rest[:1] != ["build"]:
        return passthrough(None, tool)
    build = parse(root.rest[1:], COMPOSE_BUILD, interspersed=True)
    if build.on("--help"):
        return passthrough(None, tool)
    for option, why in COMPOSE_BUILD_PASSED.items():
        if option in build.given() and (build.on(option) if not COMPOSE_BUILD[option].value else True):
            return passthrough(f"{option}: {why}", tool)
    project: list[str] = []
    for option, value in root.options:
        if option in COMPOSE_PROJECT_MAP and value is not None:
            project += [COMPOSE_PROJECT_MAP[option], value]
    apply: list[str] = []
    quiet = build.on("--quiet")
    for progress in (root.last("--progress"), build.last("--progress")):
        if progress is not None and progress not in PROGRESS:
            return passthrough(f"--progress: unknown value {progress!r}", tool)
        quiet = quiet or progress == "quiet"
    ansi = root.last("--ansi")
    if ansi is not None and ansi not in ANSI:
        return passthrough(f"--ansi: unknown value {ansi!r}", tool)
    parallel = root.last("--parallel")
    if parallel is not None:
        try:
            jobs = int(parallel)
        except ValueError:
            return passthrough(f"--parallel: not a number: {parallel!r}", tool)
        if jobs == 0 or jobs < -1:
            return passthrough(f"--parallel: {jobs} is not a job count planner takes", tool)
        if jobs > 0:
            apply += ["--jobs", str(jobs)]
    if root.on("--dry-run") or build.on("--dry-run"):
        apply.append("--dry-run")
    if build.on("--no-cache"):
        apply.append("--no-cache")
    if quiet:
        apply.append("-q")
    for value in build.values("--build-arg"):
        apply += ["--build-arg", value]
    if build.on("--with-dependencies"):
        apply.append("--with-dependencies")
    services = build.positionals
    if any(s.startswith("-") for s in services):
        services = ["--", *services]  # after compose's `--`: names, never planner options
    steps: list[list[str]] = []
    dry = "--dry-run" in apply
    if build.on("--pull") and not dry:
        steps.append(["pull-bases", *project, *services])
    steps.append(["apply", *project, *apply, *services])
    if build.on("--push") and not dry:
        steps.append(
            [
                "push-images",
                *project,
                *(["--with-dependencies"] if build.on("--with-dependencies") else []),
                *services,
            ]
        )
    return Route(steps, env, None, tool)


BUILD_PASSED = {
    "--output": "exports somewhere other than the daemon",
    "--cache-to": "exports build cache",
    "--cache-from": "imports build cache planner does not model",
    "--iidfile": "writes an image ID file",
    "--metadata-file": "writes a metadata file",
    "--network": "changes the RUN network, which planner does not model",
    "--add-host": "changes RUN's hosts, which planner does not model",
    "--secret": "secrets are not driven by planner's Engine builder",
    "--ssh": "ssh agents are not driven by planner's Engine builder",
    "--build-context": "additional contexts are not driven by planner's Engine builder",
    "--builder": "selects a buildx builder planner does not drive",
    "--push": "pushes from the builder",
    "--call": "runs a build check or subrequest",
    "--check": "runs the build checks",
    "--print": "prints a subrequest result",
    "--allow": "grants entitlements planner does not model",
    "--annotation": "annotations are not made by planner's Engine builder",
    "--attest": "attestations are not made by planner's Engine builder",
    "--provenance": "attestations are not made by planner's Engine builder",
    "--sbom": "attestations are not made by planner's Engine builder",
    "--no-cache-filter": "partial cache use is not modelled by planner",
    "--squash": "squashing is not modelled by planner",
    "--isolation": "isolation is not modelled by planner",
    "--security-opt": "security options are not modelled by planner",
    "--ulimit": "ulimits are not modelled by planner",
    "--shm-size": "/dev/shm size is not modelled by planner",
    "--cgroup-parent": "the cgroup parent is not modelled by planner",
    "--memory": "resource limits are not modelled by planner",
    "--memory-swap": "resource limits are not modelled by planner",
    "--cpu-shares": "resource limits are not modelled by planner",
    "--cpu-period": "resource limits are not modelled by planner",
    "--cpu-quota": "resource limits are not modelled by planner",
    "--cpuset-cpus": "resource limits are not modelled by planner",
    "--cpuset-mems": "resource limits are not modelled by planner",
    "--debug": "debug builds run in the real builder",
}
BUILD_IGNORED = {"--rm", "--force-rm", "--compress", "--disable-content-trust", "--load", "--progress"}


def _docker_build(argv: Sequence[str], table: Mapping[str, Flag], env: dict[str, str], command: str) -> Route:
    parsed = parse(argv, table, interspersed=True)
    if parsed.on("--help"):
        return passthrough()
    for option in parsed.given():
        if option in BUILD_PASSED:
            flag = table[option]
            if flag.value or parsed.on(option):
                if option == "--output" and all(_daemon_output(v) for v in parsed.values(option)):
                    continue
                return passthrough(f"{option}: {BUILD_PASSED[option]}")
    tags = parsed.values("--tag")
    if not tags:
        return passthrough(f"{command} without -t/--tag: planner needs a name for the image")
    if len(parsed.positionals) != 1:
        return passthrough(f"{command}: takes one context, got {len(parsed.positionals)}")
    context = parsed.positionals[0]
    if context == "-" or "://" in context or context.startswith("git@") or context.endswith(".git"):
        return passthrough(f"{command} {context}: a remote or stdin context")
    dockerfile = parsed.last("--file")
    if dockerfile == "-":
        return passthrough("--file -: a Dockerfile from stdin")
    platforms = parsed.values("--platform")
    if len(platforms) > 1 or any("," in p for p in platforms):
        return passthrough("--platform: several platforms")
    args = ["build-image"]
    for tag in tags:
        args += ["--tag", tag]
    if dockerfile is not None:
        args += ["--file", dockerfile]
    for option in ("--build-arg", "--label"):
        for value in parsed.values(option):
            args += [option, value]
    target = parsed.last("--target")
    if target is not None:
        args += ["--target", target]
    if platforms:
        args += ["--platform", platforms[0]]
    if parsed.on("--no-cache"):
        args.append("--no-cache")
    if parsed.on("--quiet"):
        args.append("-q")
    if parsed.on("--pull"):
        args.append("--pull")
    return Route([[*args, context]], env)


def _daemon_output(value: str) -> bool:
    """`--output type=docker` (or `type=image` without push, name): the image lands in the daemon as usual."""
    fields = dict(part.partition("=")[::2] for part in value.split(","))
    return fields.get("type") in ("docker", "image") and set(fields) <= {"type"}
