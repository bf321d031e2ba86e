"""fsutil's wire format as planner's BuildKit session writes it, and the walk order fsutil's receiver demands."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from planner.engine.session import (
    GO_MODE_CHAR_DEVICE,
    GO_MODE_DEVICE,
    GO_MODE_DIR,
    GO_MODE_SETGID,
    GO_MODE_SYMLINK,
    PACKET_DATA,
    PACKET_FIN,
    PACKET_REQ,
    PACKET_STAT,
    Packet,
    Stat,
    context_source,
    entry_stat,
    fsutil_order,
)
from planner.keys.walk import Entry

int64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
uint32 = st.integers(min_value=0, max_value=(1 << 32) - 1)
stats = st.builds(
    Stat,
    path=st.binary(max_size=40),
    mode=uint32,
    uid=uint32,
    gid=uint32,
    size=int64,
    mod_time=int64,
    linkname=st.binary(max_size=20),
    devmajor=int64,
    devminor=int64,
)


@given(stats)
def test_stat_round_trip(stat: Stat) -> None:
    assert Stat.decode(stat.encode()) == stat


@given(
    st.sampled_from([PACKET_STAT, PACKET_REQ, PACKET_DATA, PACKET_FIN]),
    st.none() | stats,
    uint32,
    st.binary(),
)
def test_packet_round_trip(kind: int, stat: Stat | None, ident: int, data: bytes) -> None:
    packet = Packet(kind, stat, ident, data)
    assert Packet.decode(packet.encode()) == packet


def test_known_bytes() -> None:
    """Bytes as gogo-protobuf writes them for fsutil.types.Packet/Stat (fields 1 type, 2 stat, 3 ID, 4 data)."""
    assert Packet(PACKET_STAT).encode() == b""  # the end of the listing: an empty message
    assert Packet(PACKET_REQ, id=5).encode() == b"\x08\x01\x18\x05"
    assert Packet(PACKET_DATA, id=1, data=b"hi").encode() == b"\x08\x02\x18\x01\x22\x02hi"
    stat = Stat(path=b"a", mode=GO_MODE_DIR | 0o755, mod_time=-1)
    encoded = Packet(PACKET_STAT, stat=stat).encode()
    assert encoded.startswith(b"\x12")  # field 2, length-delimited, no type (0 is the default)
    assert b"\x30" + b"\xff" * 9 + b"\x01" in encoded  # modTime -1: a ten-byte varint


def test_modes_are_go_file_modes() -> None:
    assert entry_stat(Entry("d", "d", 0o2755)).mode == GO_MODE_DIR | GO_MODE_SETGID | 0o755
    assert entry_stat(Entry("f", "f", 0o644, size=3)).mode == 0o644
    link = entry_stat(Entry("l", "l", 0o777, target="f"))
    assert (link.mode, link.linkname) == (GO_MODE_SYMLINK | 0o777, b"f")
    device = entry_stat(Entry("c", "c", 0o600, target="1:3"))
    assert (device.mode, device.devmajor, device.devminor) == (
        GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o600,
        1,
        3,
    )
    folder = entry_stat(Entry("d", "d", 0o755, mtime_ns=1_700_000_000_123_456_789))
    assert folder.mod_time == 1_700_000_000_123_456_789  # only a regular file's time is made (sent_metadata)
    sent = entry_stat(Entry("f", "f", 0o644, size=3, mtime_ns=1_700_000_000_123_456_789), "ab" * 16)
    assert sent.mod_time // 1_000_000_000 == 1_700_000_000


def test_walk_order_is_fsutils(tmp_path: Path) -> None:
    """Folders before their children, siblings by bytes, depth first: `a`, `a/b`, `a.txt` (fsutil's Validator
    rejects `a.txt` before `a/b`). A non-UTF-8 name sorts by its bytes."""
    paths = ["a.txt", "a/b", "a", "B", "a-b", "a/b/c", "\udcff", "z"]
    assert sorted(paths, key=fsutil_order) == ["B", "a", "a/b", "a/b/c", "a-b", "a.txt", "z", "\udcff"]
    entries = [Entry(p, "d" if p in ("a", "a/b") else "f", 0o755, size=0) for p in paths if p != "\udcff"]
    source = context_source(str(tmp_path), entries, {})
    sent = [os.fsdecode(e.stat.path) for e in source.entries]
    assert sent == ["B", "a", "a/b", "a/b/c", "a-b", "a.txt", "z"]
    assert [e.read is not None for e in source.entries] == [True, False, False, True, True, True, True]


def test_followpaths_selects_the_path_and_its_folders(tmp_path: Path) -> None:
    entries = [
        Entry("a", "d", 0o755),
        Entry("a/.dockerignore", "f", 0o644),
        Entry(".dockerignore", "f", 0o644),
    ]
    source = context_source(str(tmp_path), entries, {})
    chosen = source.select([".dockerignore"], [])
    assert [e.stat.path for e in chosen] == [b".dockerignore"]
    assert [e.stat.path for e in source.select(["a/.dockerignore"], [])] == [b"a", b"a/.dockerignore"]
    assert len(source.select([], [])) == 3
