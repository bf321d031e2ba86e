"""Secret-looking build args: their values never appear in any output (config, plan, explain, logs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

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
