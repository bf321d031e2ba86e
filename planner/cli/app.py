"""The `planner` command line, typer wiring only: parse options, call the pipeline or a command, hand the
result to render.py.

Errors: a PlannerError prints one line (`file:line: message`, plus a hint) on stderr and exits with its code
(2 for bad input, 1 for runtime failures); no traceback for anything the user can fix. Heavy modules are
imported inside the commands that need them, so a no-op run pays only for what it uses.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable, Iterator
from enum import StrEnum
from io import StringIO
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from planner.cli import commandline
from planner.cli.commandline import PlanFormat, overrides, project_options, run_or_exit
from planner.compose.options import ProjectOptions
from planner.resident.client import IDLE


class _OneLineUsageErrors(TyperGroup):
    """Usage errors (a bad option value, an unknown option) as one `planner: ...` line plus a hint, exit 2,
    like every other bad input, instead of click's usage box."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except UsageError as exc:
        if isinstance(exc, NoArgsIsHelpError):
            raise
        command = exc.ctx.command_path if exc.ctx is not None else "planner"
        where = command.removeprefix("planner").strip()
        typer.echo(f"planner: {where + ': ' if where else ''}{exc.format_message()}", err=True)
        typer.echo(f"  hint: see '{command} --help'", err=True)
        raise typer.Exit(2) from None


app = typer.Typer(
    name="planner",
    cls=_OneLineUsageErrors,
    help="Build and move a compose stack's images only where content keys say it is needed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

NodesArg = Annotated[list[str] | None, typer.Argument(help="Only these nodes and what they need.")]

# The `docker compose` options every project command takes (design.md's CLI contract).
PROJECT_OPTIONS: list[tuple[str, Any]] = [
    ("files", Annotated[list[str] | None, typer.Option("--file", "-f", help="Compose file (repeatable); default: discovery or COMPOSE_FILE.")]),
    ("project_name", Annotated[str | None, typer.Option("--project-name", "-p", help="Project name.")]),
    ("project_directory", Annotated[str | None, typer.Option("--project-directory", help="Project directory (default: the first file's folder).")]),
    ("profile", Annotated[list[str] | None, typer.Option("--profile", help="Enable a profile (repeatable).")]),
    ("env_file", Annotated[list[str] | None, typer.Option("--env-file", help="Env file (repeatable); default: .env.")]),
]  # fmt: skip
RULES_OPTION: tuple[str, Any] = (
    "rules",
    Annotated[str | None, typer.Option("--rules", help="Rules file (default: planner.yaml in the project directory, or $PLANNER_RULES).")],
)  # fmt: skip

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def project_command(with_rules: bool = True) -> Callable[[F], F]:
    """Give a command the compose options (and `--rules`); it receives them as `options` (and `rules`)."""

    def decorate(func: F) -> F:
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(func).parameters.values()
            if p.name not in ("options", "rules")
        ]
        shared = [*PROJECT_OPTIONS, *([RULES_OPTION] if with_rules else [])]
        added = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
            for n, a in shared
        ]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            options = project_options(**{name: kwargs.pop(name) for name, _ in PROJECT_OPTIONS})
            return func(options=options, **kwargs)

        own_kinds = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        wrapper.__signature__ = inspect.Signature([*own_kinds, *added])  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


_run = run_or_exit  # a command body's PlannerError: one line on stderr, and its exit code


def _show_version(value: bool) -> None:
    if value:
        from planner import __version__

        typer.echo(f"planner {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print planner's version and exit."
        ),
    ] = False,
) -> None:
    """Build and move a compose stack's images only where content keys say it is needed."""


def _flags_show_no_type() -> None:
    """typer prints a type after every option, flags too (`--help <bool>`); a flag takes no value, so its
    help shows none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()


class ConfigFormat(StrEnum):
    json = "json"
    yaml = "yaml"


class GraphFormat(StrEnum):
    json = "json"
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"


class StatusFormat(StrEnum):
    table = "table"
    json = "json"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    svg = "svg"
    trace = "trace"


@app.command()
@project_command()
def config(
    options: ProjectOptions,
    rules: str | None,
    output_format: Annotated[
        ConfigFormat, typer.Option("--format", help="Output format.")
    ] = ConfigFormat.json,
    show_secrets: Annotated[
        bool,
        typer.Option(
            "--show-secrets",
            help="Print secret-looking build args and context URL credentials instead of masking them.",
        ),
    ] = False,
) -> None:
    """Print the resolved, build-relevant compose model (like `docker compose config`)."""
    from planner.base.secrets import mask_config
    from planner.compose.loader import load_project
    from planner.plan.redact import config_secret_args

    project = _run(lambda: load_project(options))
    secret_args = _run(lambda: config_secret_args(project, options, rules))
    data = project.to_config()
    from planner.cli.render import document

    sys.stdout.write(document(data if show_secrets else mask_config(data, secret_args), output_format.value))


@app.command()
@project_command()
def graph(
    options: ProjectOptions,
    rules: str | None,
    nodes: NodesArg = None,
    output_format: Annotated[
        GraphFormat,
        typer.Option("--format", help="json, dot, mermaid, or svg (the dot graph drawn by Graphviz)."),
    ] = GraphFormat.json,
) -> None:
    """Print the build graph: nodes, edges (with why), and the levels that can run in parallel."""
    from planner.build.graph import build_graph
    from planner.build.stack import load_stack
    from planner.cli import render

    built = _run(lambda: build_graph(load_stack(options, rules)).select(nodes or []))
    renderer = {
        "json": render.graph_json,
        "dot": render.graph_dot,
        "mermaid": render.graph_mermaid,
        "svg": render.graph_svg,
    }
    sys.stdout.write(_run(lambda: renderer[output_format.value](built)))


BuildArgOption = Annotated[
    list[str] | None,
    typer.Option("--build-arg", help="KEY=VALUE (or KEY: from the environment) overriding the compose build args of the named services (all when none), for this run (repeatable)."),
]  # fmt: skip
DependenciesOption = Annotated[
    bool, typer.Option("--with-dependencies", help="Also select the services the named ones depend_on (transitively).")
]  # fmt: skip


_overrides = overrides


@app.command()
@project_command()
def plan(
    options: ProjectOptions,
    rules: str | None,
    nodes: NodesArg = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not query daemons or the registry.")] = False,
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.table,
    build_arg: BuildArgOption = None,
    with_dependencies: DependenciesOption = False,
) -> None:
    """Say what apply would do per node and destination, and why (no side effects)."""
    commandline.plan(options, rules, nodes, offline, output_format, build_arg, with_dependencies)


@app.command()
@project_command()
def explain(
    options: ProjectOptions,
    rules: str | None,
    node: Annotated[str, typer.Argument(help="The node to explain.")],
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.table,
) -> None:
    """Which inputs differ from the build that is present (added / removed / changed files, args, upstream)."""
    from planner.cli import render
    from planner.commands.explain import explain_node

    report = _run(lambda: explain_node(options, rules, node))
    text = render.explanation_json if output_format is PlanFormat.json else render.explanation_text
    sys.stdout.write(text(report))


@app.command()
@project_command()
def apply(
    options: ProjectOptions,
    rules: str | None,
    nodes: NodesArg = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Steps run at once (default: CPUs, at least 4).")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Let independent branches finish after a failure.")] = False,
    timing_log: Annotated[Path | None, typer.Option("--timing-log", help="Append one JSON line per step here.")] = None,
    trace: Annotated[Path | None, typer.Option("--trace", help="Write a Chrome trace-event JSON of the run here.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every selected node, without build cache.")] = False,
    rebuild: Annotated[list[str] | None, typer.Option("--rebuild", help="Rebuild this node without build cache (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop (same as `plan`).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; only the summary.")] = False,
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Summary format.")] = PlanFormat.table,
    build_arg: BuildArgOption = None,
    with_dependencies: DependenciesOption = False,
) -> None:  # fmt: skip
    """Execute the plan: builds, exports, pulls and transfers in dependency order, in parallel."""
    commandline.apply(
        options, rules, nodes, jobs, keep_going, timing_log, trace, no_cache, rebuild, dry_run, quiet,
        output_format, build_arg, with_dependencies,
    )  # fmt: skip


@app.command()
def report(
    timing_log: Annotated[Path, typer.Argument(help="A timing log written by `apply --timing-log`.")],
    all_runs: Annotated[bool, typer.Option("--all", help="Merge every apply the log holds (default: the last).")] = False,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="table, json, svg (a timeline) or trace (Chrome trace-event JSON).")] = ReportFormat.table,
) -> None:  # fmt: skip
    """Per-phase times per node from a timing log: build / export / push / pull / load, totals, critical path."""
    from planner.apply.timing import analyse, read_log
    from planner.cli import render

    records = _run(lambda: read_log(timing_log))
    analysed = analyse(records, all_runs)
    if output_format is ReportFormat.table:
        render.print_report(analysed)
        return
    writers = {
        ReportFormat.json: render.report_json,
        ReportFormat.svg: render.report_svg,
        ReportFormat.trace: render.report_trace,
    }
    sys.stdout.write(writers[output_format](analysed))


@app.command()
@project_command()
def gc(
    options: ProjectOptions,
    rules: str | None,
    keep: Annotated[int, typer.Option("--keep", help="Keys kept per image (newest first; the current key always).")] = 3,
    delete: Annotated[bool, typer.Option("--delete", help="Really delete (default: only list what would go).")] = False,
) -> None:  # fmt: skip
    """Remove this project's old content-addressed refs from the registry (dry run unless --delete)."""
    from planner.cli import render
    from planner.commands.gc import collect

    results = _run(lambda: collect(options, rules, keep, delete))
    render.gc_listing(results, delete, sys.stdout, sys.stderr)
    if any(r.errors for r in results):
        raise typer.Exit(1)


@app.command()
@project_command()
def warm(
    options: ProjectOptions,
    rules: str | None,
    nodes: NodesArg = None,
    destination: Annotated[list[str] | None, typer.Option("--destination", "-d", help="Fill only this destination (repeatable).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Pulls at once.")] = 4,
) -> None:  # fmt: skip
    """Fill destinations from the registry for the current keys, building nothing (for session start-up)."""
    from planner.cli import render
    from planner.commands.warm import warm as run_warm

    result = _run(lambda: run_warm(options, rules, nodes or [], destination or [], jobs))
    render.warm_summary(result, sys.stderr)
    raise typer.Exit(result.exit_code)


golden_app = typer.Typer(
    help="Golden Docker data roots: a destination daemon starts on a clone, then apply tops it up."
)
app.add_typer(golden_app, name="golden")


class CloneMethod(StrEnum):
    auto = "auto"
    reflink = "reflink"
    overlay = "overlay"
    copy = "copy"


JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Files copied at once.")]


@golden_app.command("promote")
def golden_promote(
    data_root: Annotated[Path, typer.Argument(help="The data root of a stopped daemon.")],
    golden: Annotated[Path, typer.Argument(help="The golden folder (made when missing).")],
    jobs: JobsOption = 8,
) -> None:
    """Make a new version of GOLDEN from DATA_ROOT (reflink where the filesystem allows, else a copy), with a
    manifest of its images, and switch GOLDEN's current version to it atomically."""
    from planner.commands.golden import promote

    made = _run(lambda: promote(data_root, golden, os.environ, jobs))
    assert made.version is not None
    images = made.version.manifest.get("images", [])
    keyed = sum(1 for i in images if i.get("key"))
    typer.echo(
        f"promoted {made.version.id}: {len(images)} image(s), {keyed} with a planner key, "
        f"{made.stats.files} files, {made.stats.bytes / 1e6:.1f} MB by {made.method} in {made.seconds:.2f} s"
    )


@golden_app.command("clone")
def golden_clone(
    golden: Annotated[Path, typer.Argument(help="The golden folder.")],
    data_root: Annotated[Path, typer.Argument(help="Where the new daemon's data root goes (must not exist).")],
    method: Annotated[CloneMethod, typer.Option("--method", help="auto: reflink, else overlay where the storage driver runs on it, else copy.")] = CloneMethod.auto,
    jobs: JobsOption = 8,
) -> None:  # fmt: skip
    """Materialise GOLDEN's current version at DATA_ROOT (made beside it, then renamed into place)."""
    from planner.commands.golden import clone

    made = _run(lambda: clone(golden, data_root, method.value, jobs))
    assert made.version is not None
    typer.echo(f"cloned {made.version.id} to {data_root} by {made.method} in {made.seconds:.2f} s")


@golden_app.command("status")
@project_command()
def golden_status(
    options: ProjectOptions,
    rules: str | None,
    golden: Annotated[Path, typer.Argument(help="The golden folder.")],
    destination: Annotated[str | None, typer.Option("--destination", "-d", help="The destination whose daemon starts on GOLDEN's clones (default: the one whose rules name GOLDEN).")] = None,
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.table,
) -> None:  # fmt: skip
    """Per node: present in GOLDEN with the current key, stale (with the inputs that changed) or absent."""
    from planner.cli import render
    from planner.commands.golden import status

    report = _run(lambda: status(options, rules, golden, destination))
    text = render.golden_status_json if output_format is PlanFormat.json else render.golden_status_text
    sys.stdout.write(text(report))
    if report.error is not None:
        raise typer.Exit(1)


@golden_app.command("prune")
def golden_prune(
    golden: Annotated[Path, typer.Argument(help="The golden folder.")],
    keep: Annotated[
        int, typer.Option("--keep", min=0, help="Newest versions kept besides the current one.")
    ] = 2,
) -> None:
    """Remove GOLDEN's versions other than the current and the KEEP newest; versions clones use stay."""
    from planner.commands.golden import prune

    pruned = _run(lambda: prune(golden, keep))
    for version in pruned.removed:
        typer.echo(f"removed {version}")
    for version, users in pruned.in_use.items():
        typer.echo(f"kept {version}: in use by {', '.join(users)}")
    typer.echo(f"kept {len(pruned.kept)}, removed {len(pruned.removed)}")


shim_app = typer.Typer(help="The `docker` shim that routes docker and compose builds through planner.")
app.add_typer(shim_app, name="shim")


class ShimName(StrEnum):
    docker = "docker"
    docker_compose = "docker-compose"


@shim_app.command("install")
def shim_install(
    folder: Annotated[Path, typer.Argument(help="Where to write the shim; put it first on PATH.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a FOLDER/NAME that is not planner's shim.")
    ] = False,
    name: Annotated[ShimName, typer.Option("--name", help="Stand in for `docker` or `docker-compose`.")] = ShimName.docker,
) -> None:  # fmt: skip
    """Write the shim as FOLDER/docker (or FOLDER/docker-compose)."""
    from planner.commands.shim import install

    target = _run(lambda: install(folder, force=force, name=name.value))
    typer.echo(f"wrote {target}; add it first on PATH: export PATH={target.parent}:$PATH")


@shim_app.command("uninstall")
def shim_uninstall(
    folder: Annotated[Path, typer.Argument(help="The folder the shim was installed in.")],
) -> None:
    """Remove the shim's launchers from FOLDER (nothing else)."""
    from planner.commands.shim import uninstall

    for removed in _run(lambda: uninstall(folder)):
        typer.echo(f"removed {removed}")


@shim_app.command("status")
def shim_status() -> None:
    """Which shim is on PATH, whether it comes first, and which real docker it forwards to."""
    from planner.commands.shim import status

    for entry in status():
        if entry.shim is None:
            typer.echo(f"{entry.name}: no shim on PATH (runs {entry.first or 'nothing'})")
            continue
        place = "first on PATH" if entry.ahead else f"NOT first on PATH ({entry.first} runs instead)"
        typer.echo(f"{entry.name}: shim {entry.shim}, {place}; forwards to {entry.real or 'nothing found'}")


@app.command("build-image", hidden=True)
def build_image(
    context: Annotated[str, typer.Argument(help="The build context folder.")],
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="Image name (repeatable; the first is the node's image).")],
    file: Annotated[str | None, typer.Option("--file", "-f", help="Dockerfile (relative to the working directory).")] = None,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", help="KEY=VALUE or KEY (repeatable).")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="KEY=VALUE (repeatable).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Build stage.")] = None,
    platform: Annotated[str | None, typer.Option("--platform", help="Target platform.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Build again, without build cache.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress; print the image ID (as docker build -q).")] = False,
    pull: Annotated[bool, typer.Option("--pull", help="Pull the tag-named base images again first.")] = False,
) -> None:  # fmt: skip
    """`docker build -t` through planner (the shim): a one-node stack, planned and applied like `apply`."""
    from planner.build.stack import parse_build_args
    from planner.cli import render
    from planner.commands.shimsteps import ImageBuild
    from planner.commands.shimsteps import build_image as run_build

    request = ImageBuild(
        context, tuple(tag), file, _run(lambda: parse_build_args(build_arg or [])), tuple(label or ()), target, platform
    )  # fmt: skip
    result, image_id = _run(lambda: run_build(request, no_cache, quiet, pull))
    summary = StringIO()
    render.apply_summary(result, summary)
    sys.stderr.write(summary.getvalue())
    if quiet and image_id:
        typer.echo(image_id)
    raise typer.Exit(result.exit_code)


@app.command("push-images", hidden=True)
@project_command(with_rules=False)
def push_images(
    options: ProjectOptions,
    nodes: NodesArg = None,
    with_dependencies: DependenciesOption = False,
) -> None:
    """Push the services' compose image names (after `docker compose build --push` through the shim)."""
    from planner.commands.shimsteps import push_images as push

    options, selected = _overrides(options, nodes or [], None, with_dependencies)
    _run(lambda: push(options, selected))


@app.command("pull-bases", hidden=True)
@project_command(with_rules=False)
def pull_bases(options: ProjectOptions, nodes: NodesArg = None) -> None:
    """Pull the tag-named base images of the selected nodes again (`docker compose build --pull`)."""
    from planner.commands.shimsteps import pull_bases as pull

    for ref in _run(lambda: pull(options, nodes or [])):
        typer.echo(f"pulled {ref}", err=True)


server_app = typer.Typer(
    help="A resident planner process for this cache folder: runs start with imports done and snapshots read."
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", help="Seconds without a run after which the server stops.")] = IDLE,
) -> None:  # fmt: skip
    """Start the server of the cache folder (PLANNER_CACHE_DIR); `planner` runs then fork from it."""
    from planner.commands.server import start

    found = _run(lambda: start(os.environ, idle_timeout))
    assert found.answer is not None
    typer.echo(f"planner server running for {found.cache_dir} (pid {found.answer['pid']})")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server of the cache folder once the runs it started end."""
    from planner.commands.server import stop

    found = _run(lambda: stop(os.environ))
    if found.answer is None:
        typer.echo(f"no planner server for {found.cache_dir}")
    else:
        typer.echo(f"planner server for {found.cache_dir} stopped (pid {found.answer['pid']})")


@server_app.command("status")
def server_status(
    output_format: Annotated[StatusFormat, typer.Option("--format", help="table or json.")] = StatusFormat.table,
) -> None:  # fmt: skip
    """Say whether the cache folder's server runs (exit 1 when it does not, or is stopping)."""
    import json

    from planner.commands.server import status

    found = status(os.environ)
    answer = found.answer
    serving = answer is not None and not answer.get("stopping")
    if output_format is StatusFormat.json:
        typer.echo(json.dumps({"cache_dir": found.cache_dir, "serving": serving, "server": answer}, indent=2))
    elif answer is None:
        typer.echo(f"no planner server for {found.cache_dir}")
    elif not serving:
        typer.echo(
            f"planner server for {found.cache_dir} (pid {answer['pid']}) is stopping: {answer['stopping']}"
        )
    else:
        typer.echo(
            f"planner server for {found.cache_dir}: pid {answer['pid']}, {answer['runs']} run(s) served, "
            f"{answer['running']} running, {answer['snapshots']} snapshot(s) and {answer['memos']} memo(s) "
            f"held, stops after {answer['idle']:.0f} s idle"
        )
    if not serving:
        raise typer.Exit(1)


class SchemaName(StrEnum):
    rules = "rules"
    plan = "plan"


@app.command()
def schema(name: Annotated[SchemaName, typer.Argument(help="Which schema.")]) -> None:
    """Print the JSON Schema of the rules file or of `plan --format json` (schemas/ holds these outputs)."""
    from planner.cli.schemas import schema_json

    sys.stdout.write(schema_json(name.value))


def run(args: list[str]) -> None:
    """Run the CLI on `args`, remembering them for the plan memo (planner.cli.main answers memo hits)."""
    commandline.invocation.args = args
    try:
        app(args=args, prog_name="planner")
    finally:
        commandline.invocation.args = None
