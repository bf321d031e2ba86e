"""Where planner keeps its local cache, and the rules every part of it shares.

Kept free of heavy imports: the plan memo reads it before anything else is loaded.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs 4 ms to import

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

# A path written this recently is not trusted by signature: a second write in the same timestamp tick would
# leave it unchanged (git's "racy clean" problem).
RACY_WINDOW_NS = 2_000_000_000


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    from pathlib import Path

    return Path(cache_root(environ if environ is not None else dict(os.environ)))


def cache_root(environ: Mapping[str, str]) -> str:
    """The cache folder as a string (the memo's hit path does without pathlib)."""
    if environ.get("PLANNER_CACHE_DIR"):
        return environ["PLANNER_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "/tmp"), ".cache")
    return os.path.join(base, "planner")


def warn(message: str) -> None:
    print(f"planner: warning: {message}", file=sys.stderr)


_warned_roots: set[str] = set()


def warn_cache(root: str, message: str) -> None:
    """A cache that cannot be used costs time, not correctness: say so once per cache folder and process
    (the store, the apply lock and the memo may each find out), then carry on without it."""
    if root not in _warned_roots:
        _warned_roots.add(root)
        warn(message)
