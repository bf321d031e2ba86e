"""Secret-looking build args: their values never appear in any output (config, plan, explain, logs)."""

from __future__ import annotations

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
    """`planner config` output with secret-looking build arg values masked."""
    services = {}
    for name, service in (config.get("services") or {}).items():
        build = service.get("build")
        masked = service
        if isinstance(build, dict) and build.get("args"):
            masked = {**service, "build": {**build, "args": mask_args(build["args"], extra)}}
        services[name] = masked
    return {**config, "services": services}


MIN_SECRET_LENGTH = 4  # shorter values ("1", "yes") would mask unrelated text


def secret_values(args: Mapping[str, str], extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The values of secret-looking args worth masking in free text, longest first (so a value that contains
    another is masked whole)."""
    extra = tuple(extra)
    return longest_first({v for k, v in args.items() if is_secret(k, extra) and len(v) >= MIN_SECRET_LENGTH})


def longest_first(values: Iterable[str]) -> tuple[str, ...]:
    """Secret values in the order `mask_text` needs: a value that contains another is masked whole."""
    return tuple(sorted(set(values), key=lambda v: (-len(v), v)))


def mask_text(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of the given secret values replaced by the mask."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
