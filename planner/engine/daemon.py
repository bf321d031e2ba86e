"""A Docker daemon through the Engine API (docker-py): which keys it holds, tag, push, pull, save, load.

Presence is judged by the key label on the image, never by a tag or an index digest (the containerd image
store changes those on every rebuild).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from planner.base.errors import RuntimeFailure, exception_text
from planner.base.refs import split_tag
from planner.engine.labels import LABEL_KEY
from planner.engine.observation import KeyedImage

API_VERSION = "1.41"
Progress = Callable[[dict[str, Any]], None]


class DaemonError(RuntimeFailure):
    """A daemon is unreachable or refused an operation."""


class Daemon:
    """One Docker daemon, by name (`local` = the session daemon) and DOCKER_HOST-style URL."""

    def __init__(self, name: str, url: str | None, timeout: int = 600) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self._client: Any = None

    @property
    def api(self) -> Any:
        if self._client is None:
            import docker

            try:
                # A fixed API version saves the negotiation round trip; 1.41 (Engine 20.10) is understood by
                # every supported engine and has all the endpoints planner uses.
                if self.url:
                    self._client = docker.APIClient(
                        base_url=self.url, timeout=self.timeout, version=API_VERSION
                    )
                else:
                    self._client = docker.from_env(timeout=self.timeout, version=API_VERSION).api
            except Exception as exc:
                raise DaemonError(f"unreachable at {self.where}: {exception_text(exc)}") from None
        return self._client

    @property
    def where(self) -> str:
        return self.url or "DOCKER_HOST / default socket"

    def _read(self, path: str, params: dict[str, str] | None = None) -> Any:
        """A read-only Engine API GET through the light client (docker-py only for TLS daemons)."""
        from planner.engine.http import EngineHTTP, supported

        if not supported(self.url):
            from planner.base import inputs

            inputs.note_opaque(f"docker-py for {self.where}")
            return None
        return EngineHTTP(self.url, API_VERSION, self.timeout).get(path, params)

    def keyed_images(self) -> dict[str, KeyedImage]:
        """The newest image carrying each planner key label (one list call)."""
        return {key: images[0] for key, images in self.images_by_key().items()}

    def images_by_key(self) -> dict[str, list[KeyedImage]]:
        """Every image carrying a planner key label, by key, newest first (one list call)."""
        import json

        try:
            listing = self._read("/images/json", {"filters": json.dumps({"label": [LABEL_KEY]})})
            if listing is None:
                listing = self.api.images(filters={"label": LABEL_KEY})
        except DaemonError:
            raise
        except Exception as exc:
            raise DaemonError(f"unreachable at {self.where}: {exception_text(exc)}") from None
        found: dict[str, list[KeyedImage]] = {}
        # newest first, ties by ID: the daemon's order among equal creation times is random
        for image in sorted(listing, key=lambda i: (-int(i.get("Created") or 0), i["Id"])):
            labels = image.get("Labels") or {}
            key = labels.get(LABEL_KEY)
            if key:
                found.setdefault(key, []).append(
                    KeyedImage(
                        image["Id"],
                        key,
                        tuple(image.get("RepoTags") or ()),
                        int(image.get("Created") or 0),
                        labels,
                    ),
                )
        return found

    def platform(self) -> str:
        """The platform this daemon builds and runs by default (`os/arch`, from /version)."""
        try:
            found = self._read("/version")
            if found is None:
                found = self.api.version()
        except Exception as exc:
            raise DaemonError(f"unreachable at {self.where}: {exception_text(exc)}") from None
        return f"{found.get('Os', 'linux')}/{found.get('Arch', '')}"

    def image_platform(self, ref: str) -> str | None:
        """`os/arch[/variant]` of an image, or None when the daemon has no such image."""
        found = self.inspect(ref)
        if found is None:
            return None
        platform = f"{found.get('Os') or 'linux'}/{found.get('Architecture') or ''}"
        return f"{platform}/{found['Variant']}" if found.get("Variant") else platform

    def inspect(self, ref: str) -> dict[str, Any] | None:
        """`docker image inspect`, or None when the daemon has no such image."""
        from urllib.parse import quote

        from planner.engine.http import EngineHTTPError

        try:
            found = self._read(f"/images/{quote(ref, safe='')}/json")
            if found is None:
                import docker.errors

                try:
                    found = self.api.inspect_image(ref)
                except docker.errors.ImageNotFound:
                    return None
        except EngineHTTPError as exc:
            if exc.status == 404:
                return None
            raise DaemonError(f"daemon {self.name}: cannot inspect {ref}: {exc.message}") from None
        except DaemonError:
            raise
        except Exception as exc:
            raise DaemonError(f"daemon {self.name}: cannot inspect {ref}: {exception_text(exc)}") from None
        return dict(found)

    def layers(self, ref: str) -> list[tuple[str, int | None]] | None:
        """The image's layers bottom-up: diffID and size, or None where the history cannot say which entry is
        which layer (the Engine API does not mark empty-layer entries; a layer of size 0 makes it ambiguous).
        None when the daemon has no such image."""
        from urllib.parse import quote

        found = self.inspect(ref)
        if found is None:
            return None
        diffs = [str(d) for d in (found.get("RootFS") or {}).get("Layers") or []]
        try:
            history = self._read(f"/images/{quote(ref, safe='')}/history")
            if history is None:
                history = self.api.history(ref)
        except Exception as exc:
            raise DaemonError(
                f"daemon {self.name}: cannot read the history of {ref}: {exception_text(exc)}"
            ) from None
        sizes = [int(entry.get("Size") or 0) for entry in reversed(list(history))]  # oldest first
        if len(sizes) != len(diffs):
            sizes = [size for size in sizes if size > 0]
        if len(sizes) != len(diffs):
            return [(diff, None) for diff in diffs]
        return [(diff, size) for diff, size in zip(diffs, sizes, strict=True)]

    def layer_sets(self, jobs: int = 8) -> list[list[str]]:
        """The diffIDs (RootFS.Layers) of every image the daemon holds: which layers it has, by chain."""
        from concurrent.futures import ThreadPoolExecutor

        try:
            listing = self._read("/images/json", {"all": "1"})
            if listing is None:
                listing = self.api.images(all=True)
        except Exception as exc:
            raise DaemonError(f"unreachable at {self.where}: {exception_text(exc)}") from None
        ids = sorted({str(image["Id"]) for image in listing})
        if not ids:
            return []
        with ThreadPoolExecutor(max_workers=min(jobs, len(ids))) as pool:
            found = list(pool.map(self.inspect, ids))
        return [list((image.get("RootFS") or {}).get("Layers") or []) for image in found if image is not None]

    def image_id(self, ref: str) -> str | None:
        """The local image ID a reference resolves to, or None."""
        found = self.inspect(ref)
        return str(found["Id"]) if found else None

    def image_key(self, ref: str) -> str | None:
        found = self.inspect(ref)
        labels = ((found or {}).get("Config") or {}).get("Labels") or {}
        key = labels.get(LABEL_KEY)
        return str(key) if key else None

    def tag(self, image: str, ref: str) -> None:
        repository, tag = split_tag(ref)
        try:
            self.api.tag(image, repository, tag or "latest", force=True)
        except Exception as exc:
            raise DaemonError(
                f"daemon {self.name}: cannot tag {image} as {ref}: {exception_text(exc)}"
            ) from None

    def push(self, ref: str, progress: Progress | None = None) -> None:
        repository, tag = split_tag(ref)
        self._stream(self.api.push(repository, tag=tag, stream=True, decode=True), f"push {ref}", progress)

    def pull(self, ref: str, progress: Progress | None = None) -> None:
        repository, tag = split_tag(ref)
        if tag is not None and tag.startswith("@"):
            tag = tag[1:]  # a pinned ref: the engine takes the digest as the tag (`repo:tag@sha256:...` too)
        try:  # the request starts here: a registry that is gone answers before any event streams
            events = self.api.pull(repository, tag=tag, stream=True, decode=True)
        except Exception as exc:
            raise DaemonError(f"daemon {self.name}: pull {ref} failed: {exception_text(exc)}") from None
        self._stream(events, f"pull {ref}", progress)

    def save(self, refs: list[str], chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """`docker save` as a stream of chunks (never held whole)."""
        try:
            response = self.api._get(self.api._url("/images/get"), params={"names": refs}, stream=True)
            self.api._raise_for_status(response)
        except Exception as exc:
            raise DaemonError(
                f"daemon {self.name}: save {', '.join(refs)} failed: {exception_text(exc)}"
            ) from None
        yield from response.iter_content(chunk_size)

    def load(self, chunks: Iterable[bytes], progress: Progress | None = None) -> None:
        """`docker load` from a stream of chunks."""
        try:
            response = self.api._post(
                self.api._url("/images/load"), data=_Chunked(chunks), params={"quiet": False}, stream=True,
                headers={"Content-Type": "application/x-tar"},
            )  # fmt: skip
            self.api._raise_for_status(response)
            self._stream(self.api._stream_helper(response, decode=True), "load", progress)
        except DaemonError:
            raise
        except Exception as exc:
            raise DaemonError(f"daemon {self.name}: load failed: {exception_text(exc)}") from None

    def _stream(self, events: Iterable[dict[str, Any]], what: str, progress: Progress | None) -> None:
        try:
            for event in events:
                if "error" in event or "errorDetail" in event:
                    detail = event.get("errorDetail", {}).get("message") or event.get("error")
                    raise DaemonError(f"daemon {self.name}: {what} failed: {detail}")
                if progress is not None:
                    progress(event)
        except DaemonError:
            raise
        except Exception as exc:
            raise DaemonError(f"daemon {self.name}: {what} failed: {exception_text(exc)}") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def onbuild_triggers(image: Mapping[str, Any]) -> list[str]:
    """An inspected image's ONBUILD triggers (`Config.OnBuild`), as instruction lines."""
    return [str(t) for t in ((image.get("Config") or {}).get("OnBuild") or [])]


class _Chunked:
    """An iterable body that requests sends with chunked transfer encoding."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)
