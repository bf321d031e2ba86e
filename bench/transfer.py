"""Benchmark (issues 7 and 15): moving a large image into the sandbox daemon, and cold sessions from a warm
registry.

Real parts only: Debian's docker-registry on 127.0.0.1, a second dockerd as the sandbox, the session engine.
The image has LAYERS layers of LAYER_MB random data made by RUN steps, plus a top layer COPY of TOP_MB that the
benchmark changes. Prints, each measured in this run:
- (a) our users' path today: dockerd `docker push` (gzip) + sandbox `docker pull` through the same registry;
- (b) planner's cold delivery into the empty sandbox with `compression: none` (one export read once, streamed
  into the sandbox and pushed uncompressed side by side; the default, gzip, is dockerd's push: (a)); goals
  (b) <= 0.35x (a) and (b) <= 1.5x (c);
- (c) the engine's floor: max(`docker save` to /dev/null, `docker load` of a prepared archive);
- planner's peak RSS while moving the image (goal <= 150 MB);
- one changed top layer into the sandbox: bytes moved vs that layer's size (goal <= 1.2x) and time vs a full
  `docker save | docker load` of the image (goal <= 0.2x);
- a cold session (empty daemon) from the warm registry: planner apply vs raw `docker pull` of the dockerd-pushed
  ref (goal <= 0.6x).
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import sh, timed  # noqa: E402
from tests.integration.services import RegistryProcess, start_dockerd, start_registry  # noqa: E402

BASE = "planner-bench/busybox:1"


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


def real_files(source: Path = Path("/usr/lib")) -> Iterator[Path]:
    """Regular files of this machine's /usr/lib in a fixed order: binaries and libraries, which compress as a
    desktop image's content does (about 2-3x with gzip), unlike random bytes."""
    for folder, subfolders, files in os.walk(source):
        subfolders.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink() and os.access(path, os.R_OK):
                yield path


def fill_layers(app: Path, layers: int, layer_mb: int) -> None:
    """app/l<i>/ for each layer: different real files per layer, about `layer_mb` each (hard links where the
    filesystem allows: nothing is copied)."""
    files = real_files()
    for index in range(layers):
        folder = app / f"l{index}"
        folder.mkdir()
        size = 0
        for count, path in enumerate(files):
            target = folder / f"{count:06d}-{path.name}"
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
            size += target.stat().st_size
            if size >= layer_mb * 1024 * 1024:
                break
        else:
            raise SystemExit(f"/usr/lib holds too little for {layers} layers of {layer_mb} MB")


def project(
    root: Path,
    name: str,
    layers: int,
    layer_mb: int,
    top_mb: int,
    registry: str,
    sandbox: str,
    content: str,
) -> None:
    (root / "app").mkdir(parents=True)
    steps = [f"FROM {BASE}"]
    if content == "files":
        fill_layers(root / "app", layers, layer_mb)
        steps += [f"COPY l{index} /l{index}" for index in range(layers)]
    for index in range(layers if content == "random" else 0):
        # random data (the layer) plus a little work on it
        steps.append(f"RUN dd if=/dev/urandom of=/layer{index} bs=1M count={layer_mb} 2>/dev/null && "
                     f"sha256sum /layer{index} > /layer{index}.sum")  # fmt: skip
    steps.append("COPY top.bin /top.bin")
    (root / "app/Dockerfile").write_text("\n".join(steps) + "\n")
    (root / "app/top.bin").write_bytes(os.urandom(top_mb * 1024 * 1024))
    (root / "compose.yaml").write_text(
        f"name: {name}\nservices:\n  big:\n    build:\n      context: ./app\n      network: none\n"
    )
    (root / "planner.yaml").write_text(
        f"registry:\n  url: {registry}\n  namespace: bench\n  compression: none\n"
        f"destinations:\n  sandbox:\n    host: {sandbox}\n"
        "rules:\n  - match: big\n    destinations: [local, sandbox]\n"
    )


def span(records: list[dict[str, Any]], phases: tuple[str, ...] = ("push", "transfer")) -> float:
    """Wall time from the first of these steps' start to the last one's end (they may run side by side)."""
    ran = [r for r in records if r.get("phase") in phases and r.get("start")]
    if not ran:
        return 0.0
    return float(max(r["start"] + r["duration"] for r in ran) - min(r["start"] for r in ran))


def steps_line(records: list[dict[str, Any]]) -> str:
    """Each push/transfer step as start-end seconds from the first of them, with its bytes."""
    ran = [r for r in records if r.get("phase") in ("push", "transfer") and r.get("start")]
    origin = min((r["start"] for r in ran), default=0.0)
    return ", ".join(
        f"{r['step']} {r['start'] - origin:.1f}-{r['start'] - origin + r['duration']:.1f} s "
        f"{r.get('bytes', 0) / 1e6:.0f} MB {r.get('status', '')}"
        for r in ran
    )


def change_top_layer(
    root: Path, env: dict[str, str], registry: RegistryProcess, top_mb: int, log: Path
) -> tuple[int, float, list[dict[str, Any]]]:
    """Rewrite the top layer's file and apply: bytes the registry gained, the push + delivery span, the log."""
    (root / "app/top.bin").write_bytes(os.urandom(top_mb * 1024 * 1024))
    stored = registry.blob_bytes()
    planner(root, env, "apply", "-q", "--timing-log", str(log))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return registry.blob_bytes() - stored, span(records), records


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


def wipe_image(url: str | None, *refs: str) -> None:
    prefix = ["docker"] + (["-H", url] if url else [])
    sh([*prefix, "image", "rm", "-f", *refs], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mb", type=int, default=200)
    parser.add_argument("--top-mb", type=int, default=20)
    parser.add_argument(
        "--content",
        choices=["files", "random"],
        default="files",
        help="layer content: this machine's /usr/lib files (compress like a desktop image) or random bytes",
    )
    args = parser.parse_args()
    make_base()
    name = f"tb{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="ptb-", dir="/tmp") as tmp:
        tmp_path = Path(tmp)
        registry = start_registry(tmp_path / "reg")
        sandbox = start_dockerd(tmp_path / "sbx")
        root = tmp_path / "p"
        project(root, name, args.layers, args.layer_mb, args.top_mb, registry.host, sandbox.url, args.content)
        env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNER_CACHE_DIR": str(tmp_path / "cache")}
        image = f"{name}-big:latest"
        rules = root / "planner.yaml"
        both, only_local = "destinations: [local, sandbox]", "destinations: [local]"
        pushed_by_dockerd = f"{registry.host}/bench/dockerd-{name}:1"
        try:
            text = rules.read_text()
            rules.write_text(
                text.replace(both, only_local).replace(
                    "  namespace: bench\n", "  namespace: bench\n  share: false\n"
                )
            )
            build_time, _ = planner(root, env, "apply", "-q")
            size = json.loads(sh(["docker", "image", "inspect", image]))[0]["Size"]
            layers = len(json.loads(sh(["docker", "image", "inspect", image]))[0]["RootFS"]["Layers"])
            print(f"image: {size / 1e6:.0f} MB in {layers} layers; build {build_time:.1f} s")

            # (a) dockerd push (gzip) + sandbox pull through the same registry.
            sh(["docker", "tag", image, pushed_by_dockerd])
            push_a = timed(["docker", "push", pushed_by_dockerd], env)
            pull_a = timed(["docker", "-H", sandbox.url, "pull", "-q", pushed_by_dockerd], env)
            a = push_a + pull_a
            print(f"(a) docker push {push_a:.1f} s + sandbox docker pull {pull_a:.1f} s = {a:.1f} s")
            wipe(sandbox.url)

            # (c) the engine's floor.
            save_c = timed(["sh", "-c", f"docker save {image} > /dev/null"], env)
            archive = tmp_path / "image.tar"
            sh(["docker", "save", "-o", str(archive), image])
            load_c = timed(["docker", "-H", sandbox.url, "load", "-q", "-i", str(archive)], env)
            archive.unlink()
            c = max(save_c, load_c)
            print(
                f"(c) floor: docker save > /dev/null {save_c:.1f} s, docker load of an archive {load_c:.1f} s"
            )
            wipe(sandbox.url)
            # (c') what the engine does with a stream: Engine 20.10's load unpacks the whole stream to a temp
            # folder before it registers a layer, so save and load do not overlap as max() assumes
            start = time.perf_counter()
            subprocess.run(f"docker save {image} | docker -H {sandbox.url} load", shell=True, check=True,
                           capture_output=True)  # fmt: skip
            streamed_c = time.perf_counter() - start
            print(f"(c') docker save | sandbox docker load: {streamed_c:.1f} s")
            wipe(sandbox.url)

            # (b) planner's cold delivery into the empty sandbox: its push and the sandbox's pull.
            rules.write_text(text)
            log = tmp_path / "tb.jsonl"
            b_wall, peak = planner(root, env, "apply", "-q", "--timing-log", str(log))
            records = [json.loads(line) for line in log.read_text().splitlines()]
            by_phase = {r["phase"]: r["duration"] for r in records}
            b = span(records)
            print(f"(b) planner: push {by_phase.get('push', 0):.1f} s and transfer {by_phase.get('transfer', 0):.1f} s "
                  f"from one export, side by side: {b:.1f} s (apply wall {b_wall:.1f} s); "
                  f"peak RSS {peak / 1024:.0f} MB (goal <= 150)")  # fmt: skip
            print(f"    steps: {steps_line(records)}")
            print(f"    (b)/(a) = {b / a:.2f} (goal <= 0.35); (b)/(c) = {b / c:.2f} (goal <= 1.5); "
                  f"(b)/(c') = {b / streamed_c:.2f}")  # fmt: skip

            # One changed top layer into the sandbox.
            moved, deliver, records = change_top_layer(
                root, env, registry, args.top_mb, tmp_path / "t1.jsonl"
            )
            streamed = sum(r.get("bytes", 0) for r in records if r["phase"] == "transfer")
            layer_bytes = args.top_mb * 1024 * 1024
            wipe_image(sandbox.url, image)
            start = time.perf_counter()
            subprocess.run(f"docker save {image} | docker -H {sandbox.url} load", shell=True, check=True,
                           capture_output=True)  # fmt: skip
            full = time.perf_counter() - start
            print(f"    steps: {steps_line(records)}")
            print(f"changed top layer ({layer_bytes / 1e6:.1f} MB): pushed {moved / 1e6:.1f} MB (ratio "
                  f"{moved / layer_bytes:.2f}), streamed into the sandbox {streamed / 1e6:.1f} MB (ratio "
                  f"{streamed / layer_bytes:.2f}) (goal <= 1.2); push + delivery {deliver:.2f} s vs full "
                  f"save | load {full:.2f} s, ratio {deliver / full:.2f} (goal <= 0.2)")  # fmt: skip

            # The same with the default codec (gzip: dockerd's push, which skips the layers it pushed before, and
            # the sandbox's pull, which skips the layers it pulled before): a first apply delivers the image
            # through the registry, then one changed top layer.
            wipe(sandbox.url)
            rules.write_text(
                text.replace("  compression: none\n", "").replace("namespace: bench", "namespace: benchgz")
            )
            planner(root, env, "apply", "-q")
            moved, deliver, records = change_top_layer(
                root, env, registry, args.top_mb, tmp_path / "t2.jsonl"
            )
            print(f"    steps: {steps_line(records)}")
            print(f"changed top layer, compression gzip (the default): pushed {moved / 1e6:.1f} MB (ratio "
                  f"{moved / layer_bytes:.2f}); push + pull {deliver:.2f} s vs full save | load {full:.2f} s, "
                  f"ratio {deliver / full:.2f} (goal <= 0.2)")  # fmt: skip

            # A cold session from the warm registry (the sandbox plays the session daemon; it has the base, as a
            # session that pulls public bases would: the key resolves a tagged base through the local daemon),
            # with the default codec: the registry holds dockerd's gzip push of the current key.
            wipe(sandbox.url)
            rules.write_text(rules.read_text().replace(both, only_local))
            subprocess.run(f"docker save {BASE} | docker -H {sandbox.url} load", shell=True, check=True,
                           capture_output=True)  # fmt: skip
            cold, _ = planner(root, {**env, "DOCKER_HOST": sandbox.url, "PLANNER_CACHE_DIR": str(tmp_path / "c2")},
                              "apply", "-q")  # fmt: skip
            print(f"cold session from the warm registry (gzip): {cold:.1f} s vs raw docker pull of the dockerd-pushed ref "
                  f"{pull_a:.1f} s, ratio {cold / pull_a:.2f} (goal <= 0.6)")  # fmt: skip
        finally:
            for url in (None, sandbox.url):
                wipe_image(url, image, pushed_by_dockerd)
            sandbox.stop()
            registry.stop()
            sh(["docker", "image", "rm", "-f", BASE], check=False)
            # the build cache is left to the engine's GC: its records carry nothing that names this bench's


if __name__ == "__main__":
    main()
