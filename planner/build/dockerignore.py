"""`.dockerignore` exactly as Docker reads and applies it (moby/patternmatcher + buildkit's dockerignore reader).

Reading: a line starting with `#` is a comment (only at column 0); lines are trimmed; `!` marks an exception;
each pattern is cleaned like Go's filepath.Clean and a leading `/` dropped. Matching: the last pattern that
matches a path or any of its parent directories decides; `*` and `?` stop at `/`, `**` spans directories,
`[...]` classes and `\\` escapes as in Go's filepath.Match. The context walk itself matches with the parent
directory's per-pattern results (`PatternMatcher.hits`), which differs from that rule in corner cases.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from planner.base import inputs
from planner.base.errors import InputError, Location, exception_text

_REGEX_SPECIALS = set(".+()|{}$")


def go_clean(path: str) -> str:
    """Go's filepath.Clean for slash paths (`""` → `.`)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = cleaned[1:]
    if rooted and not cleaned.startswith("/"):
        cleaned = "/" + cleaned
    return cleaned


def read_dockerignore(text: str) -> list[str]:
    """Patterns of a .dockerignore file, as BuildKit's reader returns them."""
    return [pattern for _, pattern in read_dockerignore_lines(text)]


def read_dockerignore_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, pattern) of a .dockerignore file, as BuildKit's reader returns the patterns."""
    patterns = []
    # bufio.ScanLines: split at "\n" only, dropping one trailing "\r" (str.splitlines also splits at \r, \f, ...)
    for number, raw in enumerate(text.split("\n")):
        line = raw.removesuffix("\r")
        line = line.removeprefix("\ufeff") if number == 0 else line
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append((number + 1, "!" + pattern if invert else pattern))
    return patterns


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern; `kind` mirrors patternmatcher's fast paths, whose results differ from the regex
    in corner cases (`**foo` is a plain suffix, `a**` a plain prefix)."""

    text: str
    exclusion: bool

    @cached_property
    def compiled(self) -> tuple[str, re.Pattern[str] | None]:
        return _compile(self.text)

    def match(self, path: str) -> bool:
        kind, regex = self.compiled
        if kind == "exact":
            return path == self.text
        if kind == "prefix":
            return path.startswith(self.text[:-2])
        if kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert regex is not None
        return regex.match(path) is not None


def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """patternmatcher's Pattern.compile: the match kind and, for "regexp", the expression."""
    out = ["^"]
    kind = "exact"
    i = 0
    n = len(pattern)
    first = True
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regexp"
                else:
                    out.append("(.*/)?")
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regexp"
        elif char == "?":
            out.append("[^/]")
            kind = "regexp"
        elif char in _REGEX_SPECIALS:
            out.append("\\" + char)
        elif char == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = "regexp"  # patternmatcher: an escaped character always makes a regexp
            else:
                out.append("\\\\")
        elif char in "[]":
            out.append(char)
            kind = "regexp"
        else:
            out.append(char)
        first = False
    if kind != "regexp":
        return kind, None
    # Go's `$` (no multi-line flag) is Python's `\Z`, and Go's `.` does not match a newline (no DOTALL);
    # `[^/]` matches one in both.
    out.append("\\Z")
    return kind, re.compile("".join(out))


def _go_regexp_reason(exc: re.error) -> str:
    """Go's regexp words for why a pattern does not compile (the pattern's own text, not our translation)."""
    if "\\Z" in str(exc) or "unterminated character set" in str(exc):
        return "missing closing ]"
    if "bad character range" in str(exc):
        return "invalid character class range"
    return exc.msg


@dataclass
class PatternMatcher:
    """Decides whether a context-relative path is excluded."""

    patterns: list[Pattern] = field(default_factory=list)

    @classmethod
    def from_lines(
        cls, lines: list[str], source: str = ".dockerignore", numbers: list[int] | None = None
    ) -> PatternMatcher:
        """Compile patterns; `numbers` are their lines in `source` (where an error points; extra patterns
        from the rules beyond them name no line)."""
        patterns = []
        for index, raw in enumerate(lines):
            where = Location(source, numbers[index]) if numbers and index < len(numbers) else Location(source)
            text = raw.strip()
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                text = text[1:]
                if not text:
                    raise InputError('illegal exclusion pattern: "!"', where)
            pattern = Pattern(text, exclusion)
            try:
                pattern.compiled  # noqa: B018 - compile now so a bad pattern fails here, naming the file
            except re.error as exc:
                raise InputError(f"bad pattern {raw!r}: {_go_regexp_reason(exc)}", where) from None
            patterns.append(pattern)
        return cls(patterns)

    def descend_into(self, directory: str) -> bool:
        """Whether Docker walks into an excluded directory: only when an exception pattern starts with it
        (the docker CLI's context walk: `strings.HasPrefix(pattern + "/", dir + "/")`). `!a/*/c` therefore does
        not re-include `a/b/c`; Docker does not send it either."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def would_send(self, path: str) -> bool:
        """Whether a context-relative path ends up in the context Docker sends: no excluded ancestor directory
        that the walk skips, and not excluded itself, as the walk matches (`hits`)."""
        parts = path.split("/")
        hits: tuple[bool, ...] | None = None
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            hits = self.hits(ancestor, hits)
            if self.decide(hits) and not self.descend_into(ancestor):
                return False
        return not self.decide(self.hits(path, hits))

    def hits(self, path: str, parent_hits: tuple[bool, ...] | None) -> tuple[bool, ...]:
        """Per pattern: does it hit `path` as the docker CLI's context walk matches (patternmatcher's
        MatchesUsingParentResults, in moby/go-archive's TarWithOptions)? A pattern that hit the parent directory
        hits; any other is tried only while it could change the outcome (an exclusion while not excluded, an
        exception while excluded), and on `path` alone (on its parents too when `parent_hits` is None). So a
        pattern skipped for the parent does not act through it: after `a/x`, `!a` does not re-include `a/x`;
        with `d`, `!d/keep`, `d`, `d/keep` is sent. Each path is matched once per pattern: the walk stays linear."""
        out = []
        matched = False
        for index, pattern in enumerate(self.patterns):
            hit = parent_hits is not None and parent_hits[index]
            if not hit and pattern.exclusion == matched:
                hit = (
                    pattern.match(path) if parent_hits is not None else self._matches_or_parent(pattern, path)
                )
            out.append(hit)
            if hit:
                matched = not pattern.exclusion
        return tuple(out)

    def decide(self, hits: tuple[bool, ...]) -> bool:
        """Excluded or not, from per-pattern hits: the last pattern that hits decides."""
        matched = False
        for pattern, hit in zip(self.patterns, hits, strict=True):
            if hit:
                matched = not pattern.exclusion
        return matched

    @staticmethod
    def _matches_or_parent(pattern: Pattern, path: str) -> bool:
        if pattern.match(path):
            return True
        parts = path.split("/")
        return any(pattern.match("/".join(parts[:i])) for i in range(1, len(parts)))

    def excluded(self, path: str) -> bool:
        """MatchesOrParentMatches: the last pattern matching the path or one of its parents decides."""
        matched = False
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parents:
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


def ignore_file_for(context: Path, dockerfile: Path | None) -> Path | None:
    """BuildKit's choice: `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`."""
    if dockerfile is not None:
        specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if inputs.is_file(specific):
            return specific
    default = context / ".dockerignore"
    return default if inputs.is_file(default) else None


def load_matcher(context: Path, dockerfile: Path | None, extra: list[str] | None = None) -> PatternMatcher:
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore") if dockerfile else None,
                      context / ".dockerignore"):  # fmt: skip
        if candidate is not None and inputs.is_dir(candidate):
            raise InputError("is a directory, not an ignore file", Location(str(candidate)))
    path = ignore_file_for(context, dockerfile)
    numbered: list[tuple[int, str]] = []
    if path is not None:
        try:
            numbered = read_dockerignore_lines(path.read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            raise InputError(f"cannot read: {exception_text(exc)}", Location(str(path))) from None
    lines = [pattern for _, pattern in numbered]
    # extra lines (rules `exclude`) are read as lines of the file would be: `/dist/` is `dist`
    added = [pattern for _, pattern in read_dockerignore_lines("\n".join(extra or []))]
    return PatternMatcher.from_lines(
        [*lines, *added], str(path or context / ".dockerignore"), [n for n, _ in numbered]
    )
