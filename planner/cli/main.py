"""The `planner` entry point.

An offline plan or a no-op apply whose memo holds is answered before the command line is parsed or the CLI
framework is loaded: the memo is keyed by the exact command line, directory and environment, and proves by
lstat and by replaying the daemon reads that nothing the run depended on has moved (memo.py). A plain `plan`
or `apply` command line is parsed without the CLI framework (commandline.py: typer, click and their pydantic
adapters are not imported); everything else goes to the typer CLI.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = (
    False  # typing and collections.abc cost 5 ms to import: a run handed to a server needs neither
)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the `planner` command: a resident server runs it when one is running (resident/)
        from planner.resident.client import handed_over

        code = handed_over(args)
        if code is not None:
            raise SystemExit(code)
    run(args)


def run(args: list[str]) -> None:
    """Run `planner args` in this process."""
    if args[:1] and args[0].startswith("-") and args[0] not in ("--help", "--version", "-h"):
        from planner.cli.commandline import hoist_global_options

        args = hoist_global_options(args)
    if ("plan" in args and "--offline" in args) or "apply" in args:
        from planner.plan.memo import remembered

        answer = remembered(args)
        if answer is not None:
            if answer.table:
                from planner.cli.render import write_plan

                write_plan(answer.stdout, "table")
            else:
                sys.stdout.write(answer.stdout)
            sys.stderr.write(answer.stderr)
            return
    from planner.cli.commandline import parse

    parsed = parse(args)
    if parsed is None:
        from planner.cli.app import run as run_cli

        run_cli(args)
        return
    _run_plain(*parsed, args)


def _run_plain(command: str, values: dict[str, Any], args: list[str]) -> None:
    """A parsed `plan`/`apply`, ending as typer's standalone mode ends a command: SystemExit with the exit code,
    130 on Ctrl-C, 1 on a closed stdout."""
    import errno

    from planner.cli.commandline import run_parsed

    try:
        run_parsed(command, values, args)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except EOFError:
        sys.stderr.write("\nAborted!\n")
        raise SystemExit(1) from None
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        _pacify()
        raise SystemExit(1) from None
    raise SystemExit(0)


def _pacify() -> None:
    """After a broken pipe, nothing more is written (as click's PacifyFlushWrapper does)."""
    import contextlib
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
