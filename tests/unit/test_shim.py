"""The docker shim: which docker commands become `planner apply`, and passthrough to the real docker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from planner.commands.shim import install
from planner.shim import translate


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compose", "build"], ["apply"]),
        (["compose", "build", "api", "web"], ["apply", "api", "web"]),
        (["compose", "-f", "a.yml", "-f", "b.yml", "build"], ["apply", "--file", "a.yml", "--file", "b.yml"]),
        (["compose", "--file=a.yml", "-p", "x", "build", "-q"], ["apply", "--file", "a.yml", "--project-name", "x", "-q"]),
        (["compose", "--profile", "p", "--env-file", ".env.ci", "build", "--no-cache"],
         ["apply", "--profile", "p", "--env-file", ".env.ci", "--no-cache"]),
        (["compose", "--progress", "plain", "build", "--pull"], ["apply"]),
        (["compose", "--project-directory", "/p", "build"], ["apply", "--project-directory", "/p"]),
        # not planner's: other commands, unknown options, options that change what a build means
        (["compose", "up", "--build"], None),
        (["compose", "build", "--build-arg", "X=1"], None),
        (["compose", "build", "--push"], None),
        (["compose", "--unknown", "build"], None),
        (["build", "."], None),
        (["ps"], None),
        ([], None),
    ],
)  # fmt: skip
def test_translate(argv: list[str], expected: list[str] | None) -> None:
    assert translate(argv) == expected


def test_installed_shim_passes_everything_else_to_the_real_docker(tmp_path: Path) -> None:
    fake_bin = tmp_path / "real"
    fake_bin.mkdir()
    fake = fake_bin / "docker"
    fake.write_text('#!/bin/sh\necho "real docker: $*"\nexit 7\n')
    fake.chmod(0o755)
    shim = install(tmp_path / "shim")
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{fake_bin}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run([str(shim), "ps", "-a"], capture_output=True, text=True, env=env, check=False)
    assert (result.returncode, result.stdout.strip()) == (7, "real docker: ps -a")
    result = subprocess.run(
        [str(shim), "compose", "build", "--build-arg", "A=1"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.stdout.strip() == "real docker: compose build --build-arg A=1"
    assert "running the real docker compose build" in result.stderr


def test_shim_runs_planner_for_compose_build(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    build:\n      context: ./missing\n")
    shim = install(tmp_path / "shim")
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [str(shim), "compose", "build"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 2  # planner's own exit code for bad input: it was planner that ran
    assert result.stderr.startswith("planner: ")


def shim_install(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from planner.cli import app

    result = CliRunner().invoke(app, ["shim", "install", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_install_into_a_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "not-a-folder"
    path.write_text("keep me\n")
    code, output = shim_install(str(path))
    assert code == 2
    assert f"{path} is not a folder" in output and "Traceback" not in output
    assert path.read_text() == "keep me\n"


def test_install_refuses_to_replace_another_docker_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    real = tmp_path / "real-docker"
    real.write_text("#!/bin/sh\necho real\n")
    (folder / "docker").write_text("#!/bin/sh\necho mine\n")
    code, output = shim_install(str(folder))
    assert code == 2 and "not planner's shim" in output and "--force" in output
    assert (folder / "docker").read_text() == "#!/bin/sh\necho mine\n"

    (folder / "docker").unlink()
    (folder / "docker").symlink_to(real)  # a symlink to the real docker: never written through
    assert shim_install(str(folder))[0] == 2
    code, _ = shim_install(str(folder), "--force")
    assert code == 0
    assert not (folder / "docker").is_symlink() and "planner docker shim" in (folder / "docker").read_text()
    assert real.read_text() == "#!/bin/sh\necho real\n"

    assert shim_install(str(folder)) == (0, shim_install(str(folder))[1])  # its own shim: replaced freely
    assert (folder / "docker").stat().st_mode & 0o777 == 0o755
    assert [p.name for p in folder.iterdir()] == ["docker"]  # no temporary left behind


def test_install_never_replaces_a_folder_named_docker(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    code, output = shim_install(str(tmp_path), "--force")
    assert code == 2 and "is a folder" in output
    assert (tmp_path / "docker").is_dir()
