"""Helpers the benchmarks share: run a command (failing loudly), time it, run planner from this tree.

Real services (a registry on 127.0.0.1, a second dockerd as the sandbox) come from tests/integration/services.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sh(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True
) -> str:
    """Run a command and return its stdout; a failure (when `check`) ends the benchmark with its output."""
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def timed(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Wall seconds of one command (which must succeed)."""
    start = time.perf_counter()
    sh(command, env=env, cwd=cwd)
    return time.perf_counter() - start


def planner_env(**extra: str) -> dict[str, str]:
    """The environment for planner run from this tree (not the one installed in the venv)."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def planner_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "planner", *args]
