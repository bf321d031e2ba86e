"""Stages and image references of a Dockerfile, as BuildKit's frontend reads them.

Why our own reader: the graph needs `COPY --from=`, `RUN --mount=...,from=` flags, heredocs and BuildKit's
word expansion of `ARG`s in `FROM`, which the maintained Python parsers do not cover. It only extracts what the
graph needs: parser directives, logical lines (escape-character continuations, comment lines inside them,
heredoc bodies skipped), global `ARG`s substituted into `FROM`, stage names (case-insensitive), and every
reference to an image that is not a stage of the same file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from planner.base.errors import InputError

Via = Literal["FROM", "COPY --from", "RUN --mount"]

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_DIRECTIVE_NAMES = {"syntax", "escape", "check"}
# a heredoc is one word `<<NAME`, `<<-NAME`, `<<'NAME'` or `<<"NAME"` (BuildKit lexes the line into words first:
# a shell heredoc written `<< NAME` is not one)
_HEREDOC = re.compile(r"(?:^|(?<=\s))<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2(?=\s|$|[>;|&)])")
_HEREDOC_WORD = re.compile(r"^<<-?([\"']?)[A-Za-z_][A-Za-z0-9_]*\1$")
# The Dockerfile frontends Docker publishes (`# syntax=docker/dockerfile:1.7-labs`, `docker.io/...`, by tag or
# digest, `-upstream`): their instructions read the context as the built-in frontend's do, or less (`--exclude`
# narrows a COPY, `--parents` copies the same files, a heredoc reads nothing), so their reads are analysed
_OFFICIAL_FRONTEND = re.compile(
    r"^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?docker/dockerfile(?:-upstream)?"
    r"(?::[A-Za-z0-9][A-Za-z0-9._-]*)?(?:@sha256:[0-9a-f]{64})?$"
)


def official_frontend(value: str) -> bool:
    """Whether a `# syntax=` value names one of Docker's own Dockerfile frontends (any version or channel)."""
    return _OFFICIAL_FRONTEND.match(value.strip()) is not None


_HEREDOC_INSTRUCTIONS = {"RUN", "COPY", "ADD"}
# Platform args BuildKit predefines in the global scope; values for a linux/amd64 builder.
_PLATFORM_ARGS = {
    "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
    "TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
}  # fmt: skip


@dataclass(frozen=True)
class ImageRef:
    """A reference from this Dockerfile to an image outside it."""

    ref: str
    via: Via
    line: int
    stage: str | None  # the stage that refers to it (name, or index as text)


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    line: int


@dataclass
class DockerfileInfo:
    stages: list[Stage] = field(default_factory=list)
    image_refs: list[ImageRef] = field(default_factory=list)

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages if s.name]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int
    unterminated: str | None = None  # a heredoc delimiter never found before the end of the file


def directives(text: str) -> list[tuple[int, str, str]]:
    """The parser directives (line number, lower-case name, value): only at the very top, before any comment,
    blank line or instruction; an unknown directive is a comment and ends them (BuildKit's DirectiveParser).
    A byte-order mark is the caller's to remove."""
    found: list[tuple[int, str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(raw.strip())
        if not match or match.group(1).lower() not in _DIRECTIVE_NAMES:
            break
        found.append((number, match.group(1).lower(), match.group(2)))
    return found


def instructions(text: str) -> Iterator[Instruction]:
    """Logical instructions with their first line number; heredoc bodies and comments are dropped."""
    lines = text.splitlines()
    escape = "\\"
    heading = directives(text)
    for _, name, value in heading:
        if name == "escape" and value in ("\\", "`"):
            escape = value
    index = len(heading)
    while index < len(lines):
        raw = lines[index]
        stripped = raw.strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        start = index
        parts: list[str] = []
        current = stripped
        while current.endswith(escape):
            parts.append(current[: -len(escape)])
            # comment and empty lines inside a continuation are skipped
            while index < len(lines) and (not lines[index].strip() or lines[index].strip().startswith("#")):
                index += 1
            if index >= len(lines):
                current = ""
                break
            current = lines[index].strip()
            index += 1
        parts.append(current)
        logical = " ".join(p.strip() for p in parts if p.strip())
        if not logical:
            continue
        keyword, *rest = logical.split(None, 1)
        args = rest[0] if rest else ""
        keyword = keyword.upper()
        unterminated = None
        if keyword in _HEREDOC_INSTRUCTIONS:
            for dash, _quote, delimiter in _HEREDOC.findall(args):
                found = False
                while index < len(lines):
                    body = lines[index]
                    index += 1
                    if (body.lstrip("\t") if dash else body) == delimiter:
                        found = True
                        break
                if not found:
                    unterminated = unterminated or delimiter
        yield Instruction(keyword, args.strip(), start, unterminated)


def expand(word: str, variables: Mapping[str, str]) -> str:
    """BuildKit word expansion: `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `\\$` escapes."""
    out: list[str] = []
    i = 0
    while i < len(word):
        char = word[i]
        if char == "\\" and i + 1 < len(word) and word[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if char != "$":
            out.append(char)
            i += 1
            continue
        if i + 1 < len(word) and word[i + 1] == "{":
            end = _closing_brace(word, i + 2)
            if end < 0:
                out.append(word[i:])
                break
            out.append(_expand_braced(word[i + 2 : end], variables))
            i = end + 1
            continue
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", word[i + 1 :])
        if match:
            out.append(variables.get(match.group(0), ""))
            i += 1 + len(match.group(0))
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(word: str, start: int) -> int:
    depth = 1
    for i in range(start, len(word)):
        if word[i] == "{":
            depth += 1
        elif word[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _expand_braced(body: str, variables: Mapping[str, str]) -> str:
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-+?])?(.*)$", body, re.DOTALL)
    if not match:
        return ""
    name, operator, rest = match.groups()
    value = variables.get(name)
    if operator is None:
        return value or ""
    word = expand(rest, variables)
    if operator == ":-":
        return value if value else word
    if operator == "-":
        return value if value is not None else word
    if operator == ":+":
        return word if value else ""
    if operator == "+":
        return word if value is not None else ""
    return value or ""  # `?` / `:?`: an unset value fails the build in BuildKit; nothing to reference here


def _split_flags(args: str) -> tuple[dict[str, list[str]], list[str]]:
    """Leading `--flag=value` options and the remaining words."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        words = args.split()
    flags: dict[str, list[str]] = {}
    rest_index = 0
    for rest_index, word in enumerate(words):  # noqa: B007
        if not word.startswith("--"):
            break
        name, _, value = word[2:].partition("=")
        flags.setdefault(name.lower(), []).append(value)
    else:
        rest_index = len(words)
    return flags, words[rest_index:]


def _arg_definitions(args: str) -> Iterator[tuple[str, str | None]]:
    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        words = args.split()
    for word in words:
        name, sep, default = word.partition("=")
        yield name, default if sep else None


def parse_dockerfile(text: str, build_args: Mapping[str, str]) -> DockerfileInfo:
    """Stages and external image references, with `ARG`s resolved from build args and defaults."""
    info = DockerfileInfo()
    global_scope: dict[str, str] = dict(_PLATFORM_ARGS)
    stage_scope: dict[str, str] = {}
    known_stages: dict[str, int] = {}  # stages declared so far: what a FROM may name
    steps = list(instructions(text))
    # BuildKit resolves `COPY --from` / `RUN --mount from=` after registering every stage, so a later stage
    # (by name or index) counts too; only FROM is limited to the stages above it.
    froms = [_split_flags(i.args)[1] for i in steps if i.keyword == "FROM"]
    all_stages = {w[2].lower() for w in froms if len(w) >= 3 and w[1].lower() == "as"}
    stage_count = sum(1 for w in froms if w)
    current: Stage | None = None

    def stage_label() -> str | None:
        if current is None:
            return None
        return current.name or str(current.index)

    def reference(value: str, via: Via, line: int) -> None:
        ref = expand(value, {**global_scope, **stage_scope})
        if not ref or ref.lower() in all_stages or ref.lower() == "scratch":
            return
        if ref.isdigit() and int(ref) < stage_count:
            return
        info.image_refs.append(ImageRef(ref, via, line, stage_label()))

    for instruction in steps:
        if instruction.keyword == "ARG":
            scope = global_scope if current is None else stage_scope
            for name, default in _arg_definitions(instruction.args):
                if name in build_args:
                    scope[name] = build_args[name]
                elif default is not None:
                    scope[name] = expand(default, {**global_scope, **stage_scope})
                elif current is not None and name in global_scope:
                    scope[name] = global_scope[name]  # `ARG NAME` in a stage re-imports the global value
        elif instruction.keyword == "FROM":
            flags, words = _split_flags(instruction.args)
            del flags
            if not words:
                continue
            base = expand(words[0], global_scope)
            stage_name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            stage_scope = {}
            if base.lower() not in known_stages and base.lower() != "scratch":
                info.image_refs.append(
                    ImageRef(base, "FROM", instruction.line, stage_name or str(len(info.stages)))
                )
            current = Stage(len(info.stages), stage_name, base, instruction.line)
            info.stages.append(current)
            if stage_name:
                known_stages[stage_name] = current.index
        elif instruction.keyword in ("COPY", "ADD"):
            flags, _ = _split_flags(instruction.args)
            for value in flags.get("from", []):
                reference(value, "COPY --from", instruction.line)
        elif instruction.keyword == "RUN":
            flags, _ = _split_flags(instruction.args)
            for mount in flags.get("mount", []):
                for field_text in mount.split(","):
                    key, _, value = field_text.partition("=")
                    if key.strip().lower() == "from" and value:
                        reference(value.strip(), "RUN --mount", instruction.line)
    return info


class DockerfileSyntaxError(InputError):
    """What BuildKit's Dockerfile frontend refuses before building, with the 1-based line (the reader of the
    file turns it into a file:line location)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
# Flags BuildKit's frontend knows, generously (newer ones included): an unknown one fails the build.
_FLAGS = {
    "FROM": {"platform"},
    "COPY": {"from", "chown", "chmod", "link", "parents", "exclude"},
    "ADD": {"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude", "unpack", "parents"},
    "RUN": {"mount", "network", "security", "device"},
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


def check_dockerfile(text: str) -> None:
    """Raise DockerfileSyntaxError for what BuildKit's default frontend refuses while parsing: an unknown
    instruction, an unknown flag on FROM/COPY/ADD/RUN/HEALTHCHECK, an unterminated heredoc, an instruction
    before the first FROM (other than ARG), no FROM at all, a malformed FROM, and `COPY --from=N` past the
    last stage. A `# syntax=` directive picks another frontend, whose grammar is not ours to judge: then
    nothing is checked. Only what is surely refused is refused."""
    text = text.removeprefix("\ufeff")
    if any(name == "syntax" for _, name, _ in directives(text)):
        return
    steps = list(instructions(text))
    stage_count = sum(1 for step in steps if step.keyword == "FROM")
    seen_from = False
    for step in steps:
        if step.keyword not in _INSTRUCTIONS:
            raise DockerfileSyntaxError(step.line, f"unknown instruction: {step.keyword}")
        if step.keyword == "ONBUILD":
            if "<<" in step.args:
                return  # a heredoc under ONBUILD: its body's lines are not ours to judge
            continue  # its inner instruction is not parsed here
        if step.unterminated is not None and _has_tight_heredoc(step.args, step.unterminated):
            raise DockerfileSyntaxError(step.line, f"unterminated heredoc: no line {step.unterminated!r}")
        if not seen_from and step.keyword not in ("ARG", "FROM"):
            raise DockerfileSyntaxError(
                step.line, f"{step.keyword} before the first FROM: no build stage in current context"
            )
        flags, words = _leading_flags(step.args)
        known = _FLAGS.get(step.keyword)
        if known is not None:
            for name in flags:
                if name not in known:
                    raise DockerfileSyntaxError(step.line, f"{step.keyword}: unknown flag: {name}")
        if step.keyword == "FROM":
            seen_from = True
            _check_from(step, words)
        elif step.keyword == "COPY":
            for value in flags.get("from", []):
                if value.isdigit() and int(value) >= stage_count:
                    raise DockerfileSyntaxError(
                        step.line,
                        f"COPY --from={value}: invalid stage index (the file has {stage_count} stages)",
                    )
    if not seen_from:
        raise DockerfileSyntaxError(
            steps[-1].line if steps else 1, "no FROM instruction: a Dockerfile needs at least one build stage"
        )


def _has_tight_heredoc(args: str, delimiter: str) -> bool:
    """Whether BuildKit surely sees a heredoc too: `<<WORD` / `<<-WORD` / `<<"WORD"` as a word of its own."""
    pattern = rf"(?:^|\s)<<-?([\"']?){re.escape(delimiter)}\1(?:\s|$)"
    return re.search(pattern, args) is not None and args.count('"') % 2 == 0 and args.count("'") % 2 == 0


def _leading_flags(args: str) -> tuple[dict[str, list[str]], list[str]]:
    """BuildKit's builder flags: the leading `--name[=value]` words (`--` ends them); names as written."""
    words = args.split()
    flags: dict[str, list[str]] = {}
    index = 0
    while index < len(words) and words[index].startswith("--"):
        if words[index] == "--":
            index += 1
            break
        name, _, value = words[index][2:].partition("=")
        flags.setdefault(name, []).append(value)
        index += 1
    return flags, words[index:]


def _check_from(step: Instruction, words: list[str]) -> None:
    if len(words) not in (1, 3):
        raise DockerfileSyntaxError(step.line, "FROM requires either one or three arguments")
    if len(words) == 3:
        if words[1].lower() != "as":
            raise DockerfileSyntaxError(step.line, f"FROM: expected 'AS' or 'as', not {words[1]!r}")
        if not _STAGE_NAME.match(words[2].lower()):
            raise DockerfileSyntaxError(step.line, f"invalid name for build stage: {words[2]!r}")


# -- what a build reads from its main context --------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A path the build reads from the main context: context-relative, cleaned ("" is the root), possibly with
    wildcards (Go `filepath.Match`, as BuildKit's copy resolves them)."""

    path: str
    line: int
    instruction: str  # "COPY", "ADD" or "RUN --mount"
    pattern: bool = True  # COPY/ADD sources are patterns; a bind mount's source is a path as written


@dataclass(frozen=True)
class Reads:
    """The main-context paths the target's build reads, or why they cannot be told exactly (`fallback`)."""

    sources: tuple[Source, ...] = ()
    fallback: str | None = None  # the reason the whole context counts
    bases: tuple[str, ...] = ()  # external images the needed stages build FROM (their ONBUILD triggers run)


_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
_LEADING_FLAG = re.compile(r"^--(\S*)\s*")
_WILDCARD = re.compile(r"[*?\[]")


class _Unresolved(Exception):
    """A construct the analyser cannot resolve exactly: the whole context counts."""


@dataclass
class _StageReads:
    index: int
    name: str | None
    base: str
    line: int
    sources: list[Source] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)  # `--from` / `from=` values (stage names or indexes)
    problem: str | None = None  # the first construct that cannot be resolved


def context_reads(text: str, build_args: Mapping[str, str], target: str | None) -> Reads:
    """The main-context paths the build of `target` (None: the last stage) reads: COPY/ADD sources without
    `--from`, `RUN --mount=type=bind` sources without `from=`, in the target's stage and every stage it needs
    (its FROM chain, `--from` / `from=` stages; BuildKit builds no other). Anything that cannot be resolved
    exactly gives a `fallback` reason instead."""
    text = text.removeprefix("\ufeff")
    for number, name, value in directives(text):
        if name == "syntax" and not official_frontend(value):
            return Reads(
                fallback=f"line {number}: `# syntax={value}` picks a frontend whose reads are not analysed"
            )
        if name == "escape" and value != "\\":
            return Reads(fallback=f"`# escape={value}`: words are not analysed with another escape character")
    stages = _stage_reads(text, build_args)
    if not stages:
        return Reads(fallback="no build stage")
    by_name = {s.name: s for s in stages if s.name}
    if target is None:
        top = stages[-1]
    elif target.lower() in by_name:
        top = by_name[target.lower()]
    else:
        return Reads(fallback=f"target stage {target!r} is not in the Dockerfile")
    needed: dict[int, _StageReads] = {}
    todo = [top]
    bases: list[str] = []
    while todo:
        stage = todo.pop()
        if stage.index in needed:
            continue
        needed[stage.index] = stage
        if stage.problem is not None:
            return Reads(fallback=stage.problem)
        base = stage.base.lower()
        parent = by_name.get(base)
        if parent is not None and parent.index < stage.index:
            todo.append(parent)
        elif base != "scratch" and stage.base not in bases:
            bases.append(stage.base)
        for value in stage.needs:
            if value.lower() in by_name:
                todo.append(by_name[value.lower()])
            elif value.isdigit() and int(value) < len(stages):
                todo.append(stages[int(value)])
            # else an image or a named context: not the main context
    sources = tuple(s for index in sorted(needed) for s in needed[index].sources)
    return Reads(sources, None, tuple(bases))


def trigger_reads(triggers: Sequence[str], base: str) -> Reads:
    """What a base image's ONBUILD triggers read from the child's main context (they run first in the stage
    built FROM it): COPY/ADD sources, RUN bind mounts. A trigger whose reads cannot be told exactly (a variable,
    `--from`, quotes) gives a `fallback` reason: the whole context counts."""
    stage = _StageReads(0, None, base, 0)
    for trigger in triggers:
        keyword, _, args = trigger.strip().partition(" ")
        step = Instruction(keyword.upper(), args.strip(), 0)
        what = f"FROM {base}: its ONBUILD trigger `{printable_trigger(trigger)}`"
        try:
            if step.keyword in ("COPY", "ADD"):
                if "from" in _strip_flags(step.args)[0]:
                    raise _Unresolved("copies from another stage or image, not analysed")
                if "$" in step.args:
                    raise _Unresolved("uses a variable, not analysed")
                _copy_reads(stage, step, {})
            elif step.keyword == "RUN":
                _mount_reads(stage, step, {})
                if stage.needs:
                    raise _Unresolved("mounts another stage or image, not analysed")
        except _Unresolved as exc:
            return Reads(fallback=f"{what} {exc}")
    sources = tuple(
        Source(s.path, s.line, f"ONBUILD {s.instruction} (FROM {base})", s.pattern) for s in stage.sources
    )
    return Reads(sources)


def printable_trigger(trigger: str) -> str:
    return trigger if len(trigger) <= 60 else trigger[:57] + "..."


def _stage_reads(text: str, build_args: Mapping[str, str]) -> list[_StageReads]:
    global_scope: dict[str, str] = {}
    stages: list[_StageReads] = []
    scope: dict[str, str] = {}  # ARGs with a known value in the current stage (what its words may use)
    touched: set[str] = set()  # names an ENV of this stage (or of a stage it builds FROM) sets
    touched_by: dict[str, set[str]] = {}  # stage name -> its ENV names
    current: _StageReads | None = None
    for step in instructions(text):
        keyword = step.keyword
        if keyword == "ARG":
            lookup = global_scope if current is None else scope
            for name, default in _arg_definitions(step.args):
                value = build_args.get(name)
                if value is None and default is not None:
                    value = None if _uses_unknown(default, lookup) else expand(default, lookup)
                elif value is None and current is not None:
                    value = global_scope.get(name)  # `ARG NAME` in a stage re-imports the global value
                if name in _PLATFORM_ARGS or name in touched:
                    value = None  # the builder's platform; or an ENV of the same name may win
                if value is None:
                    lookup.pop(name, None)
                else:
                    lookup[name] = value
        elif keyword == "FROM":
            _, words = _split_flags(step.args)
            base = expand(words[0], global_scope) if words else ""
            label = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            current = _StageReads(len(stages), label, base, step.line)
            stages.append(current)
            scope = {}
            touched = set(touched_by.get(base.lower(), set()))
            if label:
                touched_by[label] = touched
            if words and _uses_unknown(words[0], global_scope):
                current.problem = f"line {step.line}: FROM {words[0]} uses an ARG without a value"
        elif current is None or current.problem is not None:
            continue
        elif keyword == "ENV":
            words = step.args.split()
            names = (
                [w.split("=", 1)[0] for w in words if "=" in w] if words and "=" in words[0] else words[:1]
            )
            touched.update(names)
            for name in names:
                scope.pop(name, None)
        elif keyword == "ONBUILD":
            current.problem = f"line {step.line}: ONBUILD in a stage the target needs"
        elif keyword in ("COPY", "ADD"):
            try:
                _copy_reads(current, step, scope)
            except _Unresolved as exc:
                current.problem = f"line {step.line}: {keyword} {exc}"
        elif keyword == "RUN":
            try:
                _mount_reads(current, step, scope)
            except _Unresolved as exc:
                current.problem = f"line {step.line}: RUN {exc}"
    return stages


def _uses_unknown(word: str, scope: Mapping[str, str]) -> bool:
    return any((a or b) not in scope for a, b in _VARIABLE.findall(word))


def _word(word: str, scope: Mapping[str, str]) -> str:
    """A source word as BuildKit's shell lexer expands it; only the forms known exactly."""
    if any(c in word for c in "'\"\\`"):
        raise _Unresolved(f"source {word!r}: quotes or escapes in a source path are not analysed")
    if "$" in word:
        if word.count("$") != len(_VARIABLE.findall(word)):
            raise _Unresolved(f"source {word!r}: a `$` that is not a variable is not analysed")
        missing = sorted({a or b for a, b in _VARIABLE.findall(word)} - scope.keys())
        if missing:
            raise _Unresolved(f"source {word!r}: ${missing[0]} has no value known here")
        word = expand(word, scope)
    return word


def _clean(path: str) -> str:
    """BuildKit roots a source at the context: `path.Join("/", src)` (so `../x` is `x`); "" is the root."""
    import posixpath

    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    return cleaned.lstrip("/")


def _strip_flags(args: str) -> tuple[dict[str, list[str]], str]:
    flags: dict[str, list[str]] = {}
    rest = args
    while True:
        match = _LEADING_FLAG.match(rest)
        if not match:
            break
        token = match.group(1)
        if token == "":
            rest = rest[match.end() :]
            break
        name, _, value = token.partition("=")
        flags.setdefault(name.lower(), []).append(value)
        rest = rest[match.end() :]
    return flags, rest


def _copy_reads(stage: _StageReads, step: Instruction, scope: Mapping[str, str]) -> None:
    import json

    flags, rest = _strip_flags(step.args)
    # `--exclude` only narrows what the sources match and `--parents` copies the same files: the sources are
    # still every read (a superset with --exclude), whichever frontend version takes the flags
    for values in flags.values():
        if any(c in v for v in values for c in "'\"\\"):
            raise _Unresolved("a flag with quotes or escapes is not analysed")
    words: list[str] | None = None
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(w, str) for w in parsed):
            words = parsed
    if words is None:
        words = rest.split()
    if len(words) < 2:
        raise _Unresolved("needs a source and a destination")
    froms = flags.get("from", [])
    if froms:
        value = froms[-1]
        if "$" in value or not value:
            raise _Unresolved(f"--from={value}: not resolved")
        stage.needs.append(value)
        return
    for word in words[:-1]:
        if _HEREDOC_WORD.match(word) and not rest.startswith("["):
            continue  # a heredoc: its body is the file, nothing is read from the context
        if step.keyword == "ADD" and ("://" in word or word.startswith("git@")):
            raise _Unresolved(f"of a remote source {word}: a remote input")
        stage.sources.append(Source(_clean(_word(word, scope)), step.line, step.keyword))


def _mount_reads(stage: _StageReads, step: Instruction, scope: Mapping[str, str]) -> None:
    flags, _ = _strip_flags(step.args)
    for spec in flags.get("mount", []):
        if any(c in spec for c in "'\"\\$"):
            raise _Unresolved(f"--mount={spec}: quotes, escapes or variables are not analysed")
        fields: dict[str, str] = {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            fields[key.strip().lower()] = value.strip() if sep else "true"
        kind = fields.get("type", "bind")
        if "from" in fields:
            if not fields["from"]:
                raise _Unresolved(f"--mount={spec}: empty from=")
            stage.needs.append(fields["from"])
            continue
        if kind in ("cache", "tmpfs", "secret", "ssh"):
            continue
        if kind != "bind":
            raise _Unresolved(f"--mount={spec}: mount type {kind!r} is not analysed")
        source = fields.get("source", fields.get("src", ""))
        stage.sources.append(Source(_clean(source), step.line, "RUN --mount", pattern=False))


# -- what only BuildKit builds ------------------------------------------------------------------------------

# Flags the classic builder of dockerd 20.10 refuses (`RUN --mount`: "Unknown flag"; `COPY --chmod`: "requires
# BuildKit") or that only a newer BuildKit knows; `--from`, `--chown`, `FROM --platform` it accepts.
_CLASSIC_FLAGS = {"RUN": set[str](), "COPY": {"from", "chown"}, "ADD": {"chown"}}
_PLATFORM_WORD = re.compile(r"\$\{?(" + "|".join(sorted(_PLATFORM_ARGS)) + r")\b")


def buildkit_only(text: str) -> str | None:
    """The first construct the classic builder (`POST /build?version=1`, dockerd 20.10) would not build as
    BuildKit does, as `line N: what`; None when the classic builder gives BuildKit's image. Conservative: a
    `# syntax=` directive, a heredoc, a RUN flag (`--mount`, `--network`, ...), a COPY/ADD flag other than
    `--from`/`--chown` (`--chmod`, `--link`, ...), and a platform ARG (`TARGETARCH`, `BUILDPLATFORM`, ...: BuildKit
    predefines them, the classic builder leaves them empty; a build arg of that name too). Measured on 20.10:
    `ARG TARGETARCH` + `LABEL a=$TARGETARCH` gives `a=` with the classic builder."""
    text = text.removeprefix("\ufeff")
    for number, name, value in directives(text):
        if name == "syntax":
            return f"line {number}: `# syntax={value}` (another frontend)"
    for step in instructions(text):
        keyword, args = step.keyword, step.args
        if keyword == "ONBUILD":  # its trigger runs in a child build, which may take the classic path
            keyword, _, args = args.partition(" ")
            keyword, args = keyword.upper(), args.strip()
        if keyword in _HEREDOC_INSTRUCTIONS and _HEREDOC.search(args):
            return f"line {step.line}: a heredoc in {keyword}"
        known = _CLASSIC_FLAGS.get(keyword)
        if known is not None:
            flags, _ = _leading_flags(args)
            for name in flags:
                if name.lower() not in known:
                    return f"line {step.line}: {keyword} --{name}"
        if keyword == "ARG":
            for name, _default in _arg_definitions(args):
                if name in _PLATFORM_ARGS:
                    return f"line {step.line}: the platform ARG {name}"
        elif keyword == "FROM":
            platform = _PLATFORM_WORD.search(args)
            if platform is not None:
                return f"line {step.line}: the platform ARG {platform.group(1)}"
    return None
