"""The PlannerError family: every error the CLI reports carries an exit code and, for bad input, a source location.

Exit codes follow the CLI contract: 2 for invalid input or usage (nothing was changed), 1 for runtime failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where a value came from: a file, and where known a 1-based line and column, plus the key path inside it."""

    file: str
    line: int | None = None
    column: int | None = None
    key_path: str | None = None

    def __str__(self) -> str:
        text = self.file
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text

    def at(self, key_path: str) -> Location:
        return Location(self.file, self.line, self.column, key_path)

    @staticmethod
    def of_file(path: str | Path) -> Location:
        return Location(str(path))


class PlannerError(Exception):
    """Base of every error planner reports; `exit_code` decides the process exit status."""

    exit_code = 1

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def one_line(self) -> str:
        """The single line the CLI prints: `file:line: message (at key.path)`."""
        text = self.message
        if self.location is not None:
            text = f"{self.location}: {text}"
            if self.location.key_path and self.location.key_path not in self.message:
                text += f" (at {self.location.key_path})"
        return text

    def __str__(self) -> str:
        return self.one_line()


class InputError(PlannerError):
    """Invalid input (files, options, environment): exit 2, no state changed."""

    exit_code = 2


class ComposeFileError(InputError):
    """A compose file is missing, malformed or invalid."""


class InterpolationError(InputError):
    """A `${...}` expression is malformed, or a required variable is unset."""


class EnvFileError(InputError):
    """A `.env` / `--env-file` file cannot be read or parsed."""


class UsageError(InputError):
    """A command-line option or argument is invalid."""


class RuntimeFailure(PlannerError):
    """A build, transfer or daemon failure: exit 1."""

    exit_code = 1


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)|\w+Error\(-?\d+, '([^']+)'\)")


def exception_text(exc: BaseException) -> str:
    """A short reason for a library error: the OS error inside it when there is one (`Connection refused`),
    else the first line of its text, or its type name."""
    text = str(exc).strip()
    found: list[str] = [a or b for a, b in _ERRNO.findall(text)]
    if found:
        return found[-1].strip().rstrip(":")
    lines = text.splitlines()
    return lines[0][:200] if lines else type(exc).__name__
