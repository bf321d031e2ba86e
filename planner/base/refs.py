"""Image references: splitting `[host/]repo[:tag|@digest]` the way Docker does."""

from __future__ import annotations

import re

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


def pinned_digest(ref: str) -> str | None:
    """The content digest a ref is pinned to (`name[:tag]@sha256:...`), None for a ref by tag only."""
    _, at, digest = ref.partition("@")
    return digest if at and digest.startswith("sha256:") else None


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


# distribution/reference's grammar (regexp.go), as the Docker daemon checks a build's tags.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII
)
_HEX64 = re.compile(r"[a-f0-9]{64}", re.ASCII)
_NAME_MAX = 255


def image_name_problem(ref: str, *, for_build: bool = True) -> str | None:
    """Why Docker refuses `ref` as an image name (reference.ParseNormalizedNamed), or None when it takes it.

    As Docker reads it: a first component with a `.` or `:`, `localhost`, or any uppercase letter is a registry
    host (so `Foo/bar` is valid, `foo/Bar` is not); the rest is lowercase path components joined by `/` and
    separated inside by `.`, `_`, `__` or dashes; an optional `:tag` (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) and
    `@digest`. A build cannot tag a digest reference (`for_build`)."""
    if not ref:
        return "an image name must not be empty"
    if _HEX64.fullmatch(ref):
        return "an image name cannot be a 64-character hexadecimal string (that is an image ID)"
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        remainder = rest
    else:
        remainder = ref
    repository = remainder.split("@", 1)[0]
    if ":" in repository:
        repository = repository.rsplit(":", 1)[0]
    if repository.lower() != repository:
        return f"repository name {repository!r} must be lowercase"
    match = _REFERENCE.fullmatch(ref)
    if match is None:
        return (
            "invalid reference format (Docker takes lowercase [a-z0-9] parts joined by . _ __ - or /, "
            "an optional host[:port]/ before, :tag or @digest after)"
        )
    if len(match.group(1)) > _NAME_MAX:
        return f"repository name must not be longer than {_NAME_MAX} characters"
    if for_build and match.group(3) is not None:
        return "a build's image name cannot contain a digest"
    return None


_REGISTRY_HOST = re.compile(rf"(?:https?://)?{_DOMAIN}/?", re.ASCII)
_NAMESPACE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)


def registry_host_problem(value: str) -> str | None:
    """Why `value` is no registry `host[:port]` (an `http://` / `https://` prefix allowed), or None."""
    if _REGISTRY_HOST.fullmatch(value):
        return None
    return f"{value!r} is not a registry host[:port] (e.g. 127.0.0.1:5000, registry.example.com)"


def namespace_problem(value: str) -> str | None:
    """Why `value` cannot prefix repository names (lowercase path components), or None."""
    if _NAMESPACE.fullmatch(value.strip("/")):
        return None
    return f"{value!r} is not a repository path (lowercase letters, digits, . _ __ - between them, / between parts)"


def is_loopback_host(host: str) -> bool:
    """Whether a registry `host[:port]` (optionally with a scheme) is on this machine's loopback."""
    import ipaddress

    host = host.removeprefix("http://").removeprefix("https://").rstrip("/")
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
