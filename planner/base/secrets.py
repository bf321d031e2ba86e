"""Secrets in a build's inputs: secret-looking build args, and the credentials of a remote context URL
(`https://TOKEN@github.com/org/repo.git`, as Compose accepts it). Their values never appear in any output
(config, plan, explain, logs) nor in what the cache keeps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

MASK = "******"
DEFAULT_SECRET_PATTERNS = (
    "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*PASSPHRASE*", "*API_KEY*", "*APIKEY*", "*ACCESS_KEY*",
    "*PRIVATE_KEY*", "*CREDENTIAL*", "*AUTH*",
)  # fmt: skip


def is_secret(name: str, extra: Iterable[str] = ()) -> bool:
    upper = name.upper()
    return any(fnmatchcase(upper, p.upper()) for p in (*DEFAULT_SECRET_PATTERNS, *extra))


def mask_args(args: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    extra = tuple(extra)
    return {k: (MASK if is_secret(k, extra) else v) for k, v in args.items()}


def mask_config(config: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    """`planner config` output with secret-looking build arg values and context URL credentials masked."""
    services = {}
    for name, service in (config.get("services") or {}).items():
        build = service.get("build")
        masked = service
        if isinstance(build, dict):
            build = dict(build)
            if build.get("args"):
                build["args"] = mask_args(build["args"], extra)
            if isinstance(build.get("context"), str):
                build["context"] = mask_url(build["context"])
            if isinstance(build.get("additional_contexts"), dict):
                build["additional_contexts"] = {
                    k: mask_url(v) if isinstance(v, str) else v
                    for k, v in build["additional_contexts"].items()
                }
            masked = {**service, "build": build}
        services[name] = masked
    return {**config, "services": services}


# `scheme://userinfo@`: the userinfo ends at the first `@` before any `/`, `?` or `#`
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#@]+)@")


def _userinfo(ref: str) -> re.Match[str] | None:
    """Where a remote context URL holds credentials: the whole userinfo of an http(s) URL (a token is often the
    user name alone), or of any other URL that holds a password (`ssh://git@host/...` names a user, no secret)."""
    found = _USERINFO.match(ref)
    if found is not None and (found.group(1).lower() in ("http://", "https://") or ":" in found.group(2)):
        return found
    return None


def url_credentials(ref: str) -> str | None:
    """The credentials in a remote context URL (`_userinfo`); None when it holds none."""
    found = _userinfo(ref)
    return None if found is None else found.group(2)


def mask_url(ref: str) -> str:
    """`ref` with its credentials masked; any other text as it is."""
    found = _userinfo(ref)
    return ref if found is None else f"{found.group(1)}{MASK}@{ref[found.end() :]}"


MIN_SECRET_LENGTH = 4  # shorter values ("1", "yes") would mask unrelated text


def secret_values(args: Mapping[str, str], extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The values of secret-looking args worth masking in free text, longest first (so a value that contains
    another is masked whole)."""
    extra = tuple(extra)
    return longest_first({v for k, v in args.items() if is_secret(k, extra) and len(v) >= MIN_SECRET_LENGTH})


def credential_values(refs: Iterable[str]) -> tuple[str, ...]:
    """The credentials in remote context URLs worth masking in free text (a build log names the URL it fetches),
    longest first."""
    return longest_first(
        c for c in map(url_credentials, refs) if c is not None and len(c) >= MIN_SECRET_LENGTH
    )


def longest_first(values: Iterable[str]) -> tuple[str, ...]:
    """Secret values in the order `mask_text` needs: a value that contains another is masked whole."""
    return tuple(sorted(set(values), key=lambda v: (-len(v), v)))


def mask_text(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of the given secret values replaced by the mask."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
