"""Differential tests: planner's resolve_environment() against the real `docker compose config` (v2.40.3).

Hypothesis builds random scenarios (one to three env files plus process variables). Each example is a
batch of scenarios whose names all carry a per-scenario prefix (``E7_A``), so the batch's files can be
concatenated into one ``--env-file`` per position and checked in a single compose run: compose lists every
name under ``environment:`` of one service, which it resolves from the project environment (unset names
come back as null). Scenarios that planner rejects are each run alone and must fail in compose too.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from planner.base.errors import EnvFileError
from planner.compose.envfile import resolve_environment
from tests.oracle import require_compose_v2, run_compose_config, unescape_dollars

pytestmark = pytest.mark.oracle

MAX_FILES = 3
# Defined keys may use every key character; references need an interpolation name.
KEY_NAMES = ("A", "B", "C", "lower", "x.y", "a-b", "k[0]")
REF_NAMES = ("A", "B", "C", "lower", "P", "U")
PROCESS_NAMES = ("A", "B", "P", "U")
COMPOSE_LINE = re.compile(r"line (\d+): ")
# Planner message -> the text compose uses for the same failure.
ERROR_KINDS = {
    "unexpected character": "unexpected character",
    "key cannot contain a space": "key cannot contain a space",
    "unterminated quoted value": "unterminated quoted value",
    "required variable": "required variable",
    "invalid interpolation format": "Invalid template",
}


@pytest.fixture(scope="module", autouse=True)
def _binary() -> str:
    return require_compose_v2()


@dataclass(frozen=True)
class Scenario:
    """Env files whose lines still hold `@` where the scenario prefix goes, plus process variables."""

    files: tuple[tuple[str, ...], ...]  # per file, its statements (each may span lines)
    process: tuple[tuple[str, str], ...]
    newline: str

    def render(self, prefix: str) -> tuple[list[str], dict[str, str]]:
        texts = ["".join(s.replace("@", prefix) + self.newline for s in f) for f in self.files]
        return texts, {prefix + name: value for name, value in self.process}


# --- strategies ------------------------------------------------------------------------------------------

words = st.text(alphabet="abcXYZ019_-.,/:%+=", min_size=1, max_size=6)
references = st.one_of(
    st.sampled_from(REF_NAMES).map(lambda n: f"$@{n}"),
    st.sampled_from(REF_NAMES).map(lambda n: f"${{@{n}}}"),
    st.tuples(st.sampled_from(REF_NAMES), st.sampled_from([":-", "-", ":+", "+"]), words).map(
        lambda t: f"${{@{t[0]}{t[1]}{t[2]}}}"
    ),
    st.just("$$"),
    st.just("$ "),
)
unquoted_value = st.lists(
    st.one_of(words, references, st.sampled_from([" ", "  ", "\t", "#", "'", '"', "\\", "`", "\\n"])),
    max_size=5,
).map(lambda parts: "".join(parts).lstrip("'\""))  # a leading quote would make it a quoted value
single_quoted = st.lists(
    st.one_of(
        words, references, st.sampled_from([" ", "\n", "#", " # ", '"', "\\'", "\\\\", "\\n", "\\$", "`"])
    ),
    max_size=5,
).map(lambda parts: "'" + "".join(parts) + "'")
double_quoted = st.lists(
    st.one_of(
        words,
        references,
        st.sampled_from(
            [
                " ",
                "\n",
                "#",
                " # ",
                "'",
                '\\"',
                "\\\\",
                "\\n",
                "\\t",
                "\\r",
                "\\$",
                "\\q",
                "\\0101",
                "\\01",
                "`",
            ]
        ),
    ),
    max_size=5,
).map(lambda parts: '"' + "".join(parts) + '"')
keys = st.sampled_from(KEY_NAMES).map(lambda n: "@" + n)
indent = st.sampled_from(["", "", "  ", "\t"])


@st.composite
def assignments(draw: st.DrawFn) -> str:
    export = draw(st.sampled_from(["", "", "export ", "export\t", "export  "]))
    separator = draw(st.sampled_from(["=", "=", "=", " = ", ":", ": ", "= "]))
    value = draw(st.one_of(unquoted_value, single_quoted, double_quoted))
    if value[:1] in "'\"":
        value += draw(st.sampled_from(["", "", " ", " # note", "#note", "  "]))
    elif draw(st.booleans()):
        value += draw(st.sampled_from([" # note", " #", "   # a # b"]))
    return f"{draw(indent)}{export}{draw(keys)}{separator}{value}"


statements = st.one_of(
    assignments(),
    assignments(),
    assignments(),
    st.tuples(indent, st.sampled_from(["", "export "]), keys, st.sampled_from(["", " ", "\t"])).map("".join),
    st.sampled_from(["", "# comment", "  # @A=x", "#", "   "]),
)
# Each of these makes compose reject the file; at most one per scenario, so most scenarios stay batchable.
broken_statements = st.sampled_from(
    [
        "@A$=1",
        "@A @B=1",
        "@A @B",
        "@bad!name",
        '@A="unterminated',
        "@A='unterminated",
        "@A=${@B",
        '@A="${@U:?needed}"',
        "@A=${@U:-a #b}",
    ]
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    files = [draw(st.lists(statements, max_size=6)) for _ in range(draw(st.integers(1, MAX_FILES)))]
    if draw(st.sampled_from([False] * 9 + [True])):  # not integers(): Hypothesis favours 0
        target = draw(st.sampled_from(files))
        target.insert(draw(st.integers(0, len(target))), draw(broken_statements))
    process = draw(
        st.dictionaries(st.sampled_from(PROCESS_NAMES), st.text(alphabet="pq $#{}'\"\\", max_size=4))
    )
    return Scenario(
        files=tuple(tuple(f) for f in files),
        process=tuple(sorted(process.items())),
        newline=draw(st.sampled_from(["\n", "\n", "\n", "\r\n"])),
    )


# --- running both sides ----------------------------------------------------------------------------------

Outcome = tuple[str, Any]  # ("ok", {name: value or None}) or ("error", (message kind, file index, line))


def _names(prefix: str) -> list[str]:
    return [prefix + n for n in sorted(set(KEY_NAMES) | set(REF_NAMES) | set(PROCESS_NAMES))]


def _write_files(tmp: str, texts: Sequence[str]) -> list[str]:
    names = [f"f{i}.env" for i in range(len(texts))]
    for name, text in zip(names, texts, strict=True):
        Path(tmp, name).write_text(text, encoding="utf-8")
    return names


def planner_outcome(scenario: Scenario, prefix: str) -> Outcome:
    texts, process = scenario.render(prefix)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, name) for name in _write_files(tmp, texts)]
        try:
            env = resolve_environment(paths, process)
        except EnvFileError as error:
            assert error.location is not None
            kind = next((k for k in ERROR_KINDS if error.message.startswith(k)), error.message)
            return "error", (kind, Path(error.location.file).name, error.location.line)
    return "ok", {name: env.get(name) for name in _names(prefix)}


def compose_run(texts_per_file: Sequence[str], process: dict[str, str], names: list[str]) -> Outcome:
    """One compose run; the environment of `names` or the error compose reports."""
    doc = {"services": {"s": {"image": "busybox", "environment": names}}}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "compose.yaml").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        args = ["-f", "compose.yaml"]
        for name in _write_files(tmp, texts_per_file):
            args += ["--env-file", name]
        proc = run_compose_config(tmp, args, process)
    if proc.returncode != 0:
        return "error", proc.stderr
    environment = unescape_dollars(json.loads(proc.stdout))["services"]["s"].get("environment", {})
    return "ok", {name: environment.get(name) for name in names}


def compose_single(scenario: Scenario, prefix: str) -> Outcome:
    texts, process = scenario.render(prefix)
    return compose_run(texts, process, _names(prefix))


# A line that may be a bare key with a space before its newline, which compose-go's line counter skips.
MAYBE_DRIFTING_LINE = re.compile(r"[ \t]*(?:export[ \t]+)?[^=:#\s]+[ \t]* [ \t]*\r?")


def _compose_line_for(scenario: Scenario, file_name: str, line: int) -> int | None:
    """compose-go's line for our `line`, or None when its drifting counter makes that uncertain."""
    texts, _ = scenario.render("E_")
    before = texts[int(file_name.removeprefix("f").removesuffix(".env"))].split("\n")[: line - 1]
    return None if any(MAYBE_DRIFTING_LINE.fullmatch(text) for text in before) else line


def check_error(scenario: Scenario, expected: tuple[str, str, int | None], stderr: Any) -> list[str]:
    kind, file_name, line = expected
    problems = []
    if f"{file_name}: " not in stderr or ERROR_KINDS.get(kind, kind) not in stderr:
        problems.append(f"expected {kind} in {file_name}:{line}, compose said {stderr!r}")
    elif kind in ("unexpected character", "key cannot contain a space") and line is not None:
        found = COMPOSE_LINE.search(stderr)
        expected_line = _compose_line_for(scenario, file_name, line)
        if found is None or expected_line not in (None, int(found.group(1))):
            problems.append(f"line {line} vs compose: {stderr!r}")
    return problems


def mismatches(batch: Sequence[Scenario]) -> list[str]:
    prefixes = [f"E{i}_" for i in range(len(batch))]
    mine = [planner_outcome(s, p) for s, p in zip(batch, prefixes, strict=True)]
    good = [i for i, outcome in enumerate(mine) if outcome[0] == "ok"]
    bad = [i for i, outcome in enumerate(mine) if outcome[0] == "error"]
    theirs: dict[int, Outcome] = {}
    if good:
        texts = ["" for _ in range(MAX_FILES)]
        process: dict[str, str] = {}
        names: list[str] = []
        for i in good:
            rendered, env = batch[i].render(prefixes[i])
            for position, text in enumerate(rendered):
                texts[position] += text
            process.update(env)
            names += _names(prefixes[i])
        status, result = compose_run(texts, process, names)
        if status == "ok":
            theirs.update({i: ("ok", {n: result[n] for n in _names(prefixes[i])}) for i in good})
        else:  # someone in the batch broke it: find out who, one by one
            bad += good
    with ThreadPoolExecutor(max_workers=4) as pool:
        singles = pool.map(lambda i: (i, compose_single(batch[i], prefixes[i])), bad)
        theirs.update(dict(singles))
    problems = []
    for i, (status, expected) in enumerate(mine):
        got_status, got = theirs[i]
        texts, process = batch[i].render(prefixes[i])
        where = f"scenario {texts!r} with process env {process!r}"
        if status == "error":
            if got_status == "ok":
                problems.append(f"{where}: planner raised {expected}, compose accepted it: {got}")
            else:
                problems += [f"{where}: {p}" for p in check_error(batch[i], expected, got)]
        elif got_status == "error":
            problems.append(f"{where}: planner accepted it, compose failed: {got!r}")
        elif got != expected:
            diff = {n: (expected[n], got[n]) for n in expected if expected[n] != got[n]}
            problems.append(f"{where}: (planner, compose) differ on {diff}")
    return problems


# --- tests -----------------------------------------------------------------------------------------------


@settings(
    max_examples=12,
    deadline=None,
    # Failures already name the offending scenario; shrinking would rerun compose hundreds of times.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(st.lists(scenarios(), min_size=20, max_size=20))
def test_random_env_files_match_compose(batch: list[Scenario]) -> None:
    """12 batches x 20 scenarios = 240 random env-file setups, about one compose run per batch."""
    problems = mismatches(batch)
    assert not problems, "\n".join(problems)


FIXED = [
    Scenario(files=(("@P=file", "@X=$@P", "@A=1", "@Y=$@A"),), process=(("P", "proc"),), newline="\n"),
    Scenario(
        files=(("@A=1", "@B=1"), ("@X=$@A", "@A=2", "@Y=$@A", "@B", "@Z=$@B")), process=(), newline="\n"
    ),
    Scenario(files=(("@A=1",), ("@A=2", "@A"), ("@X=${@A}${@P:-d}",)), process=(("P", ""),), newline="\n"),
    Scenario(
        files=(('@A="x" @B=2 # c', "@C='a\\'b' @lower", '@k[0]="\\$@A\\\\$@A"'),), process=(), newline="\n"
    ),
    Scenario(files=(("export @A : v # c", '@B="a\nb"', "@A \t"),), process=(("A", "p"),), newline="\r\n"),
]


def test_fixed_precedence_scenarios_match_compose() -> None:
    problems = mismatches(FIXED)
    assert not problems, "\n".join(problems)
