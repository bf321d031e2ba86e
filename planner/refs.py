"""Image references: splitting `[host/]repo[:tag|@digest]` the way Docker does."""

from __future__ import annotations

_DOCKER_HUB_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/")


def split_tag(ref: str) -> tuple[str, str | None]:
    """`repo[:tag]` → (repo, tag); `repo@digest` → (repo, "@digest"); a `:` in the host is no tag separator."""
    if "@" in ref:
        repository, digest = ref.split("@", 1)
        return repository, "@" + digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, None


def normalize_ref(ref: str) -> tuple[str, str | None]:
    """(repository, tag) with Docker Hub's implicit prefixes dropped, so `docker.io/library/x` equals `x`."""
    for prefix in _DOCKER_HUB_PREFIXES:
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    return split_tag(ref)


def repository_path(image: str) -> str:
    """The repository path of an image name without registry host and tag: `ghcr.io/a/b:1` → `a/b`."""
    repository, _ = normalize_ref(image)
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return repository
