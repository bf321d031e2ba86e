"""Merging compose trees (multiple `-f` files, `extends`), as compose-go's `override` package merges them.

Rules: mappings merge key by key; a null override keeps the base; `x-` keys and scalars are replaced; sequences
are appended, except where Compose gives a path its own rule (below); `!reset` removes a value, `!override`
replaces it whole. Key/value lists (`args`, `labels`, `additional_contexts`) merge by key, last one wins, and so do
`tags` and `profiles` entries; `platforms`, `cache_from`, `cache_to`, `secrets` are plain appends (duplicates stay,
as in Compose). A base and an override of different shapes is an error, as in Compose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planner.base.errors import ComposeFileError, Location
from planner.compose.yamltree import OVERRIDE_TAG, RESET_TAG, YList, YMap, deep_copy

Path = tuple[str, ...]
Merger = Callable[[Any, Any, Path], Any]


def _matches(path: Path, pattern: Path) -> bool:
    return len(path) == len(pattern) and all(p in ("*", k) for k, p in zip(path, pattern, strict=True))


def key_value_pairs(value: Any) -> YMap:
    """`["K=V", "K"]` or `{K: V}` as an ordered map (None for a key without value); later duplicates win."""
    if isinstance(value, YMap):
        return value
    result = YMap(value.loc if isinstance(value, YList) else Location("<merge>"))
    if isinstance(value, dict):
        for key, item in value.items():
            result.put(key, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            loc = value.loc_of(index) if isinstance(value, YList) else result.loc
            text = item if isinstance(item, str) else str(item)
            key, sep, rest = text.partition("=")
            result.put(key, rest if sep else None, loc)
    return result


def _merge_key_values(base: Any, override: Any, path: Path) -> Any:
    if override is None:
        return base
    merged = deep_copy(key_value_pairs(base))
    incoming = key_value_pairs(override)
    for key, item in incoming.items():
        merged.put(key, item, incoming.loc_of(key))
    return merged


def _merge_mapping_forms(base: Any, override: Any, path: Path) -> Any:
    """Fields Compose takes as a list or a mapping (`environment`, `labels`, `sysctls`, `annotations`): both
    sides in mapping form, then merged by key, so a list may override a mapping and the reverse."""
    if override is None:
        return base
    if isinstance(base, dict | list) and isinstance(override, dict | list):
        return _merge_key_values(base, override, path)
    return merge(base, override, path, special=False)


def host_entries(value: Any) -> list[str]:
    """`extra_hosts` as Compose holds it: `host=ip` strings (`host:ip` and mapping entries converted; a mapping
    value may be a list of addresses)."""
    entries: list[str] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                entries.append(f"{host}={'' if ip is None else ip}")
    elif isinstance(value, list):
        for item in value:
            text = str(item)
            if "=" not in text and ":" in text:
                host, _, ip = text.partition(":")
                text = f"{host}={ip}"
            entries.append(text)
    return entries


def _merge_extra_hosts(base: Any, override: Any, path: Path) -> Any:
    if override is None:
        return base
    if not (isinstance(base, dict | list) and isinstance(override, dict | list)):
        return merge(base, override, path, special=False)
    result = YList(base.loc if isinstance(base, YList | YMap) else Location("<merge>"))
    for entry in dict.fromkeys([*host_entries(base), *host_entries(override)]):
        result.add(entry)
    return result


def _names_as_mapping(value: Any) -> Any:
    """A list of names (`[a, b]`) as the mapping form (`{a: null, b: null}`), so both forms merge as one."""
    if isinstance(value, list):
        mapping = YMap(value.loc if isinstance(value, YList) else Location("<merge>"))
        for index, name in enumerate(value):
            mapping.put(str(name), None, value.loc_of(index) if isinstance(value, YList) else None)
        return mapping
    return value


def _merge_networks(base: Any, override: Any, path: Path) -> Any:
    """A service's `networks` as a list of names or a mapping: both in mapping form, then merged."""
    if override is None:
        return base

    return merge(_names_as_mapping(base), _names_as_mapping(override), path, special=False)


def _merge_unique(base: Any, override: Any, path: Path) -> Any:
    """Append, then keep one entry per value (the first position, the last occurrence)."""
    if override is None:
        return base
    _check_same_shape(base, override, path)
    result = YList(base.loc)
    index_of: dict[str, int] = {}
    for seq in (base, override):
        for index, item in enumerate(seq):
            key = str(item).partition("=")[0]
            loc = seq.loc_of(index) if isinstance(seq, YList) else result.loc
            if key in index_of:
                result[index_of[key]] = item
                result.locs[index_of[key]] = loc
            else:
                index_of[key] = len(result)
                result.add(item, loc)
    return result


def _as_build_mapping(value: Any) -> Any:
    if isinstance(value, str):
        result = YMap(Location("<merge>"))
        result.put("context", value)
        return result
    return value


def _merge_build(base: Any, override: Any, path: Path) -> Any:
    return merge(_as_build_mapping(base), _as_build_mapping(override), path, special=False)


def _merge_depends_on(base: Any, override: Any, path: Path) -> Any:
    return merge(_names_as_mapping(base), _names_as_mapping(override), path, special=False)


def _replace(base: Any, override: Any, path: Path) -> Any:
    return base if override is None else override


_SPECIAL: list[tuple[Path, Merger]] = [
    (("services", "*", "build"), _merge_build),
    (("services", "*", "build", "args"), _merge_key_values),
    (("services", "*", "build", "labels"), _merge_key_values),
    (("services", "*", "build", "additional_contexts"), _merge_key_values),
    (("services", "*", "build", "extra_hosts"), _merge_extra_hosts),
    (("services", "*", "extra_hosts"), _merge_extra_hosts),
    (("services", "*", "environment"), _merge_mapping_forms),
    (("services", "*", "labels"), _merge_mapping_forms),
    (("services", "*", "sysctls"), _merge_mapping_forms),
    (("services", "*", "annotations"), _merge_mapping_forms),
    (("services", "*", "networks"), _merge_networks),
    (("services", "*", "build", "tags"), _merge_unique),
    (("services", "*", "profiles"), _merge_unique),
    (("services", "*", "depends_on"), _merge_depends_on),
    (("services", "*", "command"), _replace),
    (("services", "*", "entrypoint"), _replace),
    (("services", "*", "healthcheck", "test"), _replace),
]


def _check_same_shape(base: Any, override: Any, path: Path) -> None:
    if isinstance(base, dict) != isinstance(override, dict) or isinstance(base, list) != isinstance(
        override, list
    ):
        loc = override.loc if isinstance(override, YMap | YList) else None
        raise ComposeFileError(f"cannot override {'.'.join(path)}: the value has another shape", loc)


def merge(base: Any, override: Any, path: Path = (), special: bool = True) -> Any:
    """Merge `override` into `base` (both may be mutated or shared; callers pass copies they own)."""
    if base is None:
        return strip_resets(override)
    if special:
        for pattern, merger in _SPECIAL:
            if _matches(path, pattern):
                return merger(base, override, path)
    if override is None:
        return base
    if isinstance(base, dict):
        if not isinstance(override, dict):
            _check_same_shape(base, override, path)
        return _merge_mappings(base, override, path)
    if isinstance(base, list):
        _check_same_shape(base, override, path)
        result = deep_copy(base)
        for index, item in enumerate(override):
            loc = override.loc_of(index) if isinstance(override, YList) else None
            result.add(item, loc) if isinstance(result, YList) else result.append(item)
        return result
    return override


def _merge_mappings(base: dict[str, Any], override: dict[str, Any], path: Path) -> dict[str, Any]:
    result = base if isinstance(base, YMap) else _to_ymap(base)
    tags = override.tags if isinstance(override, YMap) else {}
    for key, value in override.items():
        loc = override.loc_of(key) if isinstance(override, YMap) else None
        tag = tags.get(key)
        if tag == RESET_TAG:
            result.pop(key, None)
            continue
        if tag == OVERRIDE_TAG or key not in result or key.startswith("x-"):
            result.put(key, strip_resets(value), loc)
            continue
        result.put(key, merge(result[key], value, (*path, key)), loc)
    return result


def _to_ymap(value: dict[str, Any]) -> YMap:
    result = YMap(Location("<merge>"))
    for key, item in value.items():
        result.put(key, item)
    return result


def strip_resets(value: Any) -> Any:
    """Drop `!reset` entries from a tree that has no base to reset (its first appearance)."""
    if isinstance(value, YMap):
        for key in [k for k, t in value.tags.items() if t == RESET_TAG]:
            value.pop(key, None)
        value.tags = {}
        for item in value.values():
            strip_resets(item)
    elif isinstance(value, list):
        for item in value:
            strip_resets(item)
    return value
