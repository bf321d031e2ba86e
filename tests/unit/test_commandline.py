"""The typer-free path of `plan` and `apply` (planner/cli/commandline.py, planner/cli/main.py): every command line its
parser accepts gives the command bodies exactly what typer gives them, and a full plan run loads neither typer
nor networkx."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.cli import commandline
from planner.cli.app import app
from tests.helpers import write_tree

REPO = Path(__file__).resolve().parents[2]

VALUES = [
    "x",
    "compose.yaml",
    "-x",
    "--offline",
    "a=b",
    "",
    "json",
    "table",
    "JSON",
    "4",
    "0",
    "+4",
    " 4",
    "a b",
]
NODES = ["web", "api", "-", "w-1"]


def _token_lists(command: str, rng: random.Random) -> list[str]:
    forms = [form for option in commandline.OPTIONS[command] for form in option.forms]
    forms += ["--help", "--", "-qj4", "-fx", "--fil", "--offline=1", "--quiet=true", "-j=4", "--nope", "-Q"]
    args = [command]
    for _ in range(rng.randint(0, 7)):
        roll = rng.random()
        if roll < 0.2:
            args.append(rng.choice(NODES))
            continue
        form = rng.choice(forms)
        if roll < 0.35 and form.startswith("--"):
            args.append(f"{form}={rng.choice(VALUES)}")
        elif roll < 0.9:
            args += [form, rng.choice(VALUES)]
        else:
            args.append(form)
    return args


def _typer_values(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    seen: list[Any] = []
    monkeypatch.setattr(commandline, "plan", lambda *a: seen.append(("plan", a)))
    monkeypatch.setattr(commandline, "apply", lambda *a: seen.append(("apply", a)))
    result = CliRunner().invoke(app, args)
    return result.exit_code, (seen[0] if seen else None)


def _parsed_values(args: list[str]) -> Any:
    parsed = commandline.parse(args)
    if parsed is None:
        return None
    command, values = parsed
    values = dict(values)
    options = commandline.project_options(**{n: values.pop(n) for n in commandline.PROJECT_FIELDS})
    order = {
        "plan": ["rules", "nodes", "offline", "output_format", "build_arg", "with_dependencies"],
        "apply": [
            "rules", "nodes", "jobs", "keep_going", "timing_log", "trace", "no_cache", "rebuild", "dry_run",
            "quiet", "output_format", "build_arg", "with_dependencies",
        ],
    }[command]  # fmt: skip
    assert sorted(values) == sorted(order)
    return command, (options, *[values[name] for name in order])


@pytest.mark.parametrize("seed", range(400))
def test_an_accepted_command_line_gives_what_typer_gives(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    args = _token_lists(rng.choice(["plan", "apply"]), rng)
    ours = _parsed_values(args)
    if ours is None:
        return  # typer parses (and reports) it
    code, theirs = _typer_values(args, monkeypatch)
    assert code == 0, args
    assert theirs == ours, args


def test_the_parser_takes_the_everyday_forms() -> None:
    accepted = [
        ["plan", "--offline"],
        ["plan", "--offline", "--format", "json", "web", "api"],
        [
            "plan",
            "-f",
            "a.yaml",
            "--file=b.yaml",
            "-p",
            "proj",
            "--project-directory",
            "d",
            "--rules",
            "r.yaml",
        ],
        ["apply", "-j", "3", "-q", "--keep-going", "--timing-log", "t.log", "web"],
        ["apply", "--build-arg", "A=1", "--with-dependencies", "--rebuild", "web", "--no-cache", "--dry-run"],
    ]
    for args in accepted:
        assert commandline.parse(args) is not None, args
    for args in (["plan", "--help"], ["--version"], ["apply", "--jobs", "0"], ["plan", "--format", "JSON"],
                 ["plan", "--", "web"], ["apply", "-qj4"], ["config"], ["plan", "--offline=yes"]):  # fmt: skip
        assert commandline.parse(args) is None, args


def test_random_command_lines_reach_both_paths() -> None:
    """The equivalence test above is not vacuous: many random lines are taken by the parser."""
    taken = 0
    for seed in range(400):
        rng = random.Random(seed)
        taken += commandline.parse(_token_lists(rng.choice(["plan", "apply"]), rng)) is not None
    assert taken > 100


HEAVY = ("typer", "click", "networkx", "planner.cli.app", "rich", "concurrent")


def test_a_full_plan_does_not_import_what_it_does_not_use(tmp_path: Path) -> None:
    """`planner plan --offline` as a process (memo miss): which heavy modules it loaded, and its import time."""
    write_tree(
        tmp_path,
        {
            "compose.yaml": "services:\n  a: {build: ./a, image: a}\n  b: {build: ./b, image: b}\n",
            "a/Dockerfile": "FROM scratch\nCOPY . /a\n",
            "b/Dockerfile": "FROM a\n",
        },
    )
    probe = (
        "import sys, time, json\n"
        "start = time.perf_counter()\n"
        "from planner.cli.main import main\n"
        "try:\n"
        "    main(['plan', '--offline', '--format', 'json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "sys.stdout.flush()\n"
        f"heavy = sorted({{m.split('.')[0] if m.split('.')[0] != 'planner' else m for m in sys.modules}} & set({HEAVY!r}))\n"
        "sys.stderr.write(json.dumps({'heavy': heavy, 'modules': len(sys.modules)}) + '\\n')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["heavy"] == []
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe], cwd=tmp_path, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    total = sum(
        int(line.split("|")[0].split(":")[1]) for line in timed.stderr.splitlines() if line.startswith("import time:")
        and line.split("|")[0].split(":")[1].strip().isdigit()
    )  # fmt: skip
    print(
        f"plan --offline imports {report['modules']} modules, {total / 1000:.0f} ms (-X importtime self total)"
    )


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_the_parser_knows_every_option_typer_has(command: str) -> None:
    """An option added to the typer command but not to the parser's table, or a body parameter the parser does
    not fill, fails here (not on the first plain command line after the change)."""
    import inspect

    import typer.main

    typed = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    theirs = {
        param.name: tuple(sorted(param.opts + param.secondary_opts))
        for param in typed.params
        if param.param_type_name == "option" and param.name != "help"
    }
    ours = {option.name: tuple(sorted(option.forms)) for option in commandline.OPTIONS[command]}
    assert ours == theirs
    body = getattr(commandline, command)
    parsed = commandline.parse([command])
    assert parsed is not None
    filled = {*parsed[1]} - set(commandline.PROJECT_FIELDS) | {"options"}
    assert filled == set(inspect.signature(body).parameters)


@pytest.mark.parametrize(
    ("typed", "hoisted"),
    [
        (["-f", "a.yaml", "plan"], ["plan", "-f", "a.yaml"]),
        (["-f", "a.yaml", "-p", "x", "--profile", "dev", "plan", "--offline"],
         ["plan", "-f", "a.yaml", "-p", "x", "--profile", "dev", "--offline"]),
        (["--file=a.yaml", "-pname", "--env-file", "e", "apply", "-q"], ["apply", "--file=a.yaml", "-pname", "--env-file", "e", "-q"]),
        (["--project-directory", "d", "golden", "status", "G"], ["golden", "status", "--project-directory", "d", "G"]),
        (["-f", "a.yaml", "schema", "plan"], ["-f", "a.yaml", "schema", "plan"]),  # takes no project: as typed
        (["--ansi", "never", "plan"], ["--ansi", "never", "plan"]),  # not planner's: reported by name
        (["-f", "a.yaml"], ["-f", "a.yaml"]),
        (["plan", "-f", "a.yaml"], ["plan", "-f", "a.yaml"]),
    ],
)  # fmt: skip
def test_compose_global_options_may_stand_before_the_subcommand(typed: list[str], hoisted: list[str]) -> None:
    assert commandline.hoist_global_options(typed) == hoisted


def test_a_plan_with_the_options_before_the_subcommand_is_the_same_plan(tmp_path: Path) -> None:
    """`planner -f docker-compose.dev.yaml plan`, the order compose users type (it said `No such option: -f`)."""
    write_tree(tmp_path, {
        "docker-compose.dev.yaml": "services:\n  a: {build: ., profiles: [dev]}\n  b: {build: .}\n",
        "Dockerfile": "FROM scratch\nCOPY x /x\n", "x": "x\n",
    })  # fmt: skip
    env = {**os.environ, "PLANNER_CACHE_DIR": str(tmp_path / "cache"), "PLANNER_SERVER": "off"}

    def planned(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "planner", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    before = planned(
        "-f", "docker-compose.dev.yaml", "--profile", "dev", "plan", "--offline", "--format", "json"
    )
    after = planned(
        "plan", "--offline", "--format", "json", "-f", "docker-compose.dev.yaml", "--profile", "dev"
    )
    assert before == after and {n["name"] for n in before["nodes"]} == {"a", "b"}
