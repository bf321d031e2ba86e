"""The `planner` entry point.

An offline plan whose memo holds is answered before the command line is parsed or the CLI framework is
loaded: the memo is keyed by the exact command line, directory and environment, and proves by lstat that
nothing the plan read has moved (memo.py). Everything else goes to the CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "plan" in args and "--offline" in args:
        from planner.memo import remembered

        hit = remembered(args)
        if hit is not None:
            text, output_format = hit
            if output_format == "json":
                sys.stdout.write(text)
            else:
                from planner.cli import write_plan

                write_plan(text, output_format)
            return
    from planner.cli import run

    run(args)
