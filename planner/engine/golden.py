"""A golden Docker data root on disk: versions, their manifests, the `current` switch, and the clones made of them.

```
GOLDEN/
  current -> versions/<id>          symlink, replaced atomically (rename of a new symlink over it)
  versions/<id>/data/               the data root as promoted
  versions/<id>/manifest.json       planner version, source, created, storage driver, every image (names, ID, key)
  versions/<id>/clones/<hash>.json  one per clone made of this version: {"path": DATA_ROOT} (while it is being
                                    made also "pid" and "started", the cloning process's start time)
```
A clone's data root holds `.planner-golden.json` naming its golden and version: a version is in use while a clone
registered with it still exists and still names it. A version is built as `versions/.partial-<id>` and renamed
into place, a clone as `.<name>.golden-partial-<pid>` beside its DATA_ROOT: nothing half made is ever in place.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from planner import __version__
from planner.base.errors import InputError, RuntimeFailure
from planner.engine.clonefs import CopyStats, can_reflink, copy_tree
from planner.engine.dataroot import StoredImage, read_images, storage_driver, user_of

Method = Literal["reflink", "overlay", "copy"]
MARKER = ".planner-golden.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class GoldenVersion:
    golden: Path
    id: str
    manifest: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.golden / "versions" / self.id

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def created(self) -> str:
        return str(self.manifest.get("created", ""))

    @property
    def driver(self) -> str:
        return str(self.manifest.get("storage_driver", ""))

    def images(self) -> list[StoredImage]:
        return [
            StoredImage(
                i["id"],
                tuple(i.get("names") or ()),
                i.get("key"),
                i.get("node"),
                i.get("project"),
                i.get("created", ""),
                i.get("platform", ""),
            )
            for i in self.manifest.get("images", [])
        ]


def read_version(golden: Path, version: str) -> GoldenVersion:
    path = golden / "versions" / version / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a golden version's manifest: {exc}") from None
    return GoldenVersion(golden, version, manifest)


def current(golden: Path) -> GoldenVersion:
    """The version GOLDEN/current points at."""
    link = golden / "current"
    try:
        target = os.readlink(link)
    except OSError:
        raise InputError(
            f"{golden} is not a golden data root (no {link}): run `planner golden promote` first"
        ) from None
    return read_version(golden, Path(target).name)


def versions(golden: Path) -> list[str]:
    folder = golden / "versions"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def _new_id() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def pick_method(source: Path, target_parent: Path, wanted: str, driver: str) -> Method:
    """`auto`: reflink where the filesystem clones files, else overlay where the storage driver runs on
    overlayfs (fuse-overlayfs, vfs; measured: kernel overlay2 cannot), else a copy. An explicit method that cannot
    work here is bad input."""
    probe = _probe_file(source)
    reflink = probe is not None and can_reflink(probe, target_parent)
    if wanted == "auto":
        if reflink:
            return "reflink"
        return "overlay" if overlay_unusable(driver) is None and _overlay_mountable(target_parent) else "copy"
    if wanted == "reflink" and not reflink:
        raise InputError(
            f"--method reflink: {target_parent} cannot share extents with {source} (reflinks need one XFS or "
            "btrfs filesystem holding both)"
        )
    if wanted == "overlay":
        reason = overlay_unusable(driver)
        if reason:
            raise InputError(f"--method overlay: {reason}")
    return wanted  # type: ignore[return-value]


def _overlay_mountable(folder: Path) -> bool:
    """Whether this process can mount overlayfs (with redirect_dir and metacopy) in `folder`."""
    probe = folder / f".planner-overlay-probe-{os.getpid()}"
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (probe / sub).mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", _overlay_options(probe / "lower",
            probe / "upper", probe / "work"), str(probe / "merged")], capture_output=True, check=False)  # fmt: skip
        if done.returncode != 0:
            return False
        subprocess.run(["umount", str(probe / "merged")], capture_output=True, check=False)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _overlay_options(lower: Path, upper: Path, work: Path) -> str:
    # redirect_dir: dockerd renames folders of the data root at start (runtimes, tmp); without it overlayfs
    # answers EXDEV and the daemon does not start. metacopy: chown/chmod copy up metadata only.
    return f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=on,metacopy=on"


def _probe_file(folder: Path) -> Path | None:
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                return path
    return None


def overlay_unusable(driver: str) -> str | None:
    """Why an overlayfs mount of the golden cannot carry a daemon with `driver` (None: it can). The kernel's
    overlay2 does not run on overlayfs (it does not nest); fuse-overlayfs does (measured: a dockerd 20.10 with
    fuse-overlayfs starts on such a mount, lists the golden's images and runs containers), and so does vfs."""
    if driver in ("overlay2", "overlay"):
        return f"the golden's storage driver {driver} cannot run on overlayfs (overlay does not nest)"
    return None


def process_start(pid: int) -> str | None:
    """When process `pid` started (field 22 of /proc/PID/stat, clock ticks since boot), None if it does not
    exist. With the pid it names one process: a pid reused by a later process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None  # fields[0] is field 3 (state)


def _cloning(registered: dict[str, Any]) -> bool:
    """Whether the process that registered a clone is still making it: its pid lives and, where the start time
    was recorded, is the same process (a SIGKILLed cloner's pid reused by another is not)."""
    pid = registered.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = process_start(pid)
    if started is None:
        return False
    return registered.get("started") in (None, started)


def _partial_beside(target: Path) -> Path:
    return target.parent / f".{target.name}.golden-partial-{os.getpid()}"


def _remove_stale_partials(target: Path) -> None:
    """Partial clones left by a killed run (its pid gone) are removed before a new one starts."""
    for path in target.parent.glob(f".{target.name}.golden-partial-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove(path)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        if os.path.ismount(path):  # an overlay clone: its mount, then its upper and work folders
            subprocess.run(["umount", str(path)], capture_output=True, check=False)
            shutil.rmtree(path.parent / f"{path.name}.overlay", ignore_errors=True)
        shutil.rmtree(path)


@contextlib.contextmanager
def _building(partial: Path) -> Iterator[Path]:
    """`partial` while it is made; removed on any failure or interruption."""
    try:
        yield partial
    except BaseException:
        _remove(partial)
        raise


@dataclass
class Made:
    version: GoldenVersion | None
    method: Method
    seconds: float
    stats: CopyStats


def _materialise(source: Path, target: Path, method: Method, jobs: int) -> CopyStats:
    if method == "overlay":
        return _overlay(source, target)
    return copy_tree(source, target, "reflink" if method == "reflink" else "copy", jobs)


def _overlay(lower: Path, target: Path) -> CopyStats:
    """An overlayfs mount of `lower` at `target`; its upper and work folders sit in `<target>.overlay/`."""
    state = target.parent / f"{target.name}.overlay"
    for sub in ("upper", "work"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    target.mkdir(exist_ok=True)
    options = _overlay_options(lower, state / "upper", state / "work")
    done = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        raise RuntimeFailure(f"cannot mount overlayfs at {target}: {done.stderr.strip()}")
    return CopyStats()


def promote(
    data_root: Path, golden: Path, jobs: int = 8, inputs: Callable[[list[str]], dict[str, Any]] | None = None
) -> Made:
    """A new version of GOLDEN from a stopped daemon's data root, then GOLDEN/current switched to it. `inputs`
    gives the input manifests of the images' keys, kept with the version (so `golden status` can name the
    changed inputs on any machine)."""
    data_root = data_root.resolve()
    if not data_root.is_dir():
        raise InputError(f"DATA_ROOT {data_root} is not a folder")
    if reason := user_of(data_root):
        raise InputError(f"DATA_ROOT {data_root} is in use: {reason}; stop the daemon first")
    driver, images = read_images(data_root)
    (golden / "versions").mkdir(parents=True, exist_ok=True)
    golden = golden.resolve()
    version = _new_id()
    partial = golden / "versions" / f".partial-{version}"
    # a version is a copy of its own: never an overlay over the source data root, which its session goes on
    # changing (or deletes) after the promote
    method: Method = (
        "reflink" if pick_method(data_root, golden / "versions", "auto", driver) == "reflink" else "copy"
    )
    started = time.monotonic()
    with _building(partial):
        partial.mkdir()
        stats = _materialise(data_root, partial / "data", method, jobs)
        (partial / "clones").mkdir()
        seconds = time.monotonic() - started
        manifest = {
            "format": MANIFEST_FORMAT,
            "planner_version": __version__,
            "version": version,
            "source": str(data_root),
            "created": _now(),
            "storage_driver": driver,
            "method": method,
            "seconds": round(seconds, 3),
            "files": stats.files,
            "bytes": stats.bytes,
            "images": [i.as_json() for i in images],
            "inputs": inputs(sorted({i.key for i in images if i.key})) if inputs is not None else {},
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        os.rename(partial, golden / "versions" / version)
    _switch(golden, version)
    return Made(GoldenVersion(golden, version, manifest), method, seconds, stats)


def _switch(golden: Path, version: str) -> None:
    link = golden / f".current-{secrets.token_hex(4)}"
    os.symlink(f"versions/{version}", link)
    os.replace(link, golden / "current")


def clone(golden: Path, data_root: Path, method: str = "auto", jobs: int = 8) -> Made:
    """GOLDEN's current version materialised at DATA_ROOT (made beside, then renamed into place)."""
    golden = golden.resolve()
    version = current(golden)
    data_root = Path(os.path.abspath(data_root))
    if data_root.exists() and (not data_root.is_dir() or any(data_root.iterdir())):
        raise InputError(f"DATA_ROOT {data_root} already exists and is not an empty folder")
    data_root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(data_root)
    chosen = pick_method(
        version.data, data_root.parent, method, version.driver or storage_driver(version.data)
    )
    # registered first: a prune running meanwhile sees the version in use (by this live process, its pid and
    # start time, until it is made)
    registration = (
        version.path / "clones" / f"{hashlib.sha256(str(data_root).encode()).hexdigest()[:16]}.json"
    )
    registration.parent.mkdir(exist_ok=True)
    cloner = {"pid": os.getpid(), "started": process_start(os.getpid())}
    registration.write_text(json.dumps({"path": str(data_root), **cloner}) + "\n")
    marker = json.dumps({"golden": str(golden), "version": version.id, "method": chosen, "created": _now()})
    started = time.monotonic()
    try:
        if chosen == "overlay":
            stats = _overlay(version.data, data_root)  # a mount appears whole: nothing to rename
            with _building(data_root):  # a failure from here on unmounts and removes it
                (data_root / MARKER).write_text(marker + "\n")
        else:
            partial = _partial_beside(data_root)
            with _building(partial):
                stats = _materialise(version.data, partial, chosen, jobs)
                (partial / MARKER).write_text(marker + "\n")
                if data_root.exists():
                    data_root.rmdir()
                os.rename(partial, data_root)
    except BaseException:
        registration.unlink(missing_ok=True)  # no clone: the version is not in use by it
        raise
    # made: from now on its marker says whether it uses the version (the pid, which may live on or be reused
    # by another process, no longer does)
    registration.write_text(json.dumps({"path": str(data_root)}) + "\n")
    return Made(version, chosen, time.monotonic() - started, stats)


def clones_of(version: GoldenVersion) -> list[Path]:
    """The clones of `version` that still exist and still name it (a data root removed or re-cloned frees it)."""
    live = []
    for entry in sorted((version.path / "clones").glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            registered = json.loads(entry.read_text())
            path = Path(registered["path"])
            if _cloning(registered):
                live.append(path)  # being cloned right now (into a new folder or an empty one)
                continue
            marker = json.loads((path / MARKER).read_text())
            if marker.get("version") == version.id and Path(marker.get("golden", "")) == version.golden:
                live.append(path)
    return live


@dataclass
class Pruned:
    removed: list[str]
    kept: list[str]
    in_use: dict[str, list[str]]  # version -> clones holding it


def prune(golden: Path, keep: int) -> Pruned:
    """Remove versions other than the current one and the `keep` newest, except versions clones still use."""
    if keep < 0:
        raise InputError("--keep must be 0 or more")
    golden = golden.resolve()
    now = current(golden).id
    every = versions(golden)
    newest = set(sorted(every, reverse=True)[:keep]) | {now}
    removed, kept, in_use = [], [], {}
    for version in every:
        users = clones_of(read_version(golden, version)) if version not in newest else []
        if version in newest or users:
            kept.append(version)
            if users:
                in_use[version] = [str(u) for u in users]
            continue
        doomed = golden / "versions" / f".removing-{version}"
        os.rename(golden / "versions" / version, doomed)  # gone from the listing at once
        shutil.rmtree(doomed)
        removed.append(version)
    return Pruned(removed, kept, in_use)
