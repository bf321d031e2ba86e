"""Differential tests: planner's substitute() against the real `docker compose config` (v2.40.3).

Templates go in as build args of one service, many per compose file, so one binary run checks a whole
batch. Compose aborts on the first failing value (in Go map order), so templates that planner expects to
fail are each run alone, in parallel; any template whose outcome differs is reported.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.base.errors import InterpolationError
from planner.compose.interpolate import substitute
from tests.oracle import require_compose_v2, run_compose_config, unescape_dollars

pytestmark = pytest.mark.oracle

Outcome = tuple[str, str]  # ("ok", value) or ("error", planner-style message)
ARG_PATH = "services.s.build.args."
INVALID_MARK = "invalid interpolation format for "
ESCAPE_LINE = "You may need to escape any $ with another $.\n"
ERROR_MARK = "error while interpolating "


@pytest.fixture(scope="module", autouse=True)
def _binary() -> str:
    return require_compose_v2()


def planner_outcome(template: str, env: dict[str, str]) -> Outcome:
    try:
        return ("ok", substitute(template, env.get))
    except InterpolationError as error:
        return ("error", error.message)


def _compose_error(stderr: str) -> tuple[str, Outcome]:
    """(arg key, outcome) from compose's error output, rephrased as planner's message."""
    if (start := stderr.rfind(INVALID_MARK)) >= 0:
        key, _, template = stderr[start + len(INVALID_MARK) :].partition(".\n" + ESCAPE_LINE)
        template = template.removesuffix("\n")
        return key, ("error", f"invalid interpolation format: {json.dumps(template, ensure_ascii=False)}")
    if (start := stderr.rfind(ERROR_MARK)) >= 0:
        key, _, message = stderr[start + len(ERROR_MARK) :].partition(": ")
        return key, ("error", message.removesuffix("\n"))
    raise AssertionError(f"unrecognised compose failure:\n{stderr}")


def _run(templates: dict[str, str], env: dict[str, str]) -> dict[str, Outcome]:
    """Run one compose file; all values on success, else only the failing key's error."""
    doc = {"services": {"s": {"image": "busybox", "build": {"context": ".", "args": templates}}}}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "compose.yaml").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        proc = run_compose_config(tmp, ["-f", "compose.yaml"], env)
    if proc.returncode != 0:
        key, outcome = _compose_error(proc.stderr)
        return {key.removeprefix(ARG_PATH): outcome}
    args = unescape_dollars(json.loads(proc.stdout))["services"]["s"]["build"]["args"]
    return {key: ("ok", args[key]) for key in templates}


def mismatches(templates: list[str], env: dict[str, str]) -> list[str]:
    """Compare planner with compose on every template; returns human-readable disagreements."""
    mine = {f"A{i}": planner_outcome(t, env) for i, t in enumerate(templates)}
    source = {f"A{i}": t for i, t in enumerate(templates)}
    good = {key: source[key] for key, outcome in mine.items() if outcome[0] == "ok"}
    bad = [key for key, outcome in mine.items() if outcome[0] == "error"]
    jobs = ([good] if good else []) + [{key: source[key]} for key in bad]
    theirs: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:  # the binary mostly waits; more than 2x cores pays
        for result in pool.map(lambda job: _run(job, env), jobs):
            theirs.update(result)
    problems = []
    for key, expected in theirs.items():
        if mine.get(key) != expected:
            problems.append(f"{source[key]!r}: planner {mine.get(key)!r}, compose {expected!r}")
    if good and len(theirs) < len(mine):  # compose failed on a value planner accepted: others unchecked
        problems.append("(batch aborted by the failure above; remaining templates unchecked)")
    return problems


# --- fixed cases: the truth table and the documented quirks --------------------------------------------

FIXED_ENV = {"SET": "v", "EMPTY": "", "OTHER": "o", "DOLLAR": "$X ${SET} $$", "\u017f": "s", "\u212a": "k"}
OPERATOR_FORMS = ["${X:-d}", "${X-d}", "${X:?e}", "${X?e}", "${X:+a}", "${X+a}", "${X}", "$X"]
FIXED_TEMPLATES = [
    form.replace("X", state) for form in OPERATOR_FORMS for state in ("SET", "EMPTY", "UNSET")
] + [
    "$$",
    "$${SET}",
    "$$$SET",
    "a$ $-x $1 $é $}",
    "$SETx $SET-x $SET{x} ${set}",
    "$\u017f ${\u212a}",
    "a${SET}b$SET.c ${OTHER}${UNSET}",
    "}${SET}{",
    "${SET:-d}}",
    "${UNSET-a}b}c}",
    "${SET-x}}${OTHER}",
    "${UNSET:-${UNSET2:-${OTHER}x}y}",
    "${SET:+[${OTHER}]}",
    "${UNSET:-$$} ${UNSET:-$} ${UNSET:-a$$b}",
    "${UNSET:-/non:-alphanumeric} ${UNSET-myerror?msg} ${SET?bar-baz} ${UNSET-:?x}",
    "${UNSET:-{}x}",
    "${UNSET-{}}",
    "${UNSET:-{x}}",
    "${UNSET-{}}x} ${SET-{}}x}",
    "${UNSET:-{{x}}y}",
    "${UNSET-a{}b}c}d}",
    "${UNSET:-\"quoted\" 'single'}",
    "${DOLLAR} ${UNSET:-$DOLLAR}",
    "${",
    "${}",
    "${ SET}",
    "${SET }",
    "${SET!}",
    "${1A}",
    "${SET:=x}",
    "${SET:-x",
    "ok ${SET} then ${",
    "${SET:-x\ny}",
    "x ${UNSET:-${}} y",
    "${SET-x${}y}",
    "${SET:-a}${}",
    "${UNSET:?}",
    "${UNSET:?Mandatory ${OTHER}}",
    "${UNSET:?${UNSET2}}",
    "${UNSET:?a:?b}",
    "${SET:-${UNSET:?inner}}",
    "${UNSET:+${UNSET2?x}}",
    "${SET?${UNSET:?why}}",
    "${A:?first} ${B:?second}",
    "${A:?${B:?inner}}",
]


def test_fixed_cases_match_compose() -> None:
    assert mismatches(FIXED_TEMPLATES, FIXED_ENV) == []


def test_oracle_harness_sees_errors() -> None:
    """Guard against a silently passing oracle (e.g. a wrapper that drops the exit status)."""
    assert _run({"A0": "${UNSET:?boom}"}, {}) == {
        "A0": ("error", "required variable UNSET is missing a value: boom")
    }
    assert _run({"A0": "${"}, {}) == {"A0": ("error", 'invalid interpolation format: "${"')}


# --- random templates -----------------------------------------------------------------------------------

# Invalid names/operators are drawn rarely: an invalid `${` fails the whole value and masks the rest.
VALID_NAMES = ["A", "B", "ab", "_x", "C1", "\u017f", "\u212a"]
NAMES = st.sampled_from(VALID_NAMES * 12 + ["", "1A", " A", "A ", "a.b", "a-b"])
OPERATORS = st.sampled_from([":-", "-", ":?", "?", ":+", "+"] * 12 + ["", ":", "=", ":=", "!"])
LITERAL = st.text(alphabet=st.sampled_from(list("ab Z9_${}:-?+\"'\\\té\n")), max_size=6)
ENV_VALUES = st.sampled_from(["", "v", "x y", "$A", "${B}", "}", "a:-b", "é"])


def templates() -> st.SearchStrategy[str]:
    leaf = st.one_of(
        LITERAL,
        st.sampled_from(["$$", "{}", "{"]),
        NAMES.map(lambda n: "$" + n),
        NAMES.map(lambda n: "${" + n + "}"),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        braced = st.builds(
            lambda name, op, arg, close: "${" + name + op + arg + close,
            NAMES,
            OPERATORS,
            inner,
            st.sampled_from(["}"] * 8 + ["", "}}"]),
        )
        return st.lists(inner | braced, min_size=1, max_size=4).map("".join)

    return st.recursive(leaf, extend, max_leaves=10)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(
    st.lists(templates(), min_size=50, max_size=50),
    st.dictionaries(st.sampled_from(VALID_NAMES), ENV_VALUES),
)
def test_random_templates_match_compose(batch: list[str], env: dict[str, str]) -> None:
    assert mismatches(batch, env) == []
