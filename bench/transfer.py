"""Benchmark (issue 7): moving a large image into the sandbox daemon, and cold sessions from a warm registry.

Real parts only: Debian's docker-registry on 127.0.0.1, a second dockerd as the sandbox, the session engine.
The image has LAYERS layers of LAYER_MB random data made by RUN steps that also do CPU work (a stand-in for a
real build), plus a top layer COPY of TOP_MB that the benchmark changes. Prints, each measured in this run:
- one changed top layer into the sandbox: bytes moved vs that layer's size (goal <= 1.2x) and time vs a full
  `docker save | docker load` of the image (goal <= 0.2x);
- a cold session (empty daemon) from the warm registry: planner apply time vs raw parallel `docker pull` of the
  same refs (goal <= 1.2x) and vs rebuilding (goal: >= 5x less);
- planner's peak RSS while streaming the whole image by save | load (goal <= 150 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.services import start_dockerd, start_registry  # noqa: E402

BASE = "planner-bench/busybox:1"


def sh(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True
) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def timed(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    sh(command, env=env, cwd=cwd)
    return time.perf_counter() - start


def make_base() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        shutil.copy("/bin/busybox", root / "bin/busybox")
        for applet in ("sh", "dd", "sha256sum", "cat", "rm", "gzip"):
            (root / "bin" / applet).symlink_to("busybox")
        (root / "tmp").mkdir()
        archive = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
        subprocess.run(
            ["docker", "import", "-c", "ENV PATH=/bin", "-", BASE],
            input=archive,
            capture_output=True,
            check=True,
        )


def project(
    root: Path, name: str, layers: int, layer_mb: int, top_mb: int, registry: str, sandbox: str
) -> None:
    (root / "app").mkdir(parents=True)
    steps = [f"FROM {BASE}"]
    for index in range(layers):
        # random data (the layer) plus CPU work on it (what a real build spends its time on)
        steps.append(f"RUN dd if=/dev/urandom of=/layer{index} bs=1M count={layer_mb} 2>/dev/null && "
                     f"gzip -9 -c /layer{index} | sha256sum > /layer{index}.sum")  # fmt: skip
    steps.append("COPY top.bin /top.bin")
    (root / "app/Dockerfile").write_text("\n".join(steps) + "\n")
    (root / "app/top.bin").write_bytes(os.urandom(top_mb * 1024 * 1024))
    (root / "compose.yaml").write_text(
        f"name: {name}\nservices:\n  big:\n    build:\n      context: ./app\n      network: none\n"
    )
    (root / "planner.yaml").write_text(
        f"registry:\n  url: {registry}\n  namespace: bench\ndestinations:\n  sandbox:\n    host: {sandbox}\n"
        "rules:\n  - match: big\n    destinations: [local, sandbox]\n"
    )


def wipe(url: str) -> None:
    """Remove every image from a daemon (all tags, so no image survives under another name)."""
    ids = sh(["docker", "-H", url, "images", "-aq"], check=False).split()
    if ids:
        sh(["docker", "-H", url, "image", "rm", "-f", *sorted(set(ids))], check=False)


def planner(root: Path, env: dict[str, str], *args: str) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one planner run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    sh([sys.executable, "-m", "planner", *args], env=env, cwd=root)
    elapsed = time.perf_counter() - start
    return elapsed, max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mb", type=int, default=200)
    parser.add_argument("--top-mb", type=int, default=20)
    args = parser.parse_args()
    make_base()
    name = f"tb{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="ptb-", dir="/tmp") as tmp:
        tmp_path = Path(tmp)
        registry = start_registry(tmp_path / "reg")
        sandbox = start_dockerd(tmp_path / "sbx")
        root = tmp_path / "p"
        project(root, name, args.layers, args.layer_mb, args.top_mb, registry.host, sandbox.url)
        env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNER_CACHE_DIR": str(tmp_path / "cache")}
        sandbox_env = {**env, "DOCKER_HOST": sandbox.url}
        image = f"{name}-big:latest"
        try:
            build_time, _ = planner(root, env, "apply", "-q", "--timing-log", str(tmp_path / "t0.jsonl"))
            size = json.loads(sh(["docker", "image", "inspect", image]))[0]["Size"]
            print(
                f"image: {size / 1e6:.0f} MB in {args.layers + 1} layers; first apply (build, push, deliver) {build_time:.1f} s"
            )

            # One changed top layer into the sandbox.
            (root / "app/top.bin").write_bytes(os.urandom(args.top_mb * 1024 * 1024))
            stored = registry.blob_bytes()
            log = tmp_path / "t1.jsonl"
            planner(root, env, "apply", "-q", "--timing-log", str(log))
            records = [json.loads(line) for line in log.read_text().splitlines()]
            moved = registry.blob_bytes() - stored
            deliver = sum(r["duration"] for r in records if r["phase"] in ("push", "transfer"))
            layer_bytes = args.top_mb * 1024 * 1024
            print(f"changed top layer ({layer_bytes / 1e6:.1f} MB): moved {moved / 1e6:.1f} MB through the registry, "
                  f"ratio {moved / layer_bytes:.2f} (goal <= 1.2); push + pull {deliver:.2f} s")  # fmt: skip
            sh(["docker", "-H", sandbox.url, "image", "rm", "-f", image], check=False)
            start = time.perf_counter()
            subprocess.run(
                f"docker save {image} | docker -H {sandbox.url} load",
                shell=True,
                check=True,
                capture_output=True,
            )
            full = time.perf_counter() - start
            print(
                f"full docker save | docker load: {full:.2f} s; ratio planner/full {deliver / full:.3f} (goal <= 0.2)"
            )

            # Peak memory while streaming the whole image by save | load.
            rules = root / "planner.yaml"
            rules.write_text(rules.read_text() + "    transfer: tarball\n")
            wipe(sandbox.url)
            stream_time, peak = planner(root, env, "apply", "-q")
            print(
                f"tarball delivery of {size / 1e6:.0f} MB: {stream_time:.1f} s, planner peak RSS {peak / 1024:.0f} MB (goal <= 150 MB)"
            )
            rules.write_text(rules.read_text().replace("    transfer: tarball\n", ""))

            # A cold session: a daemon with none of planner's images (the sandbox plays it), a warm registry. It has
            # the base image, as a session that can pull public bases would: a tag-based base resolves to the
            # local image ID in the key, so without it the key differs (see docs/design-notes.md).
            refs = [
                f"{registry.host}/bench/{name}-big:{json.loads(sh([sys.executable, '-m', 'planner', 'plan', '--format', 'json'], env=env, cwd=root))['nodes'][0]['key']}"
            ]
            wipe(sandbox.url)
            rules.write_text(
                rules.read_text().replace("destinations: [local, sandbox]", "destinations: [local]")
            )
            subprocess.run(
                f"docker save {BASE} | docker -H {sandbox.url} load",
                shell=True,
                check=True,
                capture_output=True,
            )
            cold, _ = planner(root, sandbox_env, "apply", "-q")
            wipe(sandbox.url)
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda ref: sh(["docker", "-H", sandbox.url, "pull", "-q", ref]), refs))
            raw = time.perf_counter() - start
            rebuild, _ = planner(root, env, "apply", "-q", "--no-cache")
            print(f"cold session from the warm registry: {cold:.1f} s vs raw docker pull {raw:.1f} s, ratio "
                  f"{cold / raw:.2f} (goal <= 1.2); rebuilding takes {rebuild:.1f} s, {rebuild / cold:.1f}x more "
                  "(goal >= 5x)")  # fmt: skip
        finally:
            for url in (None, sandbox.url):
                prefix = ["docker"] + (["-H", url] if url else [])
                sh([*prefix, "image", "rm", "-f", image], check=False)
            sandbox.stop()
            registry.stop()
            sh(["docker", "image", "rm", "-f", BASE], check=False)


if __name__ == "__main__":
    main()
