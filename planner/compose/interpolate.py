"""Variable substitution in compose files, matching Docker Compose v2 (compose-go ``template``, v2.9.x).

The behaviour mirrors compose-go's regex-driven algorithm rather than a clean grammar, because compose
files in the wild rely on its quirks and a plan must interpolate exactly as ``docker compose`` would:

* A match starts at ``$``: ``$$`` is a literal ``$``; ``$NAME`` / ``${NAME}`` look up NAME
  (``[_a-zA-Z][_a-zA-Z0-9]*``; Go's case-insensitive class also admits U+017F and U+212A, which fold to
  ``s``/``k``). ``${`` followed by anything else is an error; ``$`` followed by anything else is literal.
* ``${NAME<op>ARG}`` with op in ``:? ? :- - :+ +``: the regex's greedy ``.*}`` first swallows up to the
  *last* ``}`` on the line (``.`` never crosses ``\\n``); the match is then cut after its first "balanced"
  ``}``, where every ``{`` (not only ``${``) opens a level and the character after a ``{`` is skipped.
  The text after the cut is interpolated on its own and appended.
* The operator is the first of the six found in the match; ARG is everything after the first occurrence
  of that operator. ARG is interpolated *before* the variable is consulted, so an error inside an unused
  default (``${SET:-${UNSET:?x}}``) still fails, as in compose-go v2.9.
* Unset variables without an operator become ``""`` (compose only warns).
* Errors: the first one in evaluation order wins. An invalid ``${`` reports the innermost template being
  interpolated (a default, or the text after a cut), as compose does; a required variable reports
  ``required variable NAME is missing a value[: REASON]`` with REASON interpolated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from planner.base import inputs
from planner.base.errors import InterpolationError

Lookup = Callable[[str], str | None]
"""Returns a variable's value, or None when it is unset (distinct from set-but-empty)."""

_NAME_START = "_a-zA-Z\u017f\u212a"
_NAME = f"[{_NAME_START}][{_NAME_START}0-9]*"
# Same alternatives, order and greediness as compose-go's DefaultPattern; Python's backtracking engine
# picks the same leftmost-first submatches as Go's RE2 here.
_PATTERN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME})|\{{(?:(?P<braced>{_NAME}(?::?[-+?].*)?)\}}|(?P<invalid>)))"
)
# compose-go sorts the operators by first index in the match; list order only matters for absent ones.
_OPERATORS = (":?", "?", ":-", "-", ":+", "+")
_ESCAPE_HINT = "You may need to escape any $ with another $."


def substitute(template: str, lookup: Lookup, on_unset: Callable[[str], None] | None = None) -> str:
    """Interpolate one string value. Raises planner.base.errors.InterpolationError (no location; the caller adds file:line).
    `on_unset` hears of each unset variable that defaults to a blank string (`$X`, `${X}`: Compose warns)."""
    if inputs.is_recording():
        lookup = inputs.tracked(lookup)
    try:
        return _substitute(template, lookup, on_unset)
    except RecursionError:
        # Go has no practical depth limit; refuse rather than crash on absurd nesting.
        raise InterpolationError("interpolation nested too deeply", hint=_ESCAPE_HINT) from None


def _substitute(template: str, lookup: Lookup, on_unset: Callable[[str], None] | None = None) -> str:
    out: list[str] = []
    # Work list of (text, template-to-blame): the text after a cut is a separate compose-go call, so an
    # invalid `${` in it is reported against that text. A stack keeps long `${A-x}${B-y}...` chains flat.
    pending: list[tuple[str, str]] = [(template, template)]
    while pending:
        text, blame = pending.pop()
        match = _PATTERN.search(text)
        if match is None:
            out.append(text)
            continue
        out.append(text[: match.start()])
        value, rest = _replace(match.group(0), blame, lookup, on_unset)
        out.append(value)
        pending.append((text[match.end() :], blame))
        if rest:
            pending.append((rest, rest))
    return "".join(out)


def _plain(name: str, lookup: Lookup, on_unset: Callable[[str], None] | None) -> str:
    value = lookup(name)
    if value is None and on_unset is not None:
        on_unset(name)
    return value or ""


def _replace(
    matched: str, blame: str, lookup: Lookup, on_unset: Callable[[str], None] | None = None
) -> tuple[str, str]:
    """Evaluate one regex match; returns its value and the text after the cut (still to interpolate)."""
    cut = _first_closing_brace(matched)
    head, rest = (matched[: cut + 1], matched[cut + 1 :]) if cut >= 0 else (matched, "")
    groups = _PATTERN.match(head)
    if groups is None or groups.group("invalid") is not None:
        raise InterpolationError(
            f"invalid interpolation format: {json.dumps(blame, ensure_ascii=False)}", hint=_ESCAPE_HINT
        )
    if groups.group("escaped") is not None:
        return "$", ""
    name = groups.group("named")
    if name is not None:
        return _plain(name, lookup, on_unset), ""
    braced = groups.group("braced")
    operator = _operator_for(matched)
    if operator is None or operator not in braced:
        # compose-go falls back to a plain lookup and drops the rest; only reachable with no operator,
        # where the match ends at the first `}` and the rest is empty anyway.
        return _plain(braced, lookup, on_unset), ""
    name, _, arg = braced.partition(operator)
    return _apply(operator, name, _substitute(arg, lookup, on_unset), lookup), rest


def _apply(operator: str, name: str, arg: str, lookup: Lookup) -> str:
    value = lookup(name)
    if operator in (":?", "?"):
        if value is None or (operator == ":?" and value == ""):
            message = f"required variable {name} is missing a value"
            raise InterpolationError(f"{message}: {arg}" if arg else message)
        return value
    if operator == ":-":
        return value or arg
    if operator == "-":
        return arg if value is None else value
    if operator == ":+":
        return arg if value else ""
    return "" if value is None else arg  # "+"


def _operator_for(matched: str) -> str | None:
    """The operator occurring first in the whole match (compose-go looks beyond the cut)."""
    found = [(index, op) for op in _OPERATORS if (index := matched.find(op)) >= 0]
    return min(found)[1] if found else None


def _first_closing_brace(text: str) -> int:
    """compose-go's getFirstBraceClosingIndex: any `{` opens a level and skips the next character."""
    depth = 0
    i = 0
    while i < len(text):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        if text[i] == "{":
            depth += 1
            i += 1
        i += 1
    return -1
