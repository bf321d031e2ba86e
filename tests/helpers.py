"""Small helpers shared by tests."""

from __future__ import annotations

import os
from pathlib import Path
from textwrap import dedent


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> text, dedented) under `root`, making folders as needed."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
    return root


def write_raw(folder: Path, name: bytes, content: bytes) -> None:
    """Write a file whose name is raw bytes (e.g. not valid UTF-8), as a user's tree may hold one."""
    fd = os.open(os.path.join(os.fsencode(folder), name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
