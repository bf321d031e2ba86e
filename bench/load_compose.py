"""Benchmark: load a generated 200-service compose project; compare with Docker Compose v2's `config`.

Prints planner's in-process load time (best and median of N runs), the CLI wall time, and the same for the
reference binary, with the ratio. Goal (issue 2): in-process load of 200 services < 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planner.compose.loader import load_project
from planner.compose.options import ProjectOptions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.oracle import compose_v2_binary  # noqa: E402


def generate(root: Path, services: int) -> None:
    lines = [
        "name: bench",
        "x-build: &build",
        "  dockerfile: Dockerfile",
        "  args:",
        "    BASE: ${BASE_IMAGE:-scratch}",
        "    VERSION: '1.0'",
        "services:",
    ]
    for i in range(services):
        lines += [
            f"  svc{i:03d}:",
            f"    image: registry.test/bench/svc{i:03d}:${{TAG:-latest}}",
            "    build:",
            "      <<: *build",
            f"      context: ./services/svc{i:03d}",
            f"      target: stage{i % 3}",
            "      labels:",
            f"        com.example.index: '{i}'",
            "      tags:",
            f"        - registry.test/bench/svc{i:03d}:extra",
        ]
        if i % 4 == 0:
            lines += ["    profiles: [extra]"]
        if i:
            lines += ["    depends_on:", f"      - svc{i - 1:03d}"] if i % 4 else []
        (root / "services" / f"svc{i:03d}").mkdir(parents=True, exist_ok=True)
    (root / "compose.yaml").write_text("\n".join(lines) + "\n")
    (root / ".env").write_text("TAG=bench\n")


def time_runs(fn: object, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="planner-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.services)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
        options = ProjectOptions(environ=env, cwd=tmp, profiles=("extra",))
        count = len(load_project(options).services)
        ours = time_runs(lambda: load_project(options), args.runs)
        cli = time_runs(
            lambda: subprocess.run(
                [sys.executable, "-m", "planner", "config", "--profile", "extra"],
                cwd=tmp, env={**env, "PYTHONPATH": str(REPO)}, check=True, capture_output=True,
            ),
            max(3, args.runs // 3),
        )  # fmt: skip
        print(f"services loaded: {count}")
        print(f"planner load_project: best {min(ours):.3f} s, median {statistics.median(ours):.3f} s")
        print(f"planner config (CLI, incl. interpreter start): median {statistics.median(cli):.3f} s")
        binary = compose_v2_binary()
        if binary is None:
            print("reference: Docker Compose v2 binary not found; no ratio")
            return
        ref = time_runs(
            lambda: subprocess.run(
                [binary, "--profile", "extra", "config", "--format", "json"],
                cwd=tmp, env=env, check=True, capture_output=True,
            ),
            max(3, args.runs // 3),
        )  # fmt: skip
        print(f"docker compose v2 config (CLI): median {statistics.median(ref):.3f} s")
        print(f"ratio planner CLI / compose CLI: {statistics.median(cli) / statistics.median(ref):.2f}")
        goal = "met" if statistics.median(ours) < 0.3 else "NOT met"
        print(f"goal load < 0.3 s for {args.services} services: {goal}")


if __name__ == "__main__":
    main()
