"""YAML → plain Python trees that remember where every value came from.

Compose files are read with ruamel.yaml's composer (nodes with marks) and constructed here, rather than by ruamel's
own constructors, for three reasons: every value keeps its file:line for error messages; plain scalars resolve as
Docker Compose's YAML library (go-yaml v3) resolves them, so `017` or `1_000` mean what they mean to Compose; and the
Compose tags `!reset` / `!override` are kept as markers for the merge pass.

Containers are `YMap` (a dict) and `YList` (a list) carrying the location of each entry; scalars are plain
str / int / float / bool / None, located through their parent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from planner.base import inputs
from planner.base.errors import ComposeFileError, Location

try:  # libyaml through ruamel.yaml.clib composes ~10x faster; the pure parser gives the same nodes
    import _ruamel_yaml  # noqa: F401

    _HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - depends on the installation
    _HAVE_LIBYAML = False

_PLAIN_STYLES = (None, "")  # ruamel's pure parser says None, its libyaml binding ""
RESET_TAG = "!reset"
OVERRIDE_TAG = "!override"


class YMap(dict[str, Any]):
    """A mapping whose entries know their source location (`locs[key]`, the value's position)."""

    def __init__(self, loc: Location) -> None:
        super().__init__()
        self.loc = loc
        self.locs: dict[str, Location] = {}
        self.tags: dict[str, str] = {}  # key -> "!reset" / "!override" where the value carried that tag
        self.raw_name = ""  # a compose file's `name:` as written (the loader sets it before interpolation)

    def put(self, key: str, value: Any, loc: Location | None = None) -> None:
        self[key] = value
        self.locs[key] = loc if loc is not None else self.loc

    def loc_of(self, key: str) -> Location:
        return self.locs.get(key, self.loc)


class YList(list[Any]):
    """A sequence whose items know their source location."""

    def __init__(self, loc: Location) -> None:
        super().__init__()
        self.loc = loc
        self.locs: list[Location] = []

    def add(self, value: Any, loc: Location | None = None) -> None:
        self.append(value)
        self.locs.append(loc if loc is not None else self.loc)

    def loc_of(self, index: int) -> Location:
        return self.locs[index] if 0 <= index < len(self.locs) else self.loc


def location_in(container: Any, key: str | int) -> Location | None:
    """Location of `container[key]` when the container is a located one."""
    if isinstance(container, YMap) and isinstance(key, str):
        return container.loc_of(key)
    if isinstance(container, YList) and isinstance(key, int):
        return container.loc_of(key)
    return None


# go-yaml v3 plain-scalar resolution (YAML 1.2 core schema plus Go's ParseInt base-0 quirks).
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}
_NEG_INF = {"-.inf", "-.Inf", "-.INF"}
_NAN = {".nan", ".NaN", ".NAN"}
_INT_RE = re.compile(r"^[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")


def resolve_plain(text: str) -> Any:
    """Type of an unquoted scalar as go-yaml v3 decodes it into an interface{}."""
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text and (text[0] in "+-.0123456789"):
        plain = text.replace("_", "")
        if _INT_RE.match(plain):
            return _parse_go_int(plain)
        if _FLOAT_RE.match(plain):
            return float(plain)
    if text in _INF:
        return math.inf
    if text in _NEG_INF:
        return -math.inf
    if text in _NAN:
        return math.nan
    return text


def _parse_go_int(plain: str) -> int:
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    lowered = digits.lower()
    if lowered.startswith("0b"):
        value = int(digits[2:], 2)
    elif lowered.startswith("0o"):
        value = int(digits[2:], 8)
    elif lowered.startswith("0x"):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits, 8)  # Go's ParseInt(s, 0, 64): a leading 0 means octal
    else:
        value = int(digits)
    return sign * value


# go-yaml v3's bound on alias expansion (decode.go, allowedAliasRatio), which Docker Compose's YAML library
# applies: once more than 100 values came through aliases and more than 1000 were built, aliases may make up
# at most 99% of them (up to 400,000 values built), scaling down to 10% at 4,000,000. Templates merged into every
# service (`<<: *defaults`) stay far below it; a "billion laughs" document trips it after about a thousand values.
_ALIAS_MIN_ALIASED = 100
_ALIAS_MIN_DECODED = 1000
_ALIAS_RANGE_LOW = 400_000
_ALIAS_RANGE_HIGH = 4_000_000


def allowed_alias_ratio(decoded: int) -> float:
    """The share of built values that may come from alias expansion, as go-yaml v3 allows it."""
    if decoded <= _ALIAS_RANGE_LOW:
        return 0.99
    if decoded >= _ALIAS_RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * ((decoded - _ALIAS_RANGE_LOW) / (_ALIAS_RANGE_HIGH - _ALIAS_RANGE_LOW))


class _Builder:
    """Turns one composed document into YMap/YList/scalars with locations.

    The composer hands an alias over as the very node its anchor names, so a node met a second time is an alias
    being expanded; values built under one count against the alias bound (go-yaml v3's)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.seen: set[int] = set()  # ids of collection nodes built once (their anchors, if any, are behind)
        self.decoded = 0
        self.aliased = 0
        self.alias_depth = 0
        self.alias_site: Location | None = None  # where the outermost alias being expanded is used

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.filename, mark.line + 1, mark.column + 1)

    def build(self, node: Node, site: Location | None = None) -> Any:
        """Build `node`; `site` is where it is used (a mapping key, a sequence), for an alias error."""
        self.decoded += 1
        if self.alias_depth:
            self.aliased += 1
            self._check_aliasing()
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.seen:  # an alias of a collection: expand it, counting what it brings
            if not self.alias_depth:
                self.alias_site = site or self.loc(node)
            self.alias_depth += 1
            try:
                return self._build_collection(node)
            finally:
                self.alias_depth -= 1
        self.seen.add(id(node))
        return self._build_collection(node)

    def _check_aliasing(self) -> None:
        if (
            self.aliased > _ALIAS_MIN_ALIASED
            and self.decoded > _ALIAS_MIN_DECODED
            and self.aliased / self.decoded > allowed_alias_ratio(self.decoded)
        ):
            raise ComposeFileError(
                "document contains excessive aliasing: this alias expands to too many values",
                self.alias_site,
                hint="anchors that alias other anchors many times over (a YAML alias bomb) are refused with "
                "go-yaml v3's bound",
            )

    def _build_collection(self, node: Node) -> Any:
        if isinstance(node, SequenceNode):
            seq = YList(self.loc(node))
            for item in node.value:
                seq.add(self.build(item, seq.loc), self.loc(item))
            return seq
        if isinstance(node, MappingNode):
            return self.mapping(node)
        raise ComposeFileError("unsupported YAML node", self.loc(node))

    def scalar(self, node: ScalarNode) -> Any:
        text: str = node.value
        tag = str(node.tag)
        if node.style not in _PLAIN_STYLES:  # quoted or block scalar: always a string
            return text
        if tag.startswith("!") and not tag.startswith("!!"):
            return text if text != "" else None  # `!reset` / `!override` payload, or an unknown local tag
        return resolve_plain(text)

    def mapping(self, node: MappingNode) -> YMap:
        result = YMap(self.loc(node))
        merged: list[tuple[str, Any, Location]] = []
        key_lines: dict[str, int | None] = {}
        for key_node, value_node in node.value:
            if (
                isinstance(key_node, ScalarNode)
                and key_node.value == "<<"
                and key_node.style in _PLAIN_STYLES
            ):
                merged.extend(self._merge_sources(value_node, self.loc(key_node)))
                continue
            key = self._key(key_node)
            if key in result:
                raise ComposeFileError(
                    f'mapping key "{key}" already defined at line {key_lines[key]}', self.loc(key_node)
                )
            key_lines[key] = self.loc(key_node).line
            result.put(key, self.build(value_node, self.loc(key_node)), self.loc(value_node))
            tag = str(value_node.tag)
            if tag in (RESET_TAG, OVERRIDE_TAG):
                result.tags[key] = tag
        for key, value, loc in merged:  # explicit keys win over merged ones
            if key not in result:
                result.put(key, value, loc)
        return result

    def _merge_sources(self, node: Node, site: Location) -> Iterator[tuple[str, Any, Location]]:
        """Entries brought in by a `<<` merge key; in a list of maps the first one wins."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        seen: set[str] = set()
        for source in sources:
            if not isinstance(source, MappingNode):
                raise ComposeFileError(
                    "map merge requires map or sequence of maps as the value", self.loc(source)
                )
            built = self.build(source, site)
            assert isinstance(built, YMap)
            for key, value in built.items():
                if key not in seen:
                    seen.add(key)
                    yield key, value, built.loc_of(key)

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise ComposeFileError("mapping keys must be scalars", self.loc(node))
        value = self.scalar(node)
        if value is None:
            return "null" if node.value else ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return node.value if not isinstance(value, str) else value


def _compose(text: str, pure: bool) -> Node | None:
    return YAML(typ="safe", pure=pure).compose(text)  # type: ignore[no-any-return]


def parse_yaml(text: str, filename: str) -> Any:
    """Parse one YAML document (an empty document is None); syntax errors become ComposeFileError with file:line.

    libyaml is tried first for speed; it is stricter than Compose's go-yaml in places (a `:` inside a flow
    scalar such as `[docker-image://alpine:3]`), so on its error the YAML 1.2 pure parser decides."""
    try:
        node = _compose(text, pure=not _HAVE_LIBYAML)
    except RecursionError:
        raise ComposeFileError(
            f"the document nests deeper than {MAX_DEPTH} levels", Location(filename)
        ) from None
    except YAMLError:
        try:
            node = _compose(text, pure=True)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            loc = (
                Location(filename, mark.line + 1, mark.column + 1) if mark is not None else Location(filename)
            )
            problem = exc.problem or exc.context or "invalid YAML"
            raise ComposeFileError(f"invalid YAML: {problem}", loc) from None
        except YAMLError as exc:
            raise ComposeFileError(f"invalid YAML: {exc}", Location(filename)) from None
    if node is None:
        return None
    _check_depth(node, filename)
    return _Builder(filename).build(node)


MAX_DEPTH = 200  # real compose and rules files nest a dozen levels; every later stage recurses over the tree


def _check_depth(root: Node, filename: str) -> None:
    """Refuse a document nested so deep that walking it would exhaust Python's stack, or an anchor whose value
    contains itself (go-yaml refuses it too) -- iteratively, so this check itself cannot recurse."""
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    done: set[int] = set()  # nodes walked completely (an alias to one is fine)
    open_: set[int] = set()  # nodes on the current path (an alias to one is a cycle)

    def where(node: Node) -> Location:
        return Location(filename, node.start_mark.line + 1, node.start_mark.column + 1)

    while stack:
        node, depth, leaving = stack.pop()
        if leaving:
            open_.discard(id(node))
            done.add(id(node))
            continue
        if id(node) in open_:
            raise ComposeFileError("an anchor's value contains itself", where(node))
        if id(node) in done:
            continue
        if depth > MAX_DEPTH:
            raise ComposeFileError(f"the document nests deeper than {MAX_DEPTH} levels", where(node))
        open_.add(id(node))
        stack.append((node, depth, True))
        value = node.value
        if isinstance(value, list):
            for item in value:
                parts = item if isinstance(item, tuple) else (item,)
                stack.extend((part, depth + 1, False) for part in parts)


def load_yaml_file(path: Path) -> Any:
    """Read and parse a YAML file; unreadable files become ComposeFileError naming the path. `-` is standard
    input (`-f -`), which a memo cannot replay."""
    if str(path) == "-":
        import sys

        inputs.note_opaque("standard input")
        return parse_yaml(sys.stdin.read(), "<stdin>")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ComposeFileError("no such file", Location(str(path))) from None
    except IsADirectoryError:
        raise ComposeFileError("is a directory, not a compose file", Location(str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeFileError(f"cannot read file: {exc}", Location(str(path))) from None
    return parse_yaml(text, str(path))


def plain(value: Any) -> Any:
    """A deep copy as ordinary dicts and lists (for output and comparisons)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def deep_copy(value: Any) -> Any:
    """A deep copy that keeps locations and tags."""
    if isinstance(value, YMap):
        result = YMap(value.loc)
        for key, item in value.items():
            result.put(key, deep_copy(item), value.loc_of(key))
        result.tags = dict(value.tags)
        return result
    if isinstance(value, YList):
        seq = YList(value.loc)
        for index, item in enumerate(value):
            seq.add(deep_copy(item), value.loc_of(index))
        return seq
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value
