"""Which key an artifact's output on disk holds.

A record in the local cache ties the output path to the key it was exported for and to a digest of what was
written; the output counts as current only while both still match (an edited or deleted output is rebuilt).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from planner.errors import PlannerError
from planner.keys.compute import tree_digest
from planner.keys.ignore import PatternMatcher
from planner.keys.statcache import StatCache, hash_file
from planner.keys.walk import walk_context
from planner.localcache import warn
from planner.stack import Node

RECORD_VERSION = 1


def _record_key(node: Node) -> tuple[str, int, str]:
    return ("artifact", RECORD_VERSION, str(node.output_dest))


def output_digest(node: Node) -> str | None:
    """Digest of what is on disk at the artifact's output path, or None when it is missing."""
    dest = node.output_dest
    if dest is None or not os.path.exists(dest):
        return None
    if node.output_type == "tar" or os.path.isfile(dest):
        return "file:" + hash_file(dest)
    entries = walk_context(Path(dest), PatternMatcher())
    return "tree:" + tree_digest(entries, StatCache(None).hashes(dest, entries))


def artifact_current(store: Any, node: Node, key: str) -> bool:
    if store is None:
        return False
    try:
        record = store.get(_record_key(node))
    except Exception as exc:
        warn(f"artifact records unreadable ({exc})")
        return False
    if not isinstance(record, dict) or record.get("key") != key:
        return False
    try:
        return output_digest(node) == record.get("digest")
    except PlannerError:
        return False


def record_artifact(store: Any, node: Node, key: str) -> None:
    if store is not None:
        store.set(_record_key(node), {"key": key, "digest": output_digest(node)})
