"""Input manifests per key, kept in the local cache for `planner explain` and for the reasons of a rebuild.

Only an accelerator of understanding: a missing manifest (built on another machine, cache deleted) makes
explain say so plainly; it never changes a decision.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from planner.keys.compute import Manifest
from planner.localcache import warn

MANIFEST_VERSION = 1


class ManifestStore:
    def __init__(self, store: Any) -> None:
        self.store = store

    def _key(self, key: str) -> tuple[str, int, str]:
        return ("manifest", MANIFEST_VERSION, key)

    def get(self, key: str) -> Manifest | None:
        if self.store is None:
            return None
        try:
            data = self.store.get(self._key(key))
        except Exception as exc:
            warn(f"manifest cache unreadable ({exc})")
            return None
        if not isinstance(data, dict):
            return None
        try:
            return Manifest(**data)
        except TypeError:
            return None  # written by another version: as good as missing

    def put_all(self, manifests: dict[str, Manifest]) -> None:
        """Store the manifests of keys not stored yet (one existence check per node)."""
        if self.store is None:
            return
        try:
            for manifest in manifests.values():
                cache_key = self._key(manifest.key)
                if cache_key not in self.store:
                    self.store.set(cache_key, dataclasses.asdict(manifest))
        except Exception as exc:
            warn(f"manifests not saved ({exc}); explain may lack them")
