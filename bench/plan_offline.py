"""Benchmark: hashing a 100k-file, 20-service repository (issue 4 goals).

Prints, each measured in this run:
- warm no-op `planner plan --offline` vs `git status --porcelain` on the same tree (goal <= 1.5x);
- `planner plan --offline` right after one change, four ways (a file appended in place; saved over by rename, as
  editors save; a new file; a new folder of two files), each vs `git status --porcelain` on the tree as it then
  is (goal <= 2x);
  each figure from pairs (the plan, then git status right after it), as the ratio of the medians with a 90%
  bootstrap interval;
- cold-cache `planner plan --offline` time;
- cold hashing throughput vs `cat` of the same files to /dev/null (goal >= 0.7x);
- peak RSS of the 100k-file plan (goal <= 256 MB);
- the no-op and the four edits again through a resident server (`planner server start`, planner/resident/),
  each against `git status --porcelain` timed right after (goals 1.5x and 2x); `--no-server` skips them.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def generate(root: Path, files: int, services: int, size: int) -> None:
    per_service = files // services
    lines = ["services:"]
    payload = os.urandom(size)
    for s in range(services):
        name = f"svc{s:02d}"
        ctx = root / name
        lines += [f"  {name}:", f"    build: ./{name}"]
        (ctx).mkdir(parents=True)
        (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
        (ctx / ".dockerignore").write_text("*.log\nnode_modules\n")
        for i in range(per_service - 2):
            folder = ctx / f"pkg{i % 50:02d}" / f"mod{i % 7}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i}.txt").write_bytes(payload[: (i * 7919) % size] + str(i).encode())
    (root / "compose.yaml").write_text("\n".join(lines) + "\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.test"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "bench"], cwd=root, check=True)


def generate_single_root(root: Path, files: int, services: int, size: int) -> None:
    """Our users' shape: every service builds with the repository root as its context; each Dockerfile COPYs
    its own folder, and one more service COPYs everything."""
    per_service = files // services
    lines = ["services:"]
    payload = os.urandom(size)
    root.mkdir(parents=True)
    (root / ".dockerignore").write_text("*.log\nnode_modules\n.git\n")
    for s in range(services):
        name = f"svc{s:02d}"
        folder_root = root / name
        lines += [f"  {name}:", "    build:", "      context: .", f"      dockerfile: {name}/Dockerfile"]
        folder_root.mkdir(parents=True)
        (folder_root / "Dockerfile").write_text(f"FROM scratch\nCOPY {name}/ /app\n")
        for i in range(per_service - 1):
            folder = folder_root / f"pkg{i % 50:02d}" / f"mod{i % 7}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i}.txt").write_bytes(payload[: (i * 7919) % size] + str(i).encode())
    (root / "all").mkdir()
    (root / "all/Dockerfile").write_text("FROM scratch\nCOPY . /all\n")
    lines += ["  all:", "    build:", "      context: .", "      dockerfile: all/Dockerfile"]
    (root / "compose.yaml").write_text("\n".join(lines) + "\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.test"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "bench"], cwd=root, check=True)


def timed(cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> tuple[float, int]:
    """Median wall time and the largest child peak RSS (KiB) over `runs` runs."""
    times = []
    peak = 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return statistics.median(times), peak


EDITS = {
    "appended in place": "as most tools write",
    "saved over by rename": "as editors save: a new file renamed over the old one; its folder changes",
    "added": "a new file in an existing folder",
    "folder added": "a new folder holding two files",
}


def edit(target: Path, how: str, run: int) -> None:
    if how == "appended in place":
        with target.open("ab") as handle:
            handle.write(b"edit")
    elif how == "saved over by rename":
        temporary = target.with_name(f".{target.name}.swp")
        temporary.write_bytes(target.read_bytes() + b"saved")
        temporary.rename(target)
    elif how == "added":
        target.with_name(f"new{run}.txt").write_bytes(b"new file")
    else:
        folder = target.parent / f"new-folder{run}"
        folder.mkdir()
        (folder / "a.txt").write_bytes(b"a")
        (folder / "b.txt").write_bytes(b"b")


def edited_plan_times(
    planner: list[str], root: Path, env: dict[str, str], runs: int, how: str, offset: int = 0
) -> list[tuple[float, float]]:
    """(plan time, git status time) right after one file changed, per run: a different file each run (files
    age past the racy window first, as in real use), and `git status --porcelain` timed right after the plan,
    on the same tree, so that both see the machine as it then is."""
    pairs = []
    targets = sorted(root.glob("svc*/**/pkg00/mod0/*.txt"), key=str)
    for run in range(offset, offset + runs):
        edit(targets[run * 7 % len(targets)], how, run)
        time.sleep(2.1)
        plan = timed(planner, root, env, 1)[0]
        time.sleep(SETTLE)
        pairs.append((plan, timed(["git", "status", "--porcelain"], root, env, 1)[0]))
    return pairs


# A run forked from the server keeps the new snapshot and manifests after it answered (planner/base/deferred.py): git
# status is timed once those writes are done, not while they share the two cores with it.
SETTLE = 1.0


def noop_times(planner: list[str], root: Path, env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    """(plan time, git status time), alternated, with nothing changed."""
    pairs = []
    for _ in range(runs):
        plan = timed(planner, root, env, 1)[0]
        time.sleep(SETTLE)
        pairs.append((plan, timed(["git", "status", "--porcelain"], root, env, 1)[0]))
    return pairs


def ratio(pairs: list[tuple[float, float]], goal: float) -> str:
    """Medians of both and the ratio of the medians, with a 90% bootstrap interval over the pairs (this machine's
    run-to-run noise is +-15%: one ratio of medians can straddle a goal's line; the interval says by how much)."""
    plans, gits = [p for p, _ in pairs], [g for _, g in pairs]
    found = statistics.median(plans) / statistics.median(gits)
    rng = random.Random(4)
    samples = []
    for _ in range(2000):
        drawn = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        samples.append(statistics.median(p for p, _ in drawn) / statistics.median(g for _, g in drawn))
    samples.sort()
    low, high = samples[len(samples) // 20], samples[len(samples) * 19 // 20]
    return (
        f"{statistics.median(plans):.3f} s; git status --porcelain alongside: {statistics.median(gits):.3f} s; "
        f"ratio {found:.2f} (90% interval {low:.2f}-{high:.2f}; goal <= {goal:g}; {len(pairs)} pairs)"
    )


def resident_runs(planner: list[str], root: Path, env: dict[str, str], runs: int) -> None:
    """The same runs with `planner server start` first: each forked from a process that has imported planner and
    holds the snapshots (planner/resident/)."""
    started = subprocess.run(
        [*planner[:3], "server", "start"], env=env, check=True, capture_output=True, text=True
    )
    print(f"resident server: {started.stdout.strip()}")
    try:
        timed(planner, root, env, 2)  # the server reads the snapshots the first runs used
        time.sleep(0.5)
        print(f"server: warm no-op plan: {ratio(noop_times(planner, root, env, runs), 1.5)}")
        for how in EDITS:
            pairs = edited_plan_times(planner, root, env, runs, how, offset=100)
            print(f"server: plan after one file {how}: {ratio(pairs, 2)}")
    finally:
        subprocess.run([*planner[:3], "server", "stop"], env=env, check=False, capture_output=True)


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def compile_bytecode() -> None:
    """Write planner's bytecode first, as an installed package has it (PYTHONDONTWRITEBYTECODE may be set)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "planner")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--size", type=int, default=2048, help="max bytes per file")
    parser.add_argument("--runs", type=int, default=7, help="pairs (plan, git status) per figure")
    parser.add_argument(
        "--shape", choices=["roots", "single-root"], default="roots",
        help="roots: one context folder per service; single-root: every service's context is the repository",
    )  # fmt: skip
    parser.add_argument(
        "--server", action=argparse.BooleanOptionalAction, default=True,
        help="also measure the runs through a resident server (planner server start)",
    )  # fmt: skip
    args = parser.parse_args()
    compile_bytecode()
    planner = [sys.executable, "-m", "planner", "plan", "--offline", "--format", "json"]
    with tempfile.TemporaryDirectory(prefix="planner-bench-keys-") as tmp:
        root = Path(tmp) / "repo"
        cache = Path(tmp) / "cache"
        if args.shape == "single-root":
            generate_single_root(root, args.files, args.services, args.size)
        else:
            generate(root, args.files, args.services, args.size)
        env = {**os.environ, "PLANNER_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
        total_bytes = 0
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != ".git"]  # git may be packing objects in the background
            total_bytes += sum(os.lstat(os.path.join(folder, n)).st_size for n in names)
        reader = subprocess.run(
            [sys.executable, "-c", "from planner.keys import signatures; print(signatures._reader is not None)"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        print(
            f"tree ({args.shape}): {args.files} files, {args.services} services, {total_bytes / 1e6:.1f} MB; "
            f"lstat signatures read by {'the C extension' if reader == 'True' else 'Python (planner._lstat not built)'}"
        )

        dropped = drop_caches()
        cold, cold_peak = timed(planner, root, env, 1)
        print(f"cold plan (empty stat cache{', page cache dropped' if dropped else ''}): {cold:.2f} s")
        _, warm_peak = timed(planner, root, env, 1)
        print(f"warm no-op plan (plan memo): {ratio(noop_times(planner, root, env, args.runs), 1.5)}")
        for how, why in EDITS.items():
            pairs = edited_plan_times(planner, root, env, args.runs, how)
            print(f"plan after one file {how} ({why}): {ratio(pairs, 2)}")
        print(f"peak RSS: cold {cold_peak / 1024:.0f} MB, warm {warm_peak / 1024:.0f} MB (goal <= 256 MB)")
        if args.server:
            resident_runs(planner, root, env, args.runs)

        # Cold hashing throughput: planner's hasher over every file vs cat, page cache dropped before each.
        shutil.rmtree(cache)
        files = [str(p) for p in root.rglob("*.txt")]
        list_file = Path(tmp) / "files.txt"
        list_file.write_text("\n".join(files) + "\n")
        drop_caches()
        start = time.perf_counter()
        subprocess.run(f"xargs -a {list_file} -d '\\n' cat > /dev/null", shell=True, check=True)
        cat_time = time.perf_counter() - start
        drop_caches()
        hasher = [sys.executable, "-c",
                  "import sys; from planner.keys.statcache import StatCache; from planner.keys.walk import Entry;"
                  "import os; paths=open(sys.argv[1]).read().split(); "
                  "c=StatCache(None); d=os.path.dirname; "
                  "c.hashes('/', [Entry(p.lstrip('/'), 'f', 0o644, os.path.getsize(p)) for p in paths])",
                  str(list_file)]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(hasher, env=env, check=True)
        hash_time = time.perf_counter() - start
        size = sum(os.path.getsize(f) for f in files)
        print(f"cold hashing: {size / hash_time / 1e6:.0f} MB/s vs cat {size / cat_time / 1e6:.0f} MB/s; "
              f"ratio {cat_time / hash_time:.2f} (goal >= 0.7)")  # fmt: skip


if __name__ == "__main__":
    main()
