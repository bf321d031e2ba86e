"""The `.env` / `--env-file` reader of Docker Compose v2 (compose-go ``dotenv`` v2.9.1, in compose v2.40.3).

Behaviour was read from compose-go's source and checked against the real binary; the quirks are kept on
purpose, since a plan must see exactly the variables ``docker compose`` would:

* Statements: ``KEY=VALUE``, ``KEY: VALUE`` and ``export KEY=VALUE``; a bare ``KEY`` line inherits KEY from
  the lookup (the process environment) and is dropped when it is unset there. Blank and ``#`` lines are
  skipped. Keys are letters, digits and ``_ . - [ ]``; blanks inside a key are skipped while scanning, but
  a key that still holds a space is an error (a tab survives: ``A<TAB>B=1`` defines ``"A\\tB"``).
* Unquoted values run to the end of the line, lose everything from the first ``" #"`` (space then hash:
  ``a#b`` and ``a<TAB>#b`` are kept whole) and trailing whitespace, then are interpolated.
* ``'...'`` is literal except that ``\\'`` yields ``'``; ``"..."`` also unescapes ``\\"``, then expands
  ``\\a \\b \\f \\n \\r \\t \\v \\\\ \\$`` and ``\\0NNN`` octal, then is interpolated. Quotes may span lines.
  Text after the closing quote is parsed as the *next statement*: ``A="x" B=2`` defines B, ``A="x"y``
  inherits ``y``. Backticks are not quotes.
* A final line with no ``=``/``:`` and no newline becomes the value of the empty key ``""``.
* ``$VAR`` references consult the lookup *first* and only then keys defined earlier in the same text, so
  the process environment beats the file's own definitions (``P=file`` then ``X=$P`` gives X the process
  value of P). Across several env files, later files see earlier files' values after the process env.

Line numbers in errors are the true line of the offending statement. compose-go's own counter drifts in
places (after a bare ``KEY<space>`` line; at end of file for an unterminated quote); we do not copy that.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from planner.base import inputs
from planner.base.errors import EnvFileError, InterpolationError, Location
from planner.compose.interpolate import substitute

Lookup = Callable[[str], str | None]

# compose-go's isSpace: blanks that never end a line (NEL and NBSP included, newline excluded).
_BLANK = "\t\v\f\r \x85\xa0"
# Go's unicode.IsSpace, which trims keys/values and separates statements (Python's isspace adds \x1c-\x1f).
_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
# Go RE2's \s is ASCII [\t\n\f\r ] (no \v): `export\nKEY=...` still counts as an export prefix.
_EXPORT = re.compile(r"export[\t\n\f\r ]")
_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})')
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
_OCTAL = re.compile(r"\\[0-7]{3}")
_KEY_PUNCTUATION = frozenset("_.-[]")
_UTF8_BOM = b"\xef\xbb\xbf"


def parse_env_text(text: str, filename: str, lookup: Lookup) -> dict[str, str]:
    """Parse dotenv text into its variables, as compose-go's ``dotenv.ParseWithLookup`` does.

    `lookup` is compose-go's lookup function: it answers bare ``KEY`` lines, and ``$VAR`` references
    consult it before keys defined earlier in this text (it wins over them). Errors are EnvFileError with
    Location(filename, line).
    """
    return _Parser(text, filename, lookup, {}).parse()


def resolve_environment(env_files: Sequence[Path], process_env: Mapping[str, str]) -> dict[str, str]:
    """The environment compose interpolates with: the env files read in order, overlaid by `process_env`.

    Each file's references see the process environment first, then every value defined so far (this file's
    earlier keys shadowing earlier files'), which is how compose-go v2.9.1 behaves. The process environment
    always wins in the result. A missing, unreadable or directory path raises EnvFileError naming it.
    """
    defined: dict[str, str] = {}
    for path in env_files:
        _Parser(_read_env_file(path), str(path), process_env.get, defined).parse()
    return {**defined, **process_env}


def _read_env_file(path: Path) -> str:
    location = Location.of_file(path)
    absolute = path.absolute()
    if not inputs.exists(path):
        raise EnvFileError(f"couldn't find env file: {absolute}", location)
    if inputs.is_dir(path):
        raise EnvFileError(f"{absolute} is a directory", location)
    try:
        data = path.read_bytes()
        if not inputs.is_file(path):
            # A pipe (`--env-file <(...)`): compose reads its env files more than once, and only its first read,
            # which it discards, sees the content: what it interpolates with is the empty text.
            data = b""
    except OSError as exc:
        raise EnvFileError(f"couldn't read env file: {absolute}: {exc.strerror or exc}", location) from exc
    # Editors on Windows add a BOM; compose skips it. surrogateescape keeps non-UTF-8 bytes round-tripping
    # like os.environ does, since Go passes such bytes through untouched.
    return data.removeprefix(_UTF8_BOM).decode("utf-8", "surrogateescape")


def _quote(text: str) -> str:
    """Double-quoted like Go's %q, which compose uses in these messages."""
    return json.dumps(text, ensure_ascii=False)


def _is_key_char(char: str) -> bool:
    # Go's unicode.IsLetter / unicode.IsNumber: general categories L* and N*.
    return char in _KEY_PUNCTUATION or unicodedata.category(char)[0] in "LN"


def _expand_escapes(raw: str) -> str:
    """compose-go's expandEscapes for double-quoted values; other escapes (``\\x41``, ``\\q``) stay as-is."""

    def replace(match: re.Match[str]) -> str:
        escape = match.group(0)
        if escape == "\\$":
            return "$$"  # a literal dollar for the interpolation that follows
        if escape.startswith("\\0"):
            # `\0NNN` is octal `\NNN`; compose keeps the rewritten text when it is not a valid escape, so
            # `\01` becomes `\1` and `\0` becomes a lone backslash.
            escape = "\\" + escape[2:]
            if _OCTAL.fullmatch(escape) and int(escape[1:], 8) <= 0xFF:
                return chr(int(escape[1:], 8))
            return escape
        return _SIMPLE_ESCAPES[escape[1]]

    return _ESCAPE.sub(replace, raw)


class _Parser:
    """One pass over one text; `out` collects the values and may already hold earlier files' values."""

    def __init__(self, text: str, filename: str, lookup: Lookup, out: dict[str, str]) -> None:
        self.text = text
        self.filename = filename
        self.lookup = lookup
        self.out = out
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]

    def parse(self) -> dict[str, str]:
        text, pos = self.text, 0
        while True:
            pos = self._skip(pos, _SPACE)
            if pos == len(text):
                return self.out
            if text[pos] == "#":
                pos = text.find("\n", pos)
                if pos < 0:
                    return self.out
                continue
            pos = self._statement(pos)

    def _statement(self, start: int) -> int:
        """Parse the statement at `start`; returns where the next one may begin."""
        text, line = self.text, self._line(start)
        pos = start
        if _EXPORT.match(text, pos):
            pos = self._skip(pos + len("export"), _BLANK)
        key_start = pos
        while pos < len(text) and text[pos] not in "=:\n":
            char = text[pos]
            if char not in _BLANK and not _is_key_char(char):
                context = text[key_start:].split("\n", 1)[0]
                raise self._error(
                    f"unexpected character {_quote(char)} in variable name {_quote(context)}", line
                )
            pos += 1
        if pos == len(text):
            if key_start == len(text):
                raise self._error("zero length string (nothing after 'export')", line)
            # No separator before the end of the file: compose reads the whole line as the value of "".
            key, value_start = "", key_start
        else:
            key = text[key_start:pos].rstrip(_SPACE)
            if " " in key:
                raise self._error(f"key cannot contain a space: {_quote(key)}", line)
            if text[pos] == "\n":
                inherited = self.lookup(key)
                if inherited is not None:
                    self.out[key] = inherited
                return pos + 1
            value_start = self._skip(pos + 1, _BLANK)
        value, rest = self._value(value_start, line)
        self.out[key] = value
        return rest

    def _value(self, start: int, line: int) -> tuple[str, int]:
        text = self.text
        quote = text[start] if start < len(text) and text[start] in "'\"" else ""
        if not quote:
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            raw = text[start:end].split(" #", 1)[0].rstrip(_SPACE)
            return self._interpolate(raw, line), end
        chars: list[str] = []
        escaped = False
        for pos in range(start + 1, len(text)):
            char = text[pos]
            if escaped:
                escaped = False
                if char != quote:  # only the escaped quote itself loses its backslash here
                    chars.append("\\")
                chars.append(char)
            elif char == "\\":
                escaped = True
            elif char == quote:
                raw = "".join(chars)
                if quote == '"':
                    raw = self._interpolate(_expand_escapes(raw), line)
                return raw, pos + 1
            else:
                chars.append(char)
        first_line = text[start:].split("\n", 1)[0]
        raise self._error(f"unterminated quoted value {first_line}", self._line(start))

    def _interpolate(self, raw: str, line: int) -> str:
        def resolve(name: str) -> str | None:
            value = self.lookup(name)
            return self.out.get(name) if value is None else value

        try:
            return substitute(raw, resolve)
        except InterpolationError as exc:
            raise EnvFileError(exc.message, Location(self.filename, line), exc.hint) from exc

    def _skip(self, pos: int, chars: str) -> int:
        while pos < len(self.text) and self.text[pos] in chars:
            pos += 1
        return pos

    def _line(self, pos: int) -> int:
        return bisect_right(self._newlines, pos - 1) + 1

    def _error(self, message: str, line: int) -> EnvFileError:
        return EnvFileError(message, Location(self.filename, line))
