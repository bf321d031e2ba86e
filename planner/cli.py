"""The `planner` command line: parse options, run the pipeline, hand the result to a renderer.

Errors: a PlannerError prints one line (`file:line: message`, plus a hint) on stderr and exits with its code
(2 for bad input, 1 for runtime failures); no traceback for anything the user can fix.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer
from ruamel.yaml import YAML

from planner.compose.loader import load_project
from planner.compose.model import ComposeProject
from planner.compose.options import ProjectOptions
from planner.errors import PlannerError

app = typer.Typer(
    name="planner",
    help="Build and move a compose stack's images only where content keys say it is needed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FileOpt = Annotated[
    list[str] | None,
    typer.Option("--file", "-f", help="Compose file (repeatable); default: discovery or COMPOSE_FILE."),
]
ProjectNameOpt = Annotated[str | None, typer.Option("--project-name", "-p", help="Project name.")]
ProjectDirOpt = Annotated[
    str | None, typer.Option("--project-directory", help="Project directory (default: the first file's folder).")
]
ProfileOpt = Annotated[list[str] | None, typer.Option("--profile", help="Enable a profile (repeatable).")]
EnvFileOpt = Annotated[list[str] | None, typer.Option("--env-file", help="Env file (repeatable); default: .env.")]


@app.callback()
def _root() -> None:
    """Build and move a compose stack's images only where content keys say it is needed."""


class ConfigFormat(str, Enum):
    json = "json"
    yaml = "yaml"


T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning PlannerErrors into one line on stderr and their exit code."""
    try:
        return action()
    except PlannerError as exc:
        typer.echo(f"planner: {exc.one_line()}", err=True)
        if exc.hint:
            typer.echo(f"  hint: {exc.hint}", err=True)
        raise typer.Exit(exc.exit_code) from None


def project_options(
    files: list[str] | None,
    project_name: str | None,
    project_directory: str | None,
    profiles: list[str] | None,
    env_files: list[str] | None,
) -> ProjectOptions:
    return ProjectOptions(
        files=tuple(files or ()),
        project_directory=project_directory,
        project_name=project_name,
        profiles=tuple(profiles or ()),
        env_files=tuple(env_files or ()),
        environ=dict(os.environ),
        cwd=os.getcwd(),
    )


def dump(data: Any, output_format: str) -> str:
    if output_format == "yaml":
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
        from io import StringIO

        buffer = StringIO()
        yaml.dump(data, buffer)
        return buffer.getvalue()
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@app.command()
def config(
    files: FileOpt = None,
    project_name: ProjectNameOpt = None,
    project_directory: ProjectDirOpt = None,
    profile: ProfileOpt = None,
    env_file: EnvFileOpt = None,
    output_format: Annotated[ConfigFormat, typer.Option("--format", help="Output format.")] = ConfigFormat.json,
) -> None:
    """Print the resolved, build-relevant compose model (like `docker compose config`)."""
    options = project_options(files, project_name, project_directory, profile, env_file)
    project: ComposeProject = _run(lambda: load_project(options))
    sys.stdout.write(dump(project.to_config(), output_format.value))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
