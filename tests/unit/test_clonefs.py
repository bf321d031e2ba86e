"""The copy a golden clone makes (`--method copy`, and promote without reflinks) keeps what a Docker data root
holds exactly: ownership, modes (setuid, sticky, read-only), xattrs (user.* and overlayfs's trusted.*), times,
hard links (also across folders and of a symlink), sparse files (holes stay holes), symlinks, and device nodes
(overlay whiteouts are character devices 0/0), fifos and sockets."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from planner.engine.clonefs import copy_tree

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="owners, device nodes and trusted.* xattrs need root (as a Docker data root does)",
)
MB = 1024 * 1024


def _tree(root: Path) -> None:
    """A small data root with every kind of entry the copy must keep."""
    (root / "layers/a/diff/etc").mkdir(parents=True)
    (root / "layers/b/diff").mkdir(parents=True)
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    config = root / "layers/a/diff/etc/config"
    config.write_text("owned by someone else\n")
    os.chown(config, 1234, 5678)
    os.chmod(config, 0o640)
    tool = root / "layers/a/diff/tool"
    tool.write_bytes(b"\x7fELF" + os.urandom(1000))
    os.chown(tool, 1234, 5678)
    os.chmod(tool, 0o4755)  # setuid, set after the chown (which clears it)
    frozen = root / "layers/a/diff/frozen"
    frozen.write_text("read only\n")
    os.chmod(frozen, 0o444)
    os.setxattr(config, "user.planner.test", b"kept")
    os.setxattr(root / "layers/a/diff/etc", "trusted.overlay.opaque", b"y")  # an opaque folder
    os.link(tool, root / "layers/a/diff/tool-again")
    os.link(tool, root / "layers/b/diff/tool-elsewhere")  # a hard link across folders
    os.symlink("../missing/target", root / "layers/b/diff/dangling")
    os.chown(root / "layers/b/diff/dangling", 1234, 5678, follow_symlinks=False)
    os.link(root / "layers/b/diff/dangling", root / "layers/b/diff/dangling-again", follow_symlinks=False)
    with open(root / "layers/b/diff/sparse", "wb") as out:  # hole, 1 MB of data, hole (also at the end)
        out.seek(8 * MB)
        out.write(os.urandom(MB))
        out.truncate(32 * MB)
    os.mknod(root / "layers/b/diff/whiteout", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.mknod(root / "layers/b/diff/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "layers/b/diff/loop", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chown(root / "layers/b/diff/loop", 0, 6)
    os.mkfifo(root / "layers/b/diff/fifo", 0o600)
    os.mknod(root / "layers/b/diff/socket", stat.S_IFSOCK | 0o755)
    (root / "layers/b/diff/empty").touch()
    os.chmod(root / "layers/b", 0o710)
    os.chown(root / "layers/b", 1234, 5678)
    for n, path in enumerate(sorted(root.rglob("*"), key=lambda p: -len(p.parts))):  # times, folders last
        os.utime(
            path, ns=(1_600_000_000_000_000_000 + n, 1_500_000_000_000_000_000 + n), follow_symlinks=False
        )
    os.utime(root, ns=(1_600_000_000_000_000_000, 1_400_000_000_000_000_000))


def _entries(root: Path) -> dict[str, dict[str, Any]]:
    """Everything a copy must keep, per relative path; hard links as the group of names sharing an inode."""
    found: dict[str, dict[str, Any]] = {}
    inodes: dict[int, list[str]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = os.lstat(path)
        name = str(path.relative_to(root))
        inodes.setdefault(st.st_ino, []).append(name)
        kind = stat.S_IFMT(st.st_mode)
        entry: dict[str, Any] = {
            "kind": kind, "mode": stat.S_IMODE(st.st_mode), "owner": (st.st_uid, st.st_gid),
            "mtime": st.st_mtime_ns, "nlink": st.st_nlink,
            "xattrs": {x: os.getxattr(path, x, follow_symlinks=False)
                       for x in os.listxattr(path, follow_symlinks=False)},
        }  # fmt: skip
        if kind == stat.S_IFREG:
            entry["size"] = st.st_size
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif kind == stat.S_IFLNK:
            entry["target"] = os.readlink(path)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            entry["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
        found[name] = entry
    for names in inodes.values():
        for name in names:
            found[name]["links"] = sorted(names)
    return found


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_copy_keeps_owners_modes_xattrs_hard_links_holes_and_device_nodes(
    tmp_path: Path, jobs: int
) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    _tree(source)
    sparse = os.lstat(source / "layers/b/diff/sparse")
    if sparse.st_blocks * 512 >= 4 * MB:
        pytest.skip(f"{tmp_path} keeps no holes: nothing to compare")
    stats = copy_tree(source, target, "copy", jobs)

    before, after = _entries(source), _entries(target)
    assert after.keys() == before.keys()
    for name, entry in before.items():
        assert after[name] == entry, name
    copied = os.lstat(target / "layers/b/diff/sparse")
    assert copied.st_blocks <= sparse.st_blocks + 8  # the holes stay holes (give or take a block of metadata)
    assert after["layers/b/diff/whiteout"]["rdev"] == (0, 0)
    assert after["layers/a/diff/tool"]["links"] == [
        "layers/a/diff/tool", "layers/a/diff/tool-again", "layers/b/diff/tool-elsewhere",
    ]  # fmt: skip
    files = {tuple(e["links"]): e["size"] for e in before.values() if e["kind"] == stat.S_IFREG}
    assert stats.bytes == sum(files.values())  # a hard-linked file's data is copied once
