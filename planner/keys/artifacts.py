"""Which key an artifact's output on disk holds.

A record in the local cache ties the output path to the key it was exported for and to a digest of what was
written; the output counts as current only while both still match (an edited or deleted output is rebuilt).
"""

from __future__ import annotations

import os
from pathlib import Path

from planner.base.errors import PlannerError
from planner.build.dockerignore import PatternMatcher
from planner.build.stack import Node
from planner.keys.compute import tree_digest
from planner.keys.statcache import StatCache, hash_file
from planner.keys.store import Store
from planner.keys.walk import walk_context


def output_digest(node: Node) -> str | None:
    """Digest of what is on disk at the artifact's output path, or None when it is missing."""
    dest = node.output_dest
    if dest is None or not os.path.exists(dest):
        return None
    if node.output_type == "tar" or os.path.isfile(dest):
        return "file:" + hash_file(dest)
    entries = walk_context(Path(dest), PatternMatcher())
    return "tree:" + tree_digest(entries, StatCache(None).hashes(dest, entries))


def artifact_current(store: Store, node: Node, key: str) -> bool:
    record = store.artifact_record(str(node.output_dest))
    if record is None or record.get("key") != key:
        return False
    try:
        return output_digest(node) == record.get("digest")
    except PlannerError:
        return False


def record_artifact(store: Store, node: Node, key: str) -> None:
    store.record_artifact(str(node.output_dest), key, output_digest(node))
