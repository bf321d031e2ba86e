"""`planner config`: the contract's JSON/YAML shape, options, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from planner.cli.app import app

REPO = Path(__file__).resolve().parents[2]
BASIC = REPO / "examples" / "compose" / "basic"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("COMPOSE_") or name in {"API_VERSION", "WEB_TAG"}:
            monkeypatch.delenv(name)
    return CliRunner()


def test_config_json_matches_the_contract(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "--project-directory", str(BASIC)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "basic"
    assert set(data["services"]) == {"api", "web"}  # `cache` is behind a profile
    api = data["services"]["api"]
    assert "image" not in api
    assert api["build"]["context"] == str(BASIC / "api")
    assert api["build"]["args"] == {"VERSION": "1.0.0"}
    assert set(api["build"]) >= {
        "context", "dockerfile", "args", "additional_contexts", "tags", "platforms", "cache_from",
        "cache_to", "labels", "secrets", "ssh", "no_cache", "pull",
    }  # fmt: skip
    assert api["depends_on"] == [] and api["profiles"] == []
    web = data["services"]["web"]
    assert web["image"] == "basic/web:dev"
    assert web["depends_on"] == ["api"]
    assert web["build"]["additional_contexts"] == {}


def test_config_yaml_equals_json(runner: CliRunner) -> None:
    as_json = runner.invoke(app, ["config", "--project-directory", str(BASIC)])
    as_yaml = runner.invoke(app, ["config", "--project-directory", str(BASIC), "--format", "yaml"])
    assert as_yaml.exit_code == 0
    assert YAML(typ="safe").load(as_yaml.stdout) == json.loads(as_json.stdout)


def test_profile_env_file_and_project_name_options(runner: CliRunner, tmp_path: Path) -> None:
    env_file = tmp_path / "ci.env"
    env_file.write_text("API_VERSION=2.0.0\n")
    result = runner.invoke(
        app,
        ["config", "--project-directory", str(BASIC), "--profile", "full", "--env-file", str(env_file),
         "-p", "other"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "other"
    assert set(data["services"]) == {"api", "web", "cache"}
    assert data["services"]["api"]["build"]["args"] == {"VERSION": "2.0.0"}


def test_file_option_and_compose_file_env(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("services:\n  s:\n    image: a\n")
    result = runner.invoke(app, ["config", "-f", str(tmp_path / "a.yaml")])
    assert json.loads(result.stdout)["services"]["s"]["image"] == "a"
    result = runner.invoke(app, ["config"], env={"COMPOSE_FILE": str(tmp_path / "a.yaml")})
    assert json.loads(result.stdout)["services"]["s"]["image"] == "a"


@pytest.mark.parametrize(
    ("files", "argv", "expected"),
    [
        ({"compose.yaml": "services:\n  s:\n    build:\n      args: 42\n"}, [], "compose.yaml:4:"),
        ({"compose.yaml": "services:\n  s: [\n"}, [], "compose.yaml:"),
        ({"compose.yaml": "services:\n  s:\n    extends: nope\n"}, [], 'service "nope" not found'),
        ({"compose.yaml": "services:\n  s:\n    image: ${NEED:?please set NEED}\n"}, [], "please set NEED"),
        ({"compose.yaml": "services:\n  a:\n    extends: a\n"}, [], "circular reference"),
        ({"compose.yaml": "services: {}\n"}, ["-f", "missing.yaml"], "missing.yaml: compose file not found"),
        ({"compose.yaml": "services: {}\n"}, ["--env-file", "nope.env"], "nope.env: env file not found"),
        ({"compose.yaml": "services: {}\n"}, ["-p", "Bad Name"], "invalid project name"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    runner: CliRunner, tmp_path: Path, files: dict[str, str], argv: list[str], expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(app, ["config", *argv])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 2
    assert result.stdout == ""
    first, *rest = result.stderr.splitlines()
    assert first.startswith("planner: ")
    assert expected in first
    assert all(line.startswith("  hint: ") for line in rest)


def test_bad_usage_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "--format", "xml"])
    assert result.exit_code == 2


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    build:\n      tags: nope\n")
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "config"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"planner: {tmp_path / 'compose.yaml'}:4:")


def test_config_masks_secret_looking_args_unless_asked(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  s:\n    build:\n      context: .\n      args: {NPM_TOKEN: t0k3n, DB_PASSWORD: pw, VERSION: '1'}\n"
    )
    masked = json.loads(runner.invoke(app, ["config", "-f", str(tmp_path / "compose.yaml")]).stdout)
    assert masked["services"]["s"]["build"]["args"] == {
        "NPM_TOKEN": "******",
        "DB_PASSWORD": "******",
        "VERSION": "1",
    }
    shown = runner.invoke(app, ["config", "-f", str(tmp_path / "compose.yaml"), "--show-secrets"])
    assert json.loads(shown.stdout)["services"]["s"]["build"]["args"]["NPM_TOKEN"] == "t0k3n"


def test_config_masks_the_rules_secret_args_too(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  s:\n    build:\n      context: .\n"
        "      args: {MY_SEED: s33d-value, NPM_TOKEN: t0k3n, VERSION: '1'}\n"
    )
    (tmp_path / "planner.yaml").write_text('secret_args: ["*_SEED"]\n')
    compose = str(tmp_path / "compose.yaml")
    masked = runner.invoke(app, ["config", "-f", compose])
    assert masked.exit_code == 0, masked.output
    assert json.loads(masked.stdout)["services"]["s"]["build"]["args"] == {
        "MY_SEED": "******",
        "NPM_TOKEN": "******",
        "VERSION": "1",
    }
    shown = runner.invoke(app, ["config", "-f", compose, "--show-secrets", "--format", "yaml"])
    assert shown.exit_code == 0, shown.output
    assert YAML(typ="safe").load(shown.stdout)["services"]["s"]["build"]["args"] == {
        "MY_SEED": "s33d-value",
        "NPM_TOKEN": "t0k3n",
        "VERSION": "1",
    }
    # --rules names another file; without any rules file only the default patterns apply
    (tmp_path / "planner.yaml").unlink()
    (tmp_path / "other.yaml").write_text('secret_args: ["VERSION"]\n')
    named = runner.invoke(app, ["config", "-f", compose, "--rules", str(tmp_path / "other.yaml")])
    assert json.loads(named.stdout)["services"]["s"]["build"]["args"] == {
        "MY_SEED": "s33d-value",
        "NPM_TOKEN": "******",
        "VERSION": "******",
    }
    bare = runner.invoke(app, ["config", "-f", compose])
    assert json.loads(bare.stdout)["services"]["s"]["build"]["args"]["MY_SEED"] == "s33d-value"


def test_config_with_a_broken_rules_file_exits_2_at_its_line(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    build: .\n")
    (tmp_path / "planner.yaml").write_text("# rules\nsecret_args: 7\n")
    result = runner.invoke(app, ["config", "-f", str(tmp_path / "compose.yaml")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"planner: {tmp_path / 'planner.yaml'}:2:")
