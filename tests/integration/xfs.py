"""An XFS filesystem made with reflink on a loop-mounted sparse file, for golden data roots (tests and bench/).

`xfs_mount` raises RuntimeError with the reason where it cannot be made (no mkfs.xfs, no loop device, not root);
tests turn that into a skip (a failure under PLANNER_REQUIRE_DOCKER=1). Everything it makes is undone on exit:
the mount, the loop device and the file.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _run(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except OSError as exc:
        raise RuntimeError(f"{what}: {exc}") from None
    if done.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def xfs_mount(size: str = "2G", prefix: str = "pl-xfs-") -> Iterator[Path]:
    if shutil.which("mkfs.xfs") is None:
        raise RuntimeError("mkfs.xfs is not installed (Debian xfsprogs)")
    if shutil.which("losetup") is None:
        raise RuntimeError("losetup is not installed (Debian mount)")
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    image, mount = work / "xfs.img", work / "mnt"
    loop: str | None = None
    mounted = False
    try:
        _run(["truncate", "-s", size, str(image)], "cannot make the XFS image file")
        _run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], "mkfs.xfs with reflink failed")
        loop = _run(["losetup", "-f", "--show", str(image)], "no loop device available")
        mount.mkdir()
        _run(["mount", loop, str(mount)], "cannot mount the XFS loop device")
        mounted = True
        yield mount
    finally:
        if mounted:
            for _ in range(5):  # with what is mounted below (a dockerd bind-mounts its data root onto itself)
                if (
                    subprocess.run(["umount", "-R", str(mount)], capture_output=True, check=False).returncode
                    == 0
                ):
                    break
                time.sleep(1)
        if loop is not None:
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
