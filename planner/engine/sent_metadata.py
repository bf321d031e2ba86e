"""The modification time planner tells a builder for each file it sends: one that moves whenever the bytes do.

Why: BuildKit keeps the last transfer of every local source per shared key and asks the sender only for files
whose metadata changed (fsutil's receiver compares mode, owner, size and modification time, never content). A
file whose bytes changed while size and time stayed put (an edit within one timestamp tick, `cp -p`, `rsync
-t`, `tar x`, an artifact exported from an image whose files all carry one time, or a synthetic file planner
made whose time was always 0) is kept from the old transfer, and the image is built from stale bytes under the
new key. So:

- a file whose content digest the key was made from keeps its real second and gets a sub-second part taken
  from that digest (`sent_mtime_ns`): new bytes, new time. Layer tars keep whole seconds only (moby writes no
  sub-second time), so pushed and saved images are byte for byte what `docker build` makes; only a container
  of the building daemon sees the sub-second part;
- a file sent without a digest (an upstream output written during this apply) gets the sub-second part from
  its change time and inode, which every write moves (no tool can set a change time);
- a file planner made itself (a Dockerfile read into memory, an injected one, `dockerfile_inline`, a
  synthetic `.dockerignore`) gets a time taken from its content (`content_mtime_s`, whole seconds for a tar)
  or a fresh one for every send (`fresh_mtime_ns`): the builder then has to read it again, and
  engine/builders.py checks that it did.
"""

from __future__ import annotations

import secrets

import xxhash

from planner.keys.walk import Entry

_NS = 1_000_000_000
# a fresh time lies between 2001 and 2096: any Go time.Time holds it, and it is never an entry's real time 0
_FRESH_LOW, _FRESH_SPAN = 1_000_000_000 * _NS, 3_000_000_000 * _NS


def _sub_second(material: bytes) -> int:
    return xxhash.xxh3_64_intdigest(material) % _NS


def sent_mtime_ns(entry: Entry, digest: str | None) -> int:
    """The time sent for a context file: its real second, and a sub-second part that changes with its bytes
    (from `digest`, the content hash the key used) or, without one, with every write (change time, inode)."""
    if digest is not None:
        material = b"content " + digest.encode()
    else:
        material = f"written {entry.ctime_ns} {entry.inode} {entry.device} {entry.mtime_ns}".encode()
    return entry.mtime_ns - entry.mtime_ns % _NS + _sub_second(material)


def content_mtime_s(data: bytes) -> int:
    """Whole seconds (a tar member's time) taken from a synthetic file's bytes: new bytes, new time."""
    return _FRESH_LOW // _NS + xxhash.xxh3_64_intdigest(data) % (_FRESH_SPAN // _NS)


def fresh_mtime_ns() -> int:
    """A time no earlier send used (2^-60 odds of a repeat): the receiver cannot keep a copy it holds."""
    return _FRESH_LOW + secrets.randbelow(_FRESH_SPAN)
