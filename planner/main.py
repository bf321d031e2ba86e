"""The `planner` entry point.

An offline plan or a no-op apply whose memo holds is answered before the command line is parsed or the CLI
framework is loaded: the memo is keyed by the exact command line, directory and environment, and proves by
lstat and by replaying the daemon reads that nothing the run depended on has moved (memo.py). Everything else
goes to the CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if ("plan" in args and "--offline" in args) or "apply" in args:
        from planner.memo import remembered

        answer = remembered(args)
        if answer is not None:
            if answer.table:
                from planner.render import write_plan

                write_plan(answer.stdout, "table")
            else:
                sys.stdout.write(answer.stdout)
            sys.stderr.write(answer.stderr)
            return
    from planner.cli import run

    run(args)
