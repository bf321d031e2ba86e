"""Copy a Docker data root exactly: ownership, modes, xattrs, times, hard links, sparse files, symlinks and device
nodes (overlay whiteouts are character devices 0/0), with file data either reflinked (FICLONE: the filesystem
shares the extents, XFS and btrfs) or copied byte for byte, in parallel.

One walk makes every folder, link and special file in order; regular files' data moves in a thread pool (the
system calls release the GIL); folders get their modes and times last, deepest first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
CHUNK = 8 * 1024 * 1024
DataMode = Literal["reflink", "copy"]


@dataclass
class CopyStats:
    files: int = 0
    folders: int = 0
    others: int = 0  # symlinks, devices, fifos, sockets, hard links
    bytes: int = 0  # logical size of regular files


def can_reflink(source_file: Path, folder: Path) -> bool:
    """Whether a file in the source's filesystem can be cloned into `folder` (same filesystem, FICLONE)."""
    probe = folder / f".planner-reflink-probe-{os.getpid()}"
    try:
        with open(source_file, "rb") as src, open(probe, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _copy_attrs(src: str, dst: str, st: os.stat_result, is_link: bool) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EPERM):
            raise
        names = []
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError as exc:
            if not (is_link and exc.errno == errno.EPERM):  # user.* xattrs cannot sit on a symlink anyway
                raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_data(src: str, dst: str, st: os.stat_result, mode: DataMode) -> None:
    """The file's data (holes kept as holes), then its attributes (after the data: chmod may drop write)."""
    with open(src, "rb", buffering=0) as fin, open(dst, "r+b", buffering=0) as fout:
        if mode == "reflink" and st.st_size:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        else:
            _copy_sparse(fin.fileno(), fout.fileno(), st.st_size)
    _copy_attrs(src, dst, st, False)


def _copy_sparse(fin: int, fout: int, size: int) -> None:
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fin, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                break
            start = offset  # no SEEK_DATA here: copy everything
        try:
            end = os.lseek(fin, start, os.SEEK_HOLE)
        except OSError:
            end = size
        position = start
        while position < end:
            sent = (
                os.sendfile(fout, fin, position, min(CHUNK, end - position)) if _seek(fout, position) else 0
            )
            if sent <= 0:
                break
            position += sent
        offset = end
    os.ftruncate(fout, size)


def _seek(fd: int, position: int) -> bool:
    os.lseek(fd, position, os.SEEK_SET)
    return True


def copy_tree(
    source: Path,
    target: Path,
    mode: DataMode,
    jobs: int = 8,
    progress: Callable[[CopyStats], None] | None = None,
) -> CopyStats:
    """Copy `source` to `target` (which must not exist) exactly; `mode` says how regular files' data moves."""
    stats = CopyStats()
    inodes: dict[tuple[int, int], str] = {}  # (dev, ino) of a file with several links -> its first copy
    folders: list[tuple[str, str, os.stat_result]] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = []

        def walk(src: str, dst: str) -> None:
            st = os.lstat(src)
            os.mkdir(dst, 0o700)
            folders.append((src, dst, st))
            stats.folders += 1
            with os.scandir(src) as entries:
                children = sorted(entries, key=lambda e: e.name)
            for entry in children:
                s, d = entry.path, os.path.join(dst, entry.name)
                est = entry.stat(follow_symlinks=False)
                kind = stat.S_IFMT(est.st_mode)
                if kind == stat.S_IFDIR:
                    walk(s, d)
                    continue
                if est.st_nlink > 1 and kind != stat.S_IFDIR:
                    first = inodes.get((est.st_dev, est.st_ino))
                    if first is not None:
                        os.link(first, d)
                        stats.others += 1
                        continue
                    inodes[(est.st_dev, est.st_ino)] = d
                if kind == stat.S_IFREG:
                    os.close(os.open(d, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                    futures.append(pool.submit(_copy_data, s, d, est, mode))
                    stats.files += 1
                    stats.bytes += est.st_size
                    continue
                if kind == stat.S_IFLNK:
                    os.symlink(os.readlink(s), d)
                else:  # character and block devices, fifos, sockets
                    os.mknod(d, est.st_mode, est.st_rdev)
                _copy_attrs(s, d, est, kind == stat.S_IFLNK)
                stats.others += 1

        walk(str(source), str(target))
        for future in futures:
            future.result()
            if progress is not None:
                progress(stats)
    for src, dst, st in reversed(folders):  # deepest first: a parent's mtime is set after its children
        _copy_attrs(src, dst, st, False)
    return stats
