"""Every shell block in the README is either run by the tour test (tests/integration/test_readme_tour.py) or
listed here with the reason it is not; a new block, or a listed one that is gone, fails."""

from __future__ import annotations

from tests.readme import Block, expected, shell_blocks

# First command of each block the tour test does not run -> why not.
UNTESTED = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e . --config-settings editable_mode=compat &&": (
        "set-up: installs into .venv; its second line is the test command .ci/run runs"
    ),
    "planner golden clone /srv/golden /var/lib/sandbox-docker": (
        "a sketch with placeholders (`dockerd ... &`) on system paths; tests/integration/test_golden.py runs "
        "promote, clone and the top-up apply with real daemons"
    ),
    "mkdir -p /tmp/planner-demo/registry /tmp/planner-demo/sandbox": (
        "starts a registry on port 5000 and a dockerd on fixed paths; the tour test starts the same services "
        "(tests/integration/services.py, the same dockerd flags) and exports the same variables"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'": (
        "development set-up: installs into .venv and runs the suite, the linters and the benchmarks"
    ),
}


def untested(block: Block) -> str | None:
    return next((key for key in UNTESTED if block.first.startswith(key)), None)


def test_every_block_is_run_or_says_why_not() -> None:
    blocks = shell_blocks()
    strays = [f"README.md:{b.line}: {b.first}" for b in blocks if not b.tested and untested(b) is None]
    assert strays == [], "mark these <!-- tested --> or list them in UNTESTED with the reason"
    listed = {untested(b) for b in blocks if not b.tested}
    assert listed == set(UNTESTED), f"no longer in the README: {set(UNTESTED) - listed}"


def test_the_tour_checks_what_it_shows() -> None:
    tested = [c for b in shell_blocks() if b.tested for c in b.commands]
    assert len(tested) >= 15
    assert sum(expected(c) is not None for c in tested) >= 10


def test_blocks_and_expectations_parse() -> None:
    text = "x\n<!-- tested -->\n```sh\na \\\n  b   # → one two\n\nc\n```\n```sh\nd\n```\n"
    first, second = shell_blocks(text)
    assert (first.line, first.tested, first.commands) == (3, True, ["a  b   # → one two", "c"])
    assert (second.tested, second.commands) == (False, ["d"])
    assert expected(first.commands[0]) == "one two" and expected("c") is None
