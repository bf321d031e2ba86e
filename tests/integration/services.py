"""Real services for integration tests: a Debian `docker-registry` on 127.0.0.1 and a second `dockerd` (the
"sandbox" daemon) with its own data root, exec root, pid file, socket and managed containerd.

Both are started once per test session, in temp folders, and stopped at the end; they end with the test
process even when it is killed (`_spawn`), and what a killed session leaves (bridges, folders, labelled images)
the next session sweeps (`sweep_leftovers`). Whatever keeps one from
starting (a binary or command missing, no permission, a crash) raises RuntimeError with the reason; tests reach
them only through `registry_or_skip` / `dockerd_or_skip` (tests/integration/conftest.py) and the fixtures built
on them, so they skip with that reason (or fail under PLANNER_REQUIRE_DOCKER=1). bench/ calls these directly.

`PLANNER_TEST_REGISTRY_BINARY` names the registry binary instead of `docker-registry` on PATH; a path that is not
an executable file counts as "not installed", e.g. `PLANNER_TEST_REGISTRY_BINARY=/nonexistent` runs the suite as
on a machine without the Debian package.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEST_LABEL = "planner.test"
# This test session's value of TEST_LABEL: cleanup removes only what this session made, never the images and
# containers of another session using the same daemon at the same time (pid, a random part and the host name:
# sessions in other containers may share a pid). `sweep_leftovers` tells by it which session has ended.
TEST_SESSION = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.{socket.gethostname()}"  # as an image tag may hold it
SESSION_LABEL = f"{TEST_LABEL}={TEST_SESSION}"  # as `--label` and Dockerfile `LABEL` take it
REGISTRY_BINARY_ENV = "PLANNER_TEST_REGISTRY_BINARY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout:.0f} s: {last}")


@dataclass
class RegistryProcess:
    host: str  # 127.0.0.1:PORT
    storage: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def blob_bytes(self) -> int:
        """Bytes of all blobs stored so far (what was pushed)."""
        blobs = self.storage / "docker/registry/v2/blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.exists() else 0


def registry_binary() -> str:
    """The registry binary: $PLANNER_TEST_REGISTRY_BINARY, else `docker-registry` on PATH; RuntimeError if none."""
    override = os.environ.get(REGISTRY_BINARY_ENV)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise RuntimeError(
                f"docker-registry is not installed: {REGISTRY_BINARY_ENV}={override} is not executable"
            )
        return override
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed (Debian package docker-registry)")
    return binary


def _spawn(command: list[str], log: Path, what: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a service that ends with this process: `setpriv --pdeathsig` (util-linux) has the kernel send it
    SIGTERM when the thread that started it exits, so a test run that is killed (a CI timeout, kill -9) leaves
    no daemon behind. Services are started from the main thread only (a worker thread's exit would stop them)."""
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        command = [setpriv, "--pdeathsig", "TERM", "--", *command]
    try:
        return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, **kwargs)
    except OSError as exc:
        raise RuntimeError(f"{what} could not be started: {exc}") from None


def start_registry(root: Path, port: int | None = None) -> RegistryProcess:
    binary = registry_binary()
    port = port or free_port()
    storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = root / "registry.log"
    process = _spawn([binary, "serve", str(config)], log, "docker-registry")
    host = f"127.0.0.1:{port}"
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"http://{host}/v2/", timeout=1).status == 200, 20, "registry"
        )
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"registry did not start: {log.read_text()[-2000:]}") from None
    return RegistryProcess(host, storage, process, log)


@dataclass
class DaemonProcess:
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    bridge: str | None = None
    # the same daemon on plain TCP (127.0.0.1), as DOCKER_HOST=tcp://... reaches one
    tcp_url: str | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.bridge is not None:
            remove_bridge(self.bridge)


def host_storage_driver() -> str:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.Driver}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "vfs"
    return out or "vfs"


def _own_bridge() -> tuple[str, str]:
    """A Linux bridge for the sandbox daemon alone, and its address.

    Never `--bridge=none`: a dockerd started so removes any interface named `docker0` in its network namespace
    (moby's removeDefaultBridgeInterface), which breaks every later `RUN` of the host daemon's builds. A bridge
    of its own, made here and removed when the daemon stops, leaves the host's networking alone.
    """
    ip = shutil.which("ip")
    if ip is None:
        raise RuntimeError("the `ip` command (Debian iproute2) is needed to give the sandbox daemon a bridge")
    taken = subprocess.run([ip, "-o", "addr"], capture_output=True, text=True, check=False).stdout
    for index in range(200):
        name = f"{BRIDGE_PREFIX}{os.getpid()}-{index}"  # at most 14 characters (pids < 2**22)
        subnet = f"10.213.{index}."
        if f" {name}:" in taken or f"inet {subnet}" in taken:
            continue
        made = subprocess.run(
            [ip, "link", "add", "name", name, "type", "bridge"], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            if "exists" in made.stderr:
                continue  # taken meanwhile: try the next name
            raise RuntimeError(f"cannot add a bridge for the sandbox daemon: {made.stderr.strip()}")
        for command in ([ip, "addr", "add", f"{subnet}1/24", "dev", name], [ip, "link", "set", name, "up"]):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                remove_bridge(name)
                raise RuntimeError(f"cannot set up the sandbox daemon's bridge: {done.stderr.strip()}")
        return name, f"{subnet}1/24"
    raise RuntimeError("no free bridge name or subnet for the sandbox daemon")


def link_names() -> set[str]:
    """The names of this network namespace's interfaces (`ip -o link`); RuntimeError without `ip`."""
    ip = shutil.which("ip")
    if ip is None:
        raise RuntimeError("the `ip` command (Debian iproute2) is not installed")
    out = subprocess.run([ip, "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


OWNER = "owner.pid"  # in a sandbox daemon's root: the pid of the test process that started it
BRIDGE_PREFIX = "plx"  # + the pid of the test process that made the bridge: `sweep_leftovers` reads it
_LEGACY_BRIDGE = "plsbx"  # the names of earlier versions, which held no whole pid


def remove_bridge(name: str) -> None:
    subprocess.run(["ip", "link", "delete", name, "type", "bridge"], capture_output=True, check=False)


def start_dockerd(root: Path) -> DaemonProcess:
    """A second dockerd that shares nothing with the session daemon but the kernel, on a bridge of its own; it
    listens on a unix socket and on plain TCP on 127.0.0.1."""
    binary = shutil.which("dockerd")
    if binary is None:
        raise RuntimeError("dockerd is not installed")
    bridge, _ = _own_bridge()
    for sub in ("data", "exec"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / OWNER).write_text(f"{os.getpid()}\n")  # whose daemon this is, for `sweep_leftovers`
    config = root / "daemon.json"
    config.write_text(json.dumps({}))  # never read /etc/docker/daemon.json (it pins the host's data-root)
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    tcp_url = f"tcp://127.0.0.1:{free_port()}"
    command = [
        binary, "--config-file", str(config), "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "docker.pid"), "-H", f"unix://{sock}", "-H", tcp_url, "--bridge", bridge,
        "--iptables=false", "--ip-masq=false", "--storage-driver", host_storage_driver(),
        "--containerd-namespace", "planner-sandbox", "--containerd-plugins-namespace", "planner-sandbox-plugins",
    ]  # fmt: skip
    try:
        process = _spawn(command, log, "dockerd", start_new_session=True)
    except RuntimeError:
        remove_bridge(bridge)
        raise
    url = f"unix://{sock}"

    def up() -> bool:
        import docker

        client = docker.APIClient(base_url=url, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    try:
        wait_for(up, 60, "sandbox dockerd")
    except RuntimeError:
        process.kill()
        process.wait()
        remove_bridge(bridge)
        raise RuntimeError(f"second dockerd did not start: {log.read_text()[-3000:]}") from None
    return DaemonProcess(url, root, process, log, bridge, tcp_url)


@contextlib.contextmanager
def temp_root(prefix: str) -> Iterator[Path]:
    """A short temp path (unix socket paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def folder_archive(client: Any, image: str, folder: str) -> bytes:
    """The tar of one folder of an image, read from a container that is created and removed, never run."""
    container = client.api.create_container(image, command=["x"], labels={TEST_LABEL: TEST_SESSION})["Id"]
    try:
        stream, _ = client.api.get_archive(container, folder)
        return b"".join(stream)
    finally:
        client.api.remove_container(container, force=True)


def remove_test_images(url: str | None) -> None:
    """Remove the images and containers this test session labelled (`SESSION_LABEL`) from one daemon; those of
    other sessions on the same daemon stay."""
    import docker

    client = docker.APIClient(base_url=url, timeout=60) if url else docker.from_env().api
    try:
        _remove_labelled(client, SESSION_LABEL, lambda value: True)
    finally:
        client.close()


def _remove_labelled(client: Any, label: str, whose: Callable[[str], bool]) -> list[str]:
    """Remove the containers, then the images, carrying `label` (a name, or name=value) whose value of
    TEST_LABEL `whose` accepts; what was removed."""
    removed: list[str] = []
    for kind, listed, remove in (
        ("container", client.containers(all=True, filters={"label": label}), client.remove_container),
        ("image", client.images(filters={"label": label}), client.remove_image),
    ):
        for found in listed:
            if whose((found.get("Labels") or {}).get(TEST_LABEL, "")):
                with contextlib.suppress(Exception):  # another test may be removing it right now
                    remove(found["Id"], force=True)
                    removed.append(f"{kind} {found['Id'].removeprefix('sha256:')[:12]}")
    return removed


def running(pid: int) -> bool:
    """Whether `pid` runs here (any user's; a zombie has ended, whether or not its parent reaped it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _session_ended(value: str) -> bool:
    """Whether the test session that labelled something `planner.test=value` has ended: one of this host whose
    process is gone, or one of the versions that labelled everything `1`."""
    if value == "1":
        return True
    pid, _, rest = value.partition("-")
    _, dot, host = rest.partition(".")
    return bool(dot) and host == socket.gethostname() and pid.isdigit() and not running(int(pid))


def _bridges_in_use() -> set[str]:
    """The bridges a running process was started with (`--bridge NAME`)."""
    used: set[str] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                words = (entry / "cmdline").read_bytes().split(b"\0")
                used.update(
                    words[at + 1].decode(errors="replace")
                    for at, word in enumerate(words[:-1])
                    if word == b"--bridge"
                )
    return used


def _pid_in(path: Path) -> int:
    """The pid a pid file holds; 0 when there is none."""
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _unmount_below(folder: Path) -> None:
    """Detach what a daemon that did not stop cleanly left mounted under its root (its data root, layers)."""
    prefix = str(folder.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def sweep_leftovers() -> list[str]:
    """Remove what test sessions that were killed left behind, and say what: the images and containers they
    labelled on the host daemon, and their sandbox daemons' bridges and root folders (a daemon itself ends with
    its session: `_spawn`). What a live session made is never touched: a bridge is its maker's while that process lives (an
    old-style name, while a running process names it), an image while its session's process lives."""
    removed: list[str] = []
    with contextlib.suppress(RuntimeError):
        in_use: set[str] | None = None
        for name in sorted(link_names()):
            if name.startswith(BRIDGE_PREFIX):
                pid = name[len(BRIDGE_PREFIX) :].partition("-")[0]
                if not pid.isdigit() or running(int(pid)):
                    continue
            elif name.startswith(_LEGACY_BRIDGE):
                in_use = _bridges_in_use() if in_use is None else in_use
                if name in in_use:
                    continue
            else:
                continue
            remove_bridge(name)
            removed.append(f"bridge {name}")
    for owner in Path(tempfile.gettempdir()).glob(f"*/{OWNER}"):
        if any(pid > 0 and running(pid) for pid in (_pid_in(owner), _pid_in(owner.parent / "docker.pid"))):
            continue  # its session, or its daemon, still runs
        with contextlib.suppress(OSError):
            _unmount_below(owner.parent)
            shutil.rmtree(owner.parent)
            removed.append(f"folder {owner.parent}")
    try:
        import docker

        client = docker.from_env(timeout=60).api
    except Exception:
        return removed  # no daemon: nothing of it to sweep
    try:
        removed += _remove_labelled(client, TEST_LABEL, _session_ended)
    except Exception:
        pass  # a daemon that went away meanwhile: the next session sweeps
    finally:
        client.close()
    return removed


__all__ = ["os"]
