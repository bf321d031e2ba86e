"""Whether a path lies in a folder, by its text: the test the graph, the keys, the warnings and the exports each
make of outputs, stamps and contexts (absolute, normalised paths, as the stack holds them)."""

from __future__ import annotations

import os


def inside(path: str, folder: str) -> bool:
    """`path` is `folder` or lies below it (`/a/bc` is not inside `/a/b`)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
