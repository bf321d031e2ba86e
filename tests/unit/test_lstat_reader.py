"""The C reader of lstat signatures (planner/_lstat.c) gives, byte for byte, what Python packs for the same
paths: every kind of entry, paths that cannot be read, names that are not UTF-8, times outside what 64 bits
of nanoseconds hold, and any number of threads."""

from __future__ import annotations

import contextlib
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from planner.keys import signatures

C_READER = signatures._reader


def python_packed(paths: list[str]) -> tuple[bytes, int]:
    found = signatures._packed(paths, 0, len(paths))
    return b"".join(sig or signatures._UNREAD for sig in found), sum(1 for sig in found if not sig)


def c_packed(paths: list[str], threads: int) -> tuple[bytes, int]:
    assert C_READER is not None
    return C_READER(os.fsencode("\0".join(paths)), len(paths), threads)


def test_the_reader_is_built_where_a_compiler_is() -> None:
    """An install on a machine with a C compiler builds planner._lstat (setup.py): a build that failed there
    would leave every run on the slower Python reader without a word."""
    compiler = str(sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): planner reads signatures in Python")
    assert C_READER is not None, "planner._lstat was not built: run `pip install -e .` again and read its log"


needs_reader = pytest.mark.skipif(C_READER is None, reason="planner._lstat is not built (no C compiler)")


def entries(tmp_path: Path) -> list[str]:
    """Paths of every kind: files (empty, large and sparse), a folder, symbolic links (to a file, dangling), a
    FIFO, a hard link, a name that is not UTF-8, a missing path, a path through a file, times before 1970 and
    past what 64 bits of nanoseconds hold, and the empty path."""
    (tmp_path / "file").write_text("content")
    (tmp_path / "empty").write_bytes(b"")
    with (tmp_path / "sparse").open("wb") as handle:
        handle.truncate(5 * 2**30)
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to("file")
    (tmp_path / "dangling").symlink_to("nowhere")
    os.mkfifo(tmp_path / "fifo")
    os.link(tmp_path / "file", tmp_path / "hard")
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    with open(raw, "wb") as handle:
        handle.write(b"latin-1 name")
    (tmp_path / "old").write_text("old")
    os.utime(tmp_path / "old", ns=(-(10**9) * 86400 * 365 - 7, -(10**9) * 86400 * 365 - 7))
    (tmp_path / "far").write_text("far")
    far = (2**63 // 10**9 + 1) * 10**9  # past 2262: Python's int has it, the packed signature does not
    with contextlib.suppress(OSError):  # a filesystem that cannot hold it: then it is an ordinary file
        os.utime(tmp_path / "far", ns=(far, far))
    names = ["file", "empty", "sparse", "folder", "link", "dangling", "fifo", "hard", "old", "far"]
    return [
        *(str(tmp_path / name) for name in names),
        os.fsdecode(raw),
        str(tmp_path / "missing"),
        str(tmp_path / "file/below"),
        "",
        str(tmp_path),
        "/",
    ]


@needs_reader
@pytest.mark.parametrize("threads", [1, 2, 3, 16, 100])
def test_the_c_reader_packs_what_python_packs(tmp_path: Path, threads: int) -> None:
    paths = entries(tmp_path)
    python = python_packed(paths)
    assert python[1] >= 3  # missing, through a file, the empty path (and "far" where the filesystem held it)
    assert c_packed(paths, threads) == python


@needs_reader
def test_many_paths_split_between_threads_keep_their_order(tmp_path: Path) -> None:
    """5000 paths in a few folders, some missing, read by 1 to 8 threads: every signature in its path's place."""
    paths = []
    for folder in range(5):
        (tmp_path / f"d{folder}").mkdir()
        for index in range(1000):
            path = tmp_path / f"d{folder}/f{index}"
            if index % 97:
                path.write_bytes(b"x" * index)
            paths.append(str(path))
    python = python_packed(paths)
    assert python[1] == 5 * len(range(0, 1000, 97))
    for threads in (1, 2, 4, 8):
        assert c_packed(paths, threads) == python


@needs_reader
def test_the_c_reader_refuses_a_count_that_does_not_match() -> None:
    """The count guards the split: a path holding a NUL would make more paths than were asked for."""
    assert C_READER is not None
    assert C_READER(b"", 0, 4) == (b"", 0)
    assert C_READER(b"", 1, 4) == (signatures._UNREAD, 1)  # the empty path
    for joined, count in ((b"a\0b", 3), (b"a\0b", 1), (b"a", 0)):
        with pytest.raises(ValueError):
            C_READER(joined, count, 1)
    with pytest.raises(ValueError):
        C_READER(b"", -1, 1)


@needs_reader
def test_a_path_the_c_reader_cannot_take_is_read_in_python(tmp_path: Path) -> None:
    """A list holding a path with a NUL (which no walk makes) is not lost: Python reads it, as it would have."""
    (tmp_path / "file").write_text("x")
    assert signatures._read_all([str(tmp_path / "file"), "bad\0path"], None) is None
    assert signatures._read_all([str(tmp_path / "file")], None) == python_packed([str(tmp_path / "file")])
