"""A Docker registry through the distribution HTTP API v2: is a content-addressed ref there?

Refs are `<host>/<namespace>/<image repository>:<key>`: the tag is the content key, so two sessions can never
pull each other's different images under one name. Plain HTTP for loopback hosts or `insecure: true`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from planner.base.errors import RuntimeFailure, exception_text
from planner.base.refs import is_loopback_host, repository_path, split_tag
from planner.engine.manifest_probe import MANIFEST_TYPES, REGISTRY_PREFIX, probe_manifest

SCHEMA2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"  # uncompressed: the blob digest is the diffID
UPLOAD_TIMEOUT = (10.0, 600.0)  # connect, read: a streamed blob may take long


class RegistryError(RuntimeFailure):
    """The registry is unreachable or answered with an error."""


def is_loopback(host: str) -> bool:
    return is_loopback_host(host)


class Registry:
    def __init__(
        self,
        host: str,
        namespace: str = "planner",
        insecure: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host.removeprefix("http://").removeprefix("https://").rstrip("/")
        self.namespace = namespace.strip("/")
        scheme = "http" if insecure or is_loopback(self.host) or host.startswith("http://") else "https"
        self.base = f"{scheme}://{self.host}"
        self.auth = (username, password) if username else None
        self.timeout = timeout
        self._session: Any = None

    @property
    def session(self) -> Any:
        from planner.base import inputs

        inputs.note_opaque(f"registry {self.host}")
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.auth = self.auth
        return self._session

    def ref(self, image: str, key: str) -> str:
        """The content-addressed ref of an image with a key."""
        return f"{self.host}/{self.namespace}/{repository_path(image)}:{key}"

    def ref_for(self, ref: str, seen_as: str | None) -> str:
        """The same ref as a daemon that reaches this registry under another host:port writes it."""
        if not seen_as or not ref.startswith(self.host + "/"):
            return ref
        return seen_as.rstrip("/") + ref[len(self.host) :]

    def ping(self) -> None:
        try:
            response = self.session.get(f"{self.base}/v2/", timeout=self.timeout)
        except Exception as exc:
            raise RegistryError(f"unreachable: {exception_text(exc)}") from None
        if response.status_code not in (200, 401):
            raise RegistryError(f"registry {self.host} answered {response.status_code} on /v2/")
        if response.status_code == 401:
            raise RegistryError(f"registry {self.host}: authentication required or refused")

    def has(self, ref: str) -> bool:
        """Whether the manifest of a ref exists (HEAD, nothing downloaded). Without credentials the HEAD goes
        out on a plain connection and is noted for the memo (`probe_manifest`: a no-op run proves the registry
        still holds the same manifests by asking again, in parallel); with them, through the session."""
        name, tag = self._split(ref)
        if self.auth is None:
            target = f"/v2/{name}/manifests/{tag}"
            try:
                status, digest = probe_manifest(self.base, target, self.timeout)
            except OSError as exc:
                raise RegistryError(f"unreachable: {exception_text(exc)}") from None
            from planner.base import inputs

            inputs.note_response(REGISTRY_PREFIX + self.base, target, status, digest.encode())
            if status in (200, 404):
                return status == 200
            if status == 401:
                raise RegistryError(f"registry {self.host}: authentication required or refused")
            raise RegistryError(f"registry {self.host}: HEAD {name}:{tag} answered {status}")
        try:
            response = self.session.head(
                f"{self.base}/v2/{name}/manifests/{tag}",
                headers={"Accept": MANIFEST_TYPES},
                timeout=self.timeout,
            )
        except Exception as exc:
            raise RegistryError(f"unreachable: {exception_text(exc)}") from None
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise RegistryError(f"registry {self.host}: HEAD {name}:{tag} answered {response.status_code}")

    def has_many(self, refs: Iterable[str], jobs: int = 8) -> dict[str, bool]:
        refs = list(dict.fromkeys(refs))
        if not refs:
            return {}
        with ThreadPoolExecutor(max_workers=min(jobs, len(refs))) as pool:
            return dict(zip(refs, pool.map(self.has, refs), strict=True))

    def tags(self, name: str) -> list[str]:
        """Tags of a repository given with its namespace (see `repository`)."""
        response = self.session.get(f"{self.base}/v2/{name}/tags/list", timeout=self.timeout)
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise RegistryError(f"registry {self.host}: tags of {name} answered {response.status_code}")
        return list(response.json().get("tags") or [])

    def repository(self, image: str) -> str:
        return f"{self.namespace}/{repository_path(image)}"

    def manifest(self, name: str, tag: str) -> tuple[str, dict[str, Any]]:
        """(digest, manifest JSON) of `name:tag`."""
        response = self.session.get(
            f"{self.base}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}, timeout=self.timeout
        )
        if response.status_code != 200:
            raise RegistryError(
                f"registry {self.host}: manifest {name}:{tag} answered {response.status_code}"
            )
        return str(response.headers.get("Docker-Content-Digest", "")), dict(response.json())

    def created(self, name: str, tag: str) -> tuple[str, str]:
        """(manifest digest, image creation time from its config) of `name:tag`."""
        digest, manifest = self.manifest(name, tag)
        config = (manifest.get("config") or {}).get("digest")
        if not config:
            return digest, ""
        response = self.session.get(f"{self.base}/v2/{name}/blobs/{config}", timeout=self.timeout)
        if response.status_code != 200:
            return digest, ""
        return digest, str(response.json().get("created") or "")

    def delete_manifest(self, name: str, digest: str) -> None:
        response = self.session.delete(f"{self.base}/v2/{name}/manifests/{digest}", timeout=self.timeout)
        if response.status_code == 405:
            raise RegistryError(
                f"registry {self.host} does not allow deletes (storage.delete.enabled: false)"
            )
        if response.status_code not in (202, 404):
            raise RegistryError(
                f"registry {self.host}: delete {name}@{digest} answered {response.status_code}"
            )

    def blob_size(self, name: str, digest: str) -> int | None:
        """The size of a blob the repository holds (HEAD), or None when it lacks it."""
        try:
            response = self.session.head(f"{self.base}/v2/{name}/blobs/{digest}", timeout=self.timeout)
        except Exception as exc:
            raise RegistryError(f"unreachable: {exception_text(exc)}") from None
        if response.status_code == 200:
            return int(response.headers.get("Content-Length") or 0)
        if response.status_code == 404:
            return None
        raise RegistryError(f"registry {self.host}: HEAD blob {digest[:19]} answered {response.status_code}")

    def blob_sizes(self, name: str, digests: Iterable[str], jobs: int = 8) -> dict[str, int]:
        """Sizes of the blobs among `digests` the repository holds (absent ones are left out)."""
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return {}
        with ThreadPoolExecutor(max_workers=min(jobs, len(wanted))) as pool:
            sizes = list(pool.map(lambda digest: self.blob_size(name, digest), wanted))
        return {digest: size for digest, size in zip(wanted, sizes, strict=True) if size is not None}

    def upload_blob(self, name: str, chunks: Iterable[bytes], expected: str | None = None) -> tuple[str, int]:
        """Upload one blob as it streams in (one PATCH with chunked encoding, never held whole); the closing PUT
        names the digest, which the registry checks against what it received. `expected`: the digest the content
        must have (a layer's diffID), named without hashing here (the registry's check is the proof); else it is
        hashed on the way. Returns (digest, size)."""
        import hashlib

        digest = hashlib.sha256()
        size = [0]

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                if expected is None:
                    digest.update(chunk)
                size[0] += len(chunk)
                yield chunk

        try:
            started = self.session.post(f"{self.base}/v2/{name}/blobs/uploads/", timeout=self.timeout)
            if started.status_code != 202:
                raise RegistryError(f"registry {self.host}: upload to {name} answered {started.status_code}")
            location = self._absolute(started.headers["Location"])
            sent = self.session.patch(
                location, data=hashed(), headers={"Content-Type": "application/octet-stream"},
                timeout=UPLOAD_TIMEOUT,
            )  # fmt: skip
            if sent.status_code != 202:
                raise RegistryError(f"registry {self.host}: blob upload answered {sent.status_code}")
            location = self._absolute(sent.headers["Location"])
            found = expected or f"sha256:{digest.hexdigest()}"
            separator = "&" if "?" in location else "?"
            done = self.session.put(f"{location}{separator}digest={found}", timeout=UPLOAD_TIMEOUT)
            if done.status_code == 400 and expected is not None:
                raise RegistryError(
                    f"registry {self.host}: the uploaded content does not hash to {found[:19]} (the registry "
                    f"refused it: {done.text.strip()[:200]})"
                )
            if done.status_code != 201:
                raise RegistryError(
                    f"registry {self.host}: closing upload of {found[:19]} answered {done.status_code}"
                )
        except RegistryError:
            raise
        except Exception as exc:
            raise RegistryError(f"registry {self.host}: upload failed: {exception_text(exc)}") from None
        return found, size[0]

    def put_manifest(self, name: str, tag: str, body: bytes, media_type: str = SCHEMA2_MANIFEST) -> None:
        try:
            response = self.session.put(
                f"{self.base}/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": media_type},
                timeout=self.timeout,
            )  # fmt: skip
        except Exception as exc:
            raise RegistryError(
                f"registry {self.host}: manifest upload failed: {exception_text(exc)}"
            ) from None
        if response.status_code != 201:
            raise RegistryError(
                f"registry {self.host}: manifest {name}:{tag} answered {response.status_code}: {response.text[:300]}"
            )

    def _absolute(self, location: str) -> str:
        return location if location.startswith(("http://", "https://")) else f"{self.base}{location}"

    def split(self, ref: str) -> tuple[str, str]:
        """(repository name, tag) of one of this registry's refs."""
        return self._split(ref)

    def _split(self, ref: str) -> tuple[str, str]:
        prefix = self.host + "/"
        if not ref.startswith(prefix):
            raise RegistryError(f"{ref} is not a ref of registry {self.host}")
        name, tag = split_tag(ref[len(prefix) :])
        return name, (tag or "latest").lstrip("@")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
