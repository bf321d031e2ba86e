"""`plan` and `apply` without the CLI framework: their bodies, and a strict parser for their command lines.

Typer (with click and its pydantic adapters) costs more to import than a whole plan of a small stack. The two
commands users run all day are parsed here instead, when their command line uses only the plain forms of their
options (`--opt VALUE`, `--opt=VALUE`, `-o VALUE`, flags, node names); anything else (`--help`, a value typer
would reject, `--`, clustered short options, root options) returns None and goes to typer, which reports it as
before. `tests/unit/test_commandline.py` checks that every command line this parser accepts gives the bodies
the same values typer does. cli.py's `plan` and `apply` call the same bodies.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from planner.base.deferred import later
from planner.base.errors import PlannerError
from planner.compose.options import ProjectOptions

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from planner.plan.memo import Recorder

T = TypeVar("T")


class PlanFormat(StrEnum):
    table = "table"
    json = "json"


class _Invocation:
    """The command line as typed, while a command runs from `planner` (the memo's key; None under a test
    runner)."""

    args: list[str] | None = None


invocation = _Invocation()


def project_options(
    files: list[str] | None = None,
    project_name: str | None = None,
    project_directory: str | None = None,
    profile: list[str] | None = None,
    env_file: list[str] | None = None,
) -> ProjectOptions:
    return ProjectOptions(
        files=tuple(files or ()),
        project_directory=project_directory,
        project_name=project_name,
        profiles=tuple(profile or ()),
        env_files=tuple(env_file or ()),
        environ=dict(os.environ),
        cwd=os.getcwd(),
    )


PROJECT_FIELDS = ("files", "project_name", "project_directory", "profile", "env_file")


def run_or_exit(action: Callable[[], T]) -> T:
    """Run a command body, turning PlannerErrors into one line on stderr and their exit code."""
    try:
        return action()
    except PlannerError as exc:
        sys.stderr.write(f"planner: {exc.one_line()}\n")
        if exc.hint:
            sys.stderr.write(f"  hint: {exc.hint}\n")
        sys.stderr.flush()
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:  # before apply's executor runs (it cancels its own steps): nothing was started
        sys.stderr.write("planner: interrupted\n")
        sys.stderr.flush()
        raise SystemExit(130) from None


def overrides(
    options: ProjectOptions, nodes: list[str], build_arg: list[str] | None, with_dependencies: bool
) -> tuple[ProjectOptions, list[str]]:
    """`--build-arg` and `--with-dependencies`: the options the stack is loaded with, and the selection."""
    import dataclasses

    from planner.build.stack import StackOptions, parse_build_args
    from planner.build.stack import with_dependencies as expand

    if with_dependencies:
        nodes = run_or_exit(lambda: expand(options, nodes))
    if not build_arg:
        return options, nodes
    parsed = run_or_exit(lambda: parse_build_args(build_arg))
    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    return StackOptions(**fields, build_args=parsed, build_arg_services=tuple(nodes)), nodes


def recorder_for(options: ProjectOptions) -> Recorder | None:
    """A memo recorder when run from the command line (planner.cli.main), which answers identical runs."""
    if invocation.args is None:
        return None
    from planner.plan.memo import Recorder

    return Recorder(invocation.args, options)


def recording(recorder: Recorder | None) -> AbstractContextManager[object]:
    return recorder.recording() if recorder is not None else contextlib.nullcontext()


def print_plan(
    options: ProjectOptions, rules: str | None, nodes: list[str], offline: bool, output: PlanFormat
) -> None:
    from planner.cli.render import plan_json, write_plan
    from planner.plan.pipeline import make_plan

    recorder = recorder_for(options) if offline else None
    with recording(recorder):
        planned = run_or_exit(lambda: make_plan(options, rules, nodes, offline))
        text = plan_json(planned.plan)
    if recorder is not None:
        from planner.plan.memo import Answer

        # the compose warnings the load printed, replayed with the answer
        warned = "".join(
            f"planner: warning: {w}\n" for w in [*planned.graph.stack.compose.warnings, *planned.warnings]
        )
        answer = Answer(text, warned, table=output is not PlanFormat.json)
        later(functools.partial(recorder.save_for, answer, planned.graph))
    write_plan(text, output.value)


def plan(
    options: ProjectOptions,
    rules: str | None,
    nodes: list[str] | None,
    offline: bool,
    output_format: PlanFormat,
    build_arg: list[str] | None,
    with_dependencies: bool,
) -> None:
    """The body of `planner plan`."""
    options, selected = overrides(options, nodes or [], build_arg, with_dependencies)
    print_plan(options, rules, selected, offline, output_format)


def apply(
    options: ProjectOptions,
    rules: str | None,
    nodes: list[str] | None,
    jobs: int | None,
    keep_going: bool,
    timing_log: Path | None,
    trace: Path | None,
    no_cache: bool,
    rebuild: list[str] | None,
    dry_run: bool,
    quiet: bool,
    output_format: PlanFormat,
    build_arg: list[str] | None,
    with_dependencies: bool,
) -> None:
    """The body of `planner apply`; ends with SystemExit(the run's exit code)."""
    options, nodes = overrides(options, nodes or [], build_arg, with_dependencies)
    if dry_run:
        print_plan(options, rules, nodes or [], False, output_format)
        return
    from planner.apply.run import ApplyOptions
    from planner.apply.run import apply as run_apply
    from planner.cli import render
    from planner.plan.decide import Forcing

    forcing = Forcing(everything=no_cache, nodes=frozenset(rebuild or []))
    apply_options = ApplyOptions(
        keep_going=keep_going,
        timing_log=timing_log,
        trace=trace,
        forcing=forcing,
        quiet=quiet or output_format is PlanFormat.json,
    )
    if jobs is not None:
        apply_options.jobs = jobs
    # A no-op apply is remembered: the next identical one answers from the memo (planner.cli.main).
    recorder = (
        recorder_for(options) if timing_log is None and trace is None and not (no_cache or rebuild) else None
    )
    with recording(recorder):
        result = run_or_exit(lambda: run_apply(options, rules, nodes or [], apply_options))
    missing = set(rebuild or []) - set(result.planned.graph.nodes)
    if missing:
        sys.stderr.write(
            f"planner: warning: --rebuild names no selected node: {', '.join(sorted(missing))}\n"
        )
    stdout = render.apply_json(result) if output_format is PlanFormat.json else ""
    summary = StringIO()
    render.apply_summary(result, summary)
    sys.stdout.write(stdout)
    sys.stderr.write(summary.getvalue())
    if recorder is not None and result.exit_code == 0 and not result.results and not result.warnings:
        from planner.plan.memo import Answer

        later(functools.partial(recorder.save_for, Answer(stdout, summary.getvalue()), result.planned.graph))
    raise SystemExit(result.exit_code)


# -- the strict parser ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    name: str  # the body's parameter
    forms: tuple[str, ...]  # "--long", "-s"
    kind: str  # "flag", "text", "list", "format", "jobs", "path"


_PROJECT = (
    _Option("files", ("--file", "-f"), "list"),
    _Option("project_name", ("--project-name", "-p"), "text"),
    _Option("project_directory", ("--project-directory",), "text"),
    _Option("profile", ("--profile",), "list"),
    _Option("env_file", ("--env-file",), "list"),
    _Option("rules", ("--rules",), "text"),
    _Option("output_format", ("--format",), "format"),
    _Option("build_arg", ("--build-arg",), "list"),
    _Option("with_dependencies", ("--with-dependencies",), "flag"),
)
OPTIONS: dict[str, tuple[_Option, ...]] = {
    "plan": (*_PROJECT, _Option("offline", ("--offline",), "flag")),
    "apply": (
        *_PROJECT,
        _Option("jobs", ("--jobs", "-j"), "jobs"),
        _Option("keep_going", ("--keep-going",), "flag"),
        _Option("timing_log", ("--timing-log",), "path"),
        _Option("trace", ("--trace",), "path"),
        _Option("no_cache", ("--no-cache",), "flag"),
        _Option("rebuild", ("--rebuild",), "list"),
        _Option("dry_run", ("--dry-run",), "flag"),
        _Option("quiet", ("--quiet", "-q"), "flag"),
    ),
}
_DIGITS = re.compile(r"[0-9]+")


def _defaults(command: str) -> dict[str, Any]:
    values: dict[str, Any] = {"nodes": None}
    for option in OPTIONS[command]:
        values[option.name] = False if option.kind == "flag" else None
    values["output_format"] = PlanFormat.table
    return values


def _value(option: _Option, text: str) -> Any:
    """The value typer would give, or None where typer might say something else (it then parses)."""
    if option.kind in ("text", "list"):
        return text
    if option.kind == "format":
        return PlanFormat(text) if text in ("table", "json") else None
    if option.kind == "jobs":
        return int(text) if _DIGITS.fullmatch(text) and int(text) >= 1 else None
    if option.kind == "path":
        return Path(text) if text else None
    return None


def parse(args: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """`(command, the body's keyword values)` for a plain `plan`/`apply` command line, else None."""
    if not args or args[0] not in OPTIONS:
        return None
    command = args[0]
    forms = {form: option for option in OPTIONS[command] for form in option.forms}
    values = _defaults(command)
    nodes: list[str] = []
    rest = list(args[1:])
    while rest:
        token = rest.pop(0)
        if not token.startswith("-") or token == "-":
            nodes.append(token)
            continue
        name, explicit = token.split("=", 1) if token.startswith("--") and "=" in token else (token, None)
        option = forms.get(name)
        if option is None:
            return None  # --help, --, unknown or clustered options: typer's to parse and report
        if option.kind == "flag":
            if explicit is not None:
                return None
            values[option.name] = True
            continue
        if explicit is None:
            if not rest:
                return None
            explicit = rest.pop(0)
        value = _value(option, explicit)
        if value is None:
            return None
        if option.kind == "list":
            values[option.name] = [*(values[option.name] or []), value]
        else:
            values[option.name] = value
    if nodes:
        values["nodes"] = nodes
    return command, values


def run_parsed(command: str, values: dict[str, Any], args: list[str]) -> None:
    """Run a command `parse` accepted, as typer would run it."""
    values = dict(values)
    options = project_options(**{name: values.pop(name) for name in PROJECT_FIELDS})
    body = plan if command == "plan" else apply
    invocation.args = args
    try:
        body(options=options, **values)
    finally:
        invocation.args = None


# Compose's global options, which compose users type before the subcommand (`docker compose -f F -p P build`):
# planner takes them there too, for the commands that load a project.
GLOBAL_VALUED = {"-f": "--file", "--file": "--file", "-p": "--project-name", "--project-name": "--project-name",
                 "--profile": "--profile", "--project-directory": "--project-directory", "--env-file": "--env-file"}  # fmt: skip
PROJECT_COMMANDS = {"config", "graph", "plan", "explain", "apply", "gc", "warm", "push-images", "pull-bases"}


def hoist_global_options(args: list[str]) -> list[str]:
    """`planner -f F -p P --profile X plan ...` as `planner plan -f F -p P --profile X ...`: the leading compose
    options (`-f F`, `-fF`, `--file=F`, ...) go after the subcommand when it loads a project. Anything else is
    left as typed, so a misplaced option is still reported by name."""
    leading: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        name, eq, _ = word.partition("=")
        if eq and name in GLOBAL_VALUED and name.startswith("--"):
            leading.append(word)
            index += 1
        elif word in GLOBAL_VALUED and index + 1 < len(args):
            leading += [word, args[index + 1]]
            index += 2
        elif word[:2] in ("-f", "-p") and len(word) > 2 and not word.startswith("--"):
            leading.append(word)
            index += 1
        else:
            break
    if not leading or index >= len(args):
        return args
    command = args[index]
    if command not in PROJECT_COMMANDS and not (
        command == "golden" and args[index + 1 : index + 2] == ["status"]
    ):
        return args
    at = index + (2 if command == "golden" else 1)
    return [*args[index:at], *leading, *args[at:]]
