"""The one owner of planner's local cache: where it is, what it holds, and how it fails.

The cache only accelerates (stat records, walk snapshots) and explains (input manifests); the truth lives in the
daemons and the registry. So every read that fails is "not there" and every write that fails is a warning:
deleting or breaking the cache costs time, never correctness. Its namespaces, each versioned in its key:

- `stat`      per context root, path -> (stat signature, content hash)          (keys/statcache.py)
- `tree`      per root and walk set, the walk's results and its witnesses       (keys/snapshot.py)
- `manifest`  per content key, the inputs it was computed from                 (explain, rebuild reasons)
- `files`, `lines`  a manifest's file lines, as runs of paths kept once each      (store.py)
- `artifact`  per artifact output path, the key it was exported for            (observe, apply)
- `shared`    registry refs this machine pushed, pulled or saw in the registry (observe, apply)
- `platform`  per daemon and image ID, the image's platform                     (observe)

Beside the diskcache folder it owns the per-project apply locks (`locks/`), the kept step logs (`logs/`), the
memos (`memo/`, read without this module on the fast path: localcache.py) and the ONBUILD triggers of
digest-pinned bases once seen (`onbuild/DIGEST.json`: plain files, so the input log sees one appear and a memo
made before it is not used).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import xxhash

from planner.base.localcache import default_cache_dir, warn, warn_cache
from planner.base.refs import pinned_digest
from planner.keys.manifest import Manifest, chunk_ranges, split_files
from planner.keys.tree import Lines, Tree

# 3: base refs with secret arg values masked (2 kept them in clear); 4: file lines kept joined; 5: in runs
MANIFEST_VERSION = 5
ARTIFACT_VERSION = 1
SHARED_VERSION = 1
PLATFORM_VERSION = 1
SIZE_LIMIT = 2**30


class Store:
    """The local cache folder; `store.cache` is None when it cannot be used (planner then runs without it)."""

    def __init__(self, directory: Path, cache: Any) -> None:
        self.directory = directory
        self.cache = cache

    @classmethod
    def open(cls, directory: Path) -> Store:
        """Open the cache; a damaged one is recreated, an unusable one left alone and done without (each with
        one warning). Only a folder that is clearly a cache (it holds diskcache's `cache.db`) is ever deleted:
        a user's file or folder that happens to sit at the cache path is never touched."""
        import diskcache

        problem = _unusable(directory)
        if problem:
            warn_cache(str(directory), f"cache directory {directory} {problem}; running without a cache")
            return cls(directory, None)
        try:
            cache = diskcache.Cache(str(directory), size_limit=SIZE_LIMIT)
            cache.get(("probe",))
            return cls(directory, cache)
        except Exception as exc:
            first = exc
        if not (directory / "cache.db").is_file():
            warn_cache(
                str(directory), f"cache directory {directory} is unusable ({first}); running without a cache"
            )
            return cls(directory, None)
        warn_cache(str(directory), f"cache directory {directory} is damaged ({first}); recreating it")
        shutil.rmtree(directory, ignore_errors=True)
        try:
            return cls(directory, diskcache.Cache(str(directory), size_limit=SIZE_LIMIT))
        except Exception as second:
            warn(f"cache directory {directory} cannot be recreated ({second}); running without a cache")
            return cls(directory, None)

    @classmethod
    def for_environ(cls, environ: Mapping[str, str]) -> Store:
        return cls.open(default_cache_dir(dict(environ)))

    @classmethod
    def memory(cls) -> Store:
        """No cache at all (tests, and callers that must not write one)."""
        return cls(Path("/nonexistent-planner-cache"), None)

    # -- raw namespaced access (each namespace's module owns its key and value format) --

    def get(self, key: Hashable, what: str = "cache") -> Any:
        if self.cache is None:
            return None
        try:
            return self.cache.get(key)
        except Exception as exc:  # a damaged sqlite file or pickle: as good as missing
            warn(f"{what} unreadable ({exc})")
            return None

    def set(self, key: Hashable, value: Any, what: str = "cache") -> None:
        if self.cache is None:
            return
        try:
            self.cache.set(key, value)
        except Exception as exc:
            warn(f"{what} not saved ({exc})")

    def __contains__(self, key: Hashable) -> bool:
        if self.cache is None:
            return False
        try:
            return key in self.cache
        except Exception:
            return False

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- input manifests, per key --

    def manifest(self, key: str) -> Manifest | None:
        data = self.get(("manifest", MANIFEST_VERSION, key), "manifest cache")
        if not isinstance(data, dict):
            return None
        runs = self.get(("files", MANIFEST_VERSION, data.pop("files_key", "")), "manifest cache")
        files: dict[str, str] = {}
        try:
            for digest in runs:
                files.update(split_files(*self.get(("lines", MANIFEST_VERSION, digest), "manifest cache")))
            return Manifest(**data, files=files)
        except (TypeError, ValueError):
            return None  # missing, or written by another version: as good as missing

    def put_manifests(self, manifests: Mapping[str, Manifest]) -> None:
        """Keep the manifests of keys not kept yet (one existence check per node). A manifest's file lines are
        kept once per tree they came from, however many nodes share it (repository-root contexts), and as runs
        of paths (`chunk_ranges`), each kept once by its content: the tree after a one-file edit shares every
        run but one with the tree before (a 100k-file tree is 6.7 MB of lines; the run is 140 KB)."""
        stored: set[str] = set()
        for manifest in manifests.values():
            cache_key = ("manifest", MANIFEST_VERSION, manifest.key)
            if cache_key in self:
                continue
            files_key = manifest.files_key()
            if files_key not in stored and ("files", MANIFEST_VERSION, files_key) not in self:
                self._put_runs(files_key, manifest.files)
            stored.add(files_key)
            data = {
                f.name: getattr(manifest, f.name) for f in dataclasses.fields(manifest) if f.name != "files"
            }
            self.set(cache_key, {**data, "files_key": files_key}, "manifests (explain may lack them)")

    def _put_runs(self, files_key: str, files: Mapping[str, str]) -> None:
        if isinstance(files, Tree | Lines):
            paths, lines = files.lists()  # in path order already
        else:
            paths = sorted(files)
            lines = [files[path] for path in paths]
        digests = []
        for lo, hi in chunk_ranges(paths):
            joined = "\0".join(paths[lo:hi]), "\0".join(lines[lo:hi])
            digest = xxhash.xxh3_128_hexdigest("\1".join(joined).encode("utf-8", "surrogateescape"))
            if ("lines", MANIFEST_VERSION, digest) not in self:
                self.set(("lines", MANIFEST_VERSION, digest), joined, "manifests (explain may lack them)")
            digests.append(digest)
        self.set(("files", MANIFEST_VERSION, files_key), digests, "manifests (explain may lack them)")

    # -- artifact records, per output path --

    def artifact_record(self, output: str) -> dict[str, Any] | None:
        record = self.get(("artifact", ARTIFACT_VERSION, output), "artifact records")
        return record if isinstance(record, dict) else None

    def record_artifact(self, output: str, key: str, digest: str | None) -> None:
        self.set(("artifact", ARTIFACT_VERSION, output), {"key": key, "digest": digest}, "artifact record")

    # -- registry refs known to be shared --

    def shared(self, ref: str) -> bool:
        """Whether this machine pushed `ref`, pulled it or saw it in the registry (then a plan need not ask the
        registry again whether a build is shared; a lost record only costs one query)."""
        return self.get(("shared", SHARED_VERSION, ref), "shared refs") is True

    def record_shared(self, ref: str) -> None:
        self.set(("shared", SHARED_VERSION, ref), True, "shared ref")

    # -- image platforms, per daemon and image ID (an image ID names its config: the platform cannot change) --

    def image_platform(self, daemon: str, image_id: str) -> str | None:
        found = self.get(("platform", PLATFORM_VERSION, daemon, image_id), "image platforms")
        return found if isinstance(found, str) else None

    def record_image_platform(self, daemon: str, image_id: str, platform: str) -> None:
        self.set(("platform", PLATFORM_VERSION, daemon, image_id), platform, "image platform")

    # -- ONBUILD triggers of a digest-pinned base (the digest names its content: the triggers cannot change) --

    def _triggers_path(self, ref: str) -> Path | None:
        """Where a base's triggers are kept: only a digest-pinned ref names one content, for good."""
        digest = pinned_digest(ref)
        if digest is None or self.cache is None:
            return None
        return self.directory / "onbuild" / (digest.replace(":", "-") + ".json")

    def base_triggers(self, ref: str) -> list[str] | None:
        """The triggers remembered for a pinned `ref`, None when none are (a ref by tag, an unreadable file)."""
        import json

        from planner.base import inputs

        path = self._triggers_path(ref)
        if path is None or not inputs.is_file(path):
            return None
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return [str(t) for t in found] if isinstance(found, list) else None

    def record_base_triggers(self, ref: str, triggers: list[str]) -> None:
        """Remember the triggers of a pinned `ref` (nothing for a ref by tag: what it names may move)."""
        import json

        path = self._triggers_path(ref)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_text(json.dumps(list(triggers)))
            os.replace(partial, path)
        except OSError as exc:
            warn(f"cannot remember the ONBUILD triggers of {ref} in {path.parent}: {exc.strerror}")

    # -- files beside the cache --

    def lock_path(self, project_dir: str, project: str) -> Path:
        digest = xxhash.xxh3_64_hexdigest(project_dir.encode("utf-8", "surrogateescape"))
        name = f"{project}-{digest}.lock"
        return self.directory / "locks" / name

    def logs_dir(self, project: str) -> Path:
        return self.directory / "logs" / project


def _unusable(directory: Path) -> str:
    """Why `directory` cannot hold the cache ("" when it can, or can be made): something that is not a folder
    at its path or at a parent's, a folder planner may not write (permissions, a read-only mount)."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            return "is a dangling symlink"
        existing = existing.parent
    if not existing.is_dir():
        return "is not a folder" if existing == directory else f"cannot be made: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "is not writable" if existing == directory else f"cannot be made in {existing} (not writable)"
    return ""
