"""Unit and property tests for compose variable substitution (planner.compose.interpolate).

Expected values were checked against docker compose v2.40.3 (see tests/conformance for the live oracle).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.base.errors import InputError, InterpolationError
from planner.compose.interpolate import substitute

ENV = {
    "SET": "v",
    "EMPTY": "",
    "OTHER": "o",
    "DOLLAR": "$X ${SET} $$",
    "\u017f": "long-s",
    "\u212a": "kelvin",
}
NAME_RE = re.compile(r"[_a-zA-Z\u017f\u212a][_a-zA-Z0-9\u017f\u212a]*")


def sub(template: str, env: dict[str, str] | None = None) -> str:
    return substitute(template, (ENV if env is None else env).get)


def missing(name: str, reason: str = "") -> str:
    return f"required variable {name} is missing a value" + (f": {reason}" if reason else "")


# --- truth table: operator x variable state -------------------------------------------------------------

STATES = ("SET", "EMPTY", "UNSET")
# template (X = the variable) -> outcome for SET ("v"), EMPTY (""), UNSET; an Exception entry is the error.
TRUTH_TABLE: dict[str, tuple[str | Exception, str | Exception, str | Exception]] = {
    "${X:-d}": ("v", "d", "d"),
    "${X-d}": ("v", "", "d"),
    "${X:?e}": ("v", Exception(missing("EMPTY", "e")), Exception(missing("UNSET", "e"))),
    "${X?e}": ("v", "", Exception(missing("UNSET", "e"))),
    "${X:+a}": ("a", "", ""),
    "${X+a}": ("a", "a", ""),
    "${X}": ("v", "", ""),
    "$X": ("v", "", ""),
}
TRUTH_CASES = [
    (template.replace("X", state), outcome)
    for template, outcomes in TRUTH_TABLE.items()
    for state, outcome in zip(STATES, outcomes, strict=True)
]


@pytest.mark.parametrize(("template", "expected"), TRUTH_CASES, ids=[c[0] for c in TRUTH_CASES])
def test_truth_table(template: str, expected: str | Exception) -> None:
    if isinstance(expected, Exception):
        with pytest.raises(InterpolationError) as info:
            sub(template)
        assert info.value.message == str(expected)
    else:
        assert sub(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # escapes and literal dollars
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("$$SET", "$SET"),
        ("$$$SET", "$v"),
        ("a$", "a$"),
        ("$-x $1 $ $é $.", "$-x $1 $ $é $."),
        ("cost: 5$", "cost: 5$"),
        ("$}", "$}"),
        # names: greedy, case-sensitive, Go's case folding admits U+017F and U+212A
        ("$SETx", ""),
        ("$SET-x", "v-x"),
        ("$SET{x}", "v{x}"),
        ("${set}", ""),
        ("$\u017f ${\u212a} ${K}", "long-s kelvin "),  # Go folds them to s/k; lookup keeps them
        # text around and multiple substitutions
        ("a${SET}b$SET.c", "avbv.c"),
        ("${SET}${OTHER}${UNSET}$SET", "vov"),
        ("}${SET}{", "}v{"),
        ("${SET:-d}}", "v}"),
        ("${UNSET-a}b}c}", "ab}c}"),
        ("${SET-x}}${OTHER}", "v}o"),
        ("${EMPTY:-a}-${EMPTY-b}-${UNSET:+c}", "a--"),
        # nesting in arguments
        ("${UNSET:-${OTHER}}", "o"),
        ("${UNSET:-${UNSET2:-${OTHER}x}y}", "oxy"),
        ("${UNSET-$OTHER and ${OTHER}}", "o and o"),
        ("${SET:+[${OTHER}]}", "[o]"),
        ("${UNSET:-$$}", "$"),
        ("${UNSET:-$}", "$"),
        ("${UNSET:-a$$b}", "a$b"),
        # the argument runs to the first occurrence of the operator; later operators are literal
        ("${UNSET:-/non:-alphanumeric}", "/non:-alphanumeric"),
        ("${UNSET-myerror?msg}", "myerror?msg"),
        ("${SET?bar-baz}", "v"),
        ("${UNSET-:?x}", ":?x"),
        ("${UNSET:-?}", "?"),
        ("${UNSET:-}", ""),
        ("${UNSET-}", ""),
        ("${SET:+}", ""),
        # brace counting: every `{` opens a level and skips the next character (compose-go quirk)
        ("${UNSET:-{}x}", "{}x"),
        ("${UNSET-{}}", "{}"),
        ("${UNSET:-{x}}", "{x}"),
        ("${UNSET-{}}x}", "{}}x"),
        ("${SET-{}}x}", "v"),
        ("${UNSET:-{{x}}y}", "{{x}y}"),
        ("${UNSET-a{}b}c}d}", "a{}b}cd}"),
        ("${UNSET:-\"quoted\" 'single'}", "\"quoted\" 'single'"),
        # values are never re-interpolated
        ("${DOLLAR}", "$X ${SET} $$"),
        ("${UNSET:-$DOLLAR}", "$X ${SET} $$"),
    ],
)
def test_substitute(template: str, expected: str) -> None:
    assert sub(template) == expected


@pytest.mark.parametrize(
    ("template", "blamed"),
    [
        ("${", "${"),
        ("${}", "${}"),
        ("${ }", "${ }"),
        ("${ SET}", "${ SET}"),
        ("${SET }", "${SET }"),
        ("${SET!}", "${SET!}"),
        ("${1A}", "${1A}"),
        ("${SET:=x}", "${SET:=x}"),
        ("${SET:x}", "${SET:x}"),
        ("${SET:-x", "${SET:-x"),
        ("ok ${SET} then ${", "ok ${SET} then ${"),
        ("${SET:-x\ny}", "${SET:-x\ny}"),  # `.` does not cross a newline
        # the innermost template being interpolated is blamed: a default, or the text after a cut
        ("x ${UNSET:-${}} y", "${}"),
        ("${SET-x${}y}", "x${}y"),
        ("${SET:-a}${}", "${}"),
    ],
)
def test_invalid_format(template: str, blamed: str) -> None:
    with pytest.raises(InterpolationError) as info:
        sub(template)
    error = info.value
    assert error.message == f'invalid interpolation format: "{blamed}"'.replace("\n", "\\n")
    assert error.hint is not None
    assert "escape any $ with another $" in error.hint
    assert error.location is None
    assert isinstance(error, InputError)
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${UNSET:?}", missing("UNSET")),
        ("${UNSET?}", missing("UNSET")),
        ("not ok ${UNSET:?Mandatory ${OTHER}}", missing("UNSET", "Mandatory o")),
        ("${UNSET:?${UNSET2}}", missing("UNSET")),  # reason interpolates to "": no colon
        ("${UNSET?bar-baz}", missing("UNSET", "bar-baz")),
        ("${UNSET:?a:?b}", missing("UNSET", "a:?b")),
        # arguments are interpolated even when unused, so their errors surface
        ("${SET:-${UNSET:?inner}}", missing("UNSET", "inner")),
        ("${UNSET:+${UNSET2?x}}", missing("UNSET2", "x")),
        ("${SET?${UNSET:?why}}", missing("UNSET", "why")),
        # the first error in evaluation order wins
        ("${A:?first} ${B:?second}", missing("A", "first")),
        ("${A:?${B:?inner}}", missing("B", "inner")),
    ],
)
def test_required_errors(template: str, message: str) -> None:
    with pytest.raises(InterpolationError) as info:
        sub(template)
    assert info.value.message == message
    assert info.value.location is None


def test_long_chain_does_not_recurse() -> None:
    template = "${SET-x}" * 2000  # each cut recursed in compose-go; Python must not
    assert sub(template) == "v" * 2000


def test_absurd_nesting_is_an_input_error() -> None:
    template = "${UNSET:-" * 2000 + "x" + "}" * 2000
    with pytest.raises(InterpolationError):
        sub(template)


def test_lookup_distinguishes_empty_from_unset() -> None:
    calls: list[str] = []

    def lookup(name: str) -> str | None:
        calls.append(name)
        return {"E": ""}.get(name)

    assert substitute("${E-d}|${U-d}|$E", lookup) == "|d|"
    assert calls == ["E", "U", "E"]


# --- property tests ---------------------------------------------------------------------------------------

ANY_TEXT = st.text(alphabet=st.sampled_from(list("$${}:-?+_aZ1 \n\"'\u017f")) | st.characters(), max_size=40)
NAMES = st.sampled_from(["SET", "EMPTY", "UNSET", "OTHER", "a_1", "_"])
PLAIN = st.text(alphabet=st.characters(blacklist_characters="${}\n"), max_size=12)
VALUES = st.text(max_size=20)
OPERATORS = st.sampled_from([":-", "-", ":?", "?", ":+", "+"])


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert sub(text) == text


@given(ANY_TEXT)
def test_escaped_text_round_trips(text: str) -> None:
    assert sub(text.replace("$", "$$")) == text


@given(ANY_TEXT)
def test_total_and_only_valid_names_are_looked_up(text: str) -> None:
    looked_up: list[str] = []

    def lookup(name: str) -> str | None:
        looked_up.append(name)
        return ENV.get(name)

    try:
        result = substitute(text, lookup)
    except InterpolationError:
        pass
    else:
        assert isinstance(result, str)
        if "$" not in text:
            assert result == text
    assert all(NAME_RE.fullmatch(name) and name in text for name in looked_up)


@given(VALUES, st.sampled_from(["${X}", "$X", "${X-d}", "${X?e}", "${UNSET:-$X}", "${X:+$X}"]))
def test_values_are_never_reinterpolated(value: str, template: str) -> None:
    assert sub(template, {"X": value}) == value


@given(st.text(min_size=1, max_size=20), OPERATORS, PLAIN)
def test_operators_on_set_nonempty_variable(value: str, operator: str, arg: str) -> None:
    expected = arg if operator in (":+", "+") else value
    assert sub(f"${{X{operator}{arg}}}", {"X": value}) == expected


@given(OPERATORS, PLAIN)
def test_operators_on_unset_variable(operator: str, arg: str) -> None:
    template = f"${{X{operator}{arg}}}"
    if operator in (":?", "?"):
        with pytest.raises(InterpolationError, match=re.escape(missing("X", arg))):
            sub(template, {})
    else:
        assert sub(template, {}) == (arg if operator in (":-", "-") else "")


def well_formed() -> st.SearchStrategy[str]:
    """Templates without stray braces, `$` or newlines in literal text: the grammar a sane user writes."""
    leaf = st.one_of(PLAIN, st.just("$$"), NAMES.map(lambda n: f"${n}"), NAMES.map(lambda n: f"${{{n}}}"))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        arg = st.lists(inner, max_size=3).map("".join)
        braced = st.builds(lambda n, op, a: f"${{{n}{op}{a}}}", NAMES, OPERATORS, arg)
        return st.lists(st.one_of(inner, braced), max_size=4).map("".join)

    return st.recursive(leaf, extend, max_leaves=12)


class Required(Exception):
    pass


def reference(template: str, env: dict[str, str]) -> str:
    """A plain recursive-descent evaluator; compose's regex machinery must agree with it on sane input."""

    def parse(i: int, in_arg: bool) -> tuple[str, int]:
        out = ""
        while i < len(template):
            char = template[i]
            if char == "}" and in_arg:
                return out, i
            if char != "$":
                out, i = out + char, i + 1
                continue
            nxt = template[i + 1 : i + 2]
            if nxt == "$":
                out, i = out + "$", i + 2
            elif nxt == "{":
                name = NAME_RE.match(template, i + 2)
                assert name is not None
                j = name.end()
                if template[j] == "}":
                    out, i = out + env.get(name.group(), ""), j + 1
                    continue
                op = template[j : j + 2] if template[j] == ":" else template[j]
                arg, j = parse(j + len(op), in_arg=True)
                out, i = out + apply(op, name.group(), arg), j + 1
            elif name := NAME_RE.match(template, i + 1):
                out, i = out + env.get(name.group(), ""), name.end()
            else:
                out, i = out + "$", i + 1
        return out, i

    def apply(op: str, name: str, arg: str) -> str:
        value = env.get(name)
        if op.endswith("?"):
            if value is None or (op == ":?" and not value):
                raise Required(missing(name, arg))
            return value
        if op.endswith("-"):
            return arg if value is None or (op == ":-" and not value) else value
        return arg if value is not None and (op == "+" or value) else ""

    return parse(0, in_arg=False)[0]


@given(well_formed(), st.dictionaries(NAMES, st.sampled_from(["", "v", "$x}"]), max_size=6))
def test_matches_reference_on_well_formed_templates(template: str, env: dict[str, str]) -> None:
    try:
        expected: str | Required = reference(template, env)
    except Required as error:
        expected = error
    if isinstance(expected, Required):
        with pytest.raises(InterpolationError) as info:
            sub(template, env)
        assert info.value.message == str(expected)
    else:
        assert sub(template, env) == expected
