"""The CLI's own surface: --version, and help that does not print a type after flags."""

from __future__ import annotations

from typer.testing import CliRunner

from planner import __version__
from planner.cli.app import app


def test_version() -> None:
    shown = CliRunner().invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"planner {__version__}"


def test_flags_show_no_value_type_in_help() -> None:
    shown = CliRunner().invoke(app, ["apply", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    assert "<bool>" not in shown.output
    assert "--timing-log" in shown.output and "<path>" in shown.output  # options that take a value say which
