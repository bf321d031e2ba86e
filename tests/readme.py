"""The README's shell blocks: which ones the tour test runs (marked `<!-- tested -->` on the line before the fence)
and, for each command line, the text it must print (a trailing `# → text` comment)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- tested -->"
EXPECT = re.compile(r"\s#\s→\s(?P<text>.+)$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    tested: bool
    commands: list[str]

    @property
    def first(self) -> str:
        return self.commands[0] if self.commands else ""


def shell_blocks(text: str | None = None) -> list[Block]:
    lines = (README.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```sh":
            previous = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
            body = lines[index + 1 : end]
            commands: list[str] = []
            for line in body:  # a trailing backslash continues the command
                if commands and commands[-1].endswith("\\"):
                    commands[-1] = commands[-1][:-1] + " " + line.strip()
                elif line.strip():
                    commands.append(line)
            blocks.append(Block(index + 1, previous == MARK, commands))
            index = end
        index += 1
    return blocks


def expected(command: str) -> str | None:
    """The text a command must print (its `# → text` comment), if it names one."""
    found = EXPECT.search(command)
    return found.group("text").strip() if found else None
