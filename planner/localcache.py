"""Where planner keeps its local cache, and the rules every part of it shares.

Kept free of heavy imports: the plan memo reads it before anything else is loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# A path written this recently is not trusted by signature: a second write in the same timestamp tick would
# leave it unchanged (git's "racy clean" problem).
RACY_WINDOW_NS = 2_000_000_000


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = environ if environ is not None else dict(os.environ)
    if env.get("PLANNER_CACHE_DIR"):
        return Path(env["PLANNER_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "/tmp"), ".cache")
    return Path(base) / "planner"


def warn(message: str) -> None:
    print(f"planner: warning: {message}", file=sys.stderr)
