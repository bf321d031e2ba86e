"""The docker shim: which docker commands become `planner apply`, and passthrough to the real docker."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planner.base.errors import UsageError
from planner.commands.shim import install
from planner.commands.shimargs import route

P = None  # passed through to the real docker (the route's reason must name an option or say why)
A = "apply"

# Real command lines (Compose and docker docs, our users' scripts) → the planner command lines that run them,
# or P with the word the pass-through note must contain.
TABLE: list[tuple[str, list[list[str]] | tuple[None, str]]] = [
    ("compose build", [[A]]),
    ("compose build api web", [[A, "api", "web"]]),
    ("compose -f docker-compose.dev.yaml build", [[A, "--file", "docker-compose.dev.yaml"]]),
    ("compose -f a.yml -f b.yml build", [[A, "--file", "a.yml", "--file", "b.yml"]]),
    ("compose --file=a.yml -p x build -q", [[A, "--file", "a.yml", "--project-name", "x", "-q"]]),
    ("compose -fa.yml build", [[A, "--file", "a.yml"]]),
    ("compose -f=a.yml build", [[A, "--file", "a.yml"]]),
    ("compose -p=proj build", [[A, "--project-name", "proj"]]),
    ("compose --project-name proj build api", [[A, "--project-name", "proj", "api"]]),
    ("compose --profile p --env-file .env.ci build --no-cache", [[A, "--profile", "p", "--env-file", ".env.ci", "--no-cache"]]),
    ("compose --profile a --profile b build", [[A, "--profile", "a", "--profile", "b"]]),
    ("compose --project-directory /p build", [[A, "--project-directory", "/p"]]),
    ("compose --workdir /p build", [[A, "--project-directory", "/p"]]),
    ("compose --env-file=.env.local build", [[A, "--env-file", ".env.local"]]),
    ("compose build --build-arg X=1 api", [[A, "--build-arg", "X=1", "api"]]),
    ("compose build --build-arg=X=1 --build-arg Y=2", [[A, "--build-arg", "X=1", "--build-arg", "Y=2"]]),
    ("compose build --build-arg VERSION api web", [[A, "--build-arg", "VERSION", "api", "web"]]),
    ("compose build api --build-arg X=1", [[A, "--build-arg", "X=1", "api"]]),
    ("compose -f docker-compose.dev.yaml build --build-arg HTTP_PROXY=http://p:3128 --no-cache api",
     [[A, "--file", "docker-compose.dev.yaml", "--no-cache", "--build-arg", "HTTP_PROXY=http://p:3128", "api"]]),
    ("compose build --no-cache=false", [[A]]),
    ("compose build --no-cache=true", [[A, "--no-cache"]]),
    ("compose build -q=false", [[A]]),
    ("compose build --quiet", [[A, "-q"]]),
    ("compose --progress quiet build", [[A, "-q"]]),
    ("compose --progress plain build", [[A]]),
    ("compose --progress=json build", [[A]]),
    ("compose build --progress plain", [[A]]),
    ("compose --ansi never build", [[A]]),
    ("compose --no-ansi --verbose build", [[A]]),
    ("compose --compatibility --all-resources build", [[A]]),
    ("compose --parallel 2 build", [[A, "--jobs", "2"]]),
    ("compose --parallel=-1 build", [[A]]),
    ("compose --dry-run build", [[A, "--dry-run"]]),
    ("compose build --dry-run api", [[A, "--dry-run", "api"]]),
    ("compose build --with-dependencies web", [[A, "--with-dependencies", "web"]]),
    ("compose build --pull", [["pull-bases"], [A]]),
    ("compose -p x build --push web", [[A, "--project-name", "x", "web"], ["push-images", "--project-name", "x", "web"]]),
    ("compose build --pull --push", [["pull-bases"], [A], ["push-images"]]),
    ("compose build --compress --force-rm --no-rm --parallel", [[A]]),
    ("compose build -- a", [[A, "a"]]),
    ("compose build -- -a", [[A, "--", "-a"]]),
    ("--context default compose build", [[A]]),
    ("-c default compose build", [[A]]),
    ("-H unix:///run/sandbox.sock compose build", [[A]]),
    ("--host=tcp://127.0.0.1:2375 compose build web", [[A, "web"]]),
    ("-D compose build", [[A]]),
    ("-l debug compose build", [[A]]),
    ("--log-level=warn compose -f x.yml build", [[A, "--file", "x.yml"]]),
    ("-l WARNING compose build", [[A]]),
    # passed through, with the option that caused it
    ("compose build --print", (P, "--print")),
    ("compose build --check", (P, "--check")),
    ("compose -f x config", (P, "")),
    ("compose up --build", (P, "")),
    ("compose up -d", (P, "")),
    ("compose build --ssh default", (P, "--ssh")),
    ("compose build --builder mybuilder", (P, "--builder")),
    ("compose build --provenance=false", (P, "--provenance")),
    ("compose build --sbom true", (P, "--sbom")),
    ("compose build -m 1g", (P, "--memory")),
    ("compose build -qm 1g", (P, "--memory")),
    ("compose build --unknown", (P, "--unknown")),
    ("compose --unknown build", (P, "--unknown")),
    ("compose build -f x.yml", (P, "-f")),
    ("compose build --build-arg", (P, "--build-arg")),
    ("compose build --no-cache=maybe", (P, "--no-cache")),
    ("compose --progress fancy build", (P, "--progress")),
    ("compose --parallel many build", (P, "--parallel")),
    ("compose build --help", (P, "")),
    ("compose --help", (P, "")),
    ("--tlsverify compose build", (P, "--tlsverify")),
    ("-H unix:///a -H unix:///b compose build", (P, "-H")),
    ("--context x -H unix:///a compose build", (P, "--context")),
    ("--context nosuchcontext compose build", (P, "--context")),
    ("-l bogus compose build", (P, "--log-level")),  # docker: "Unable to parse logging level"
    ("ps", (P, "")),
    ("ps -a", (P, "")),
    ("run -it --rm busybox sh", (P, "")),
    ("buildx ls", (P, "")),
    ("image ls", (P, "")),
    ("--version", (P, "")),
    ("", (P, "")),
    # docker build / buildx build
    ("build -t helix-ubuntu -f Dockerfile.ubuntu-helix .", [["build-image", "--tag", "helix-ubuntu", "--file", "Dockerfile.ubuntu-helix", "."]]),
    ("build -t t:1 ctx", [["build-image", "--tag", "t:1", "ctx"]]),
    ("build . -t a:1 -t a:latest", [["build-image", "--tag", "a:1", "--tag", "a:latest", "."]]),
    ("build --tag=a --build-arg V=2 --label l=1 --target prod --platform linux/amd64 .",
     [["build-image", "--tag", "a", "--build-arg", "V=2", "--label", "l=1", "--target", "prod", "--platform", "linux/amd64", "."]]),
    ("build -qt a --no-cache --pull --rm --force-rm .", [["build-image", "--tag", "a", "--no-cache", "-q", "--pull", "."]]),
    ("buildx build -t a --load .", [["build-image", "--tag", "a", "."]]),
    ("buildx build -t a --output type=docker .", [["build-image", "--tag", "a", "."]]),
    ("buildx build -t a --progress plain -f docker/Dockerfile .", [["build-image", "--tag", "a", "--file", "docker/Dockerfile", "."]]),
    ("image build -t a .", [["build-image", "--tag", "a", "."]]),
    ("-H unix:///x build -t a .", [["build-image", "--tag", "a", "."]]),
    ("build .", (P, "-t")),
    ("build -t a -", (P, "stdin")),
    ("build -t a https://github.com/x/y.git", (P, "remote")),
    ("build -t a -f - .", (P, "--file")),
    ("build -t a --iidfile id.txt .", (P, "--iidfile")),
    ("build -t a --network host .", (P, "--network")),
    ("build -t a --add-host h:1.2.3.4 .", (P, "--add-host")),
    ("build -t a --cache-from a:old .", (P, "--cache-from")),
    ("build -t a -m 1g .", (P, "--memory")),
    ("build -t a --secret id=x .", (P, "--secret")),
    ("buildx build -t a --secret id=x,src=f .", (P, "--secret")),
    ("buildx build -t a --ssh default .", (P, "--ssh")),
    ("buildx build -t a --output type=local,dest=out .", (P, "--output")),
    ("buildx build -t a -o out .", (P, "--output")),
    ("buildx build -t a --cache-to type=inline .", (P, "--cache-to")),
    ("buildx build -t a --push .", (P, "--push")),
    ("buildx build -t a --platform linux/amd64,linux/arm64 .", (P, "--platform")),
    ("buildx build --builder b -t a .", (P, "--builder")),
    ("build -t a . b", (P, "context")),
    ("build --help", (P, "")),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), TABLE, ids=[line or "(empty)" for line, _ in TABLE])
def test_command_line_table(line: str, expected: list[list[str]] | tuple[None, str]) -> None:
    decided = route(line.split(), "docker", environ={"HOME": "/nonexistent"})
    if isinstance(expected, tuple):
        assert not decided.handled, decided
        word = expected[1]
        assert (decided.reason or "") if word else True
        assert word in (decided.reason or ""), decided.reason
    else:
        assert decided.planner == expected


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 60


def test_docker_compose_spelling_routes_the_same() -> None:
    for line, expected in TABLE:
        words = line.split()
        if words[:1] == ["compose"] and not isinstance(expected, tuple):
            assert route(words[1:], "docker-compose", environ={"HOME": "/x"}).planner == expected, line
    assert route(["--context", "default", "build"], "docker-compose", environ={"HOME": "/x"}).planner == [[A]]
    assert "--log-level" in (route(["--log-level", "x", "build"], "docker-compose", environ={}).reason or "")


def test_shim_off_passes_everything() -> None:
    assert not route(["compose", "build"], environ={"PLANNER_SHIM": "off"}).handled


def test_context_selects_the_daemon(tmp_path: Path) -> None:
    import hashlib
    import json

    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"sandbox").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": "sandbox", "Endpoints": {"docker": {"Host": "unix:///run/s.sock"}}})
    )
    environ = {"HOME": "/x", "DOCKER_CONFIG": str(tmp_path)}
    assert route(["--context", "sandbox", "compose", "build"], environ=environ).env == {
        "DOCKER_HOST": "unix:///run/s.sock"
    }
    assert route(["-H", "unix:///y", "build", "-t", "a", "."], environ=environ).env == {
        "DOCKER_HOST": "unix:///y"
    }
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "sandbox"}))
    assert route(["compose", "build"], environ=environ).env == {"DOCKER_HOST": "unix:///run/s.sock"}
    assert route(["compose", "build"], environ={**environ, "DOCKER_HOST": "unix:///z"}).env == {}
    assert route(["--context", "default", "compose", "build"], environ=environ).env == {}


def test_installed_shim_passes_everything_else_to_the_real_docker(tmp_path: Path) -> None:
    fake_bin = tmp_path / "real"
    fake_bin.mkdir()
    fake = fake_bin / "docker"
    fake.write_text('#!/bin/sh\necho "real docker: $*"\nexit 7\n')
    fake.chmod(0o755)
    shim = install(tmp_path / "shim")
    plugin = tmp_path / "config" / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("#!/bin/sh\n")
    plugin.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{fake_bin}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "DOCKER_CONFIG": str(plugin.parent.parent),
    }
    result = subprocess.run([str(shim), "ps", "-a"], capture_output=True, text=True, env=env, check=False)
    assert (result.returncode, result.stdout.strip()) == (7, "real docker: ps -a")
    result = subprocess.run(
        [str(shim), "compose", "build", "--print"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.stdout.strip() == "real docker: compose build --print"
    assert "passing to the real docker: --print" in result.stderr


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

    from planner.cli.app import app

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


def test_a_docker_without_compose_is_named_with_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\necho "unknown shorthand flag" >&2\nexit 125\n')
    fake.chmod(0o755)
    env = {**os.environ, "PLANNER_REAL_DOCKER": str(fake), "DOCKER_CONFIG": str(tmp_path / "none"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "planner.cli.shim", "compose", "-f", "x.yml", "build", "--print"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and "has no compose plugin" in result.stderr
    assert "--print" in result.stderr and "docker-compose-plugin" in result.stderr


def test_the_compose_plugin_is_looked_for_in_the_config_folder_the_command_line_names(tmp_path: Path) -> None:
    """`docker --config X compose ...`: the docker CLI takes plugins from X/cli-plugins, not DOCKER_CONFIG's (#17)."""
    fake = fake_tool(tmp_path / "real", "docker")  # answers nothing, `compose version` included (exit 7)
    with_plugin, without = tmp_path / "with-plugin", tmp_path / "without"
    plugin = with_plugin / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("#!/bin/sh\n")
    plugin.chmod(0o755)
    without.mkdir()

    def shim(config_env: Path, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PLANNER_REAL_DOCKER": str(fake), "DOCKER_CONFIG": str(config_env),
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "planner.cli.shim", *argv, "compose", "build", "--print"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip

    taken = shim(without, "--config", str(with_plugin))
    expected = f"real docker: --config {with_plugin} compose build --print"
    assert (taken.returncode, taken.stdout.strip()) == (7, expected)
    assert "has no compose plugin" not in taken.stderr
    assert shim(without, f"--config={with_plugin}").returncode == 7
    # DOCKER_CONFIG has a plugin, the command line's config folder has none: the command line's counts
    refused = shim(with_plugin, "--config", str(without))
    assert refused.returncode == 125 and "has no compose plugin" in refused.stderr
    assert shim(with_plugin).returncode == 7  # no --config: DOCKER_CONFIG's plugin, as before


def fake_tool(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f'#!/bin/sh\necho "real {name}: $*"\nexit 7\n')
    tool.chmod(0o755)
    return tool


def test_docker_compose_launcher_stands_in_for_the_real_docker_compose(tmp_path: Path) -> None:
    fake_tool(tmp_path / "real", "docker-compose")
    fake_tool(tmp_path / "real", "docker")
    shim = install(tmp_path / "shim", name="docker-compose")
    assert shim.name == "docker-compose" and not (shim.parent / "docker").exists()
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{tmp_path / 'real'}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    env.pop("PLANNER_REAL_DOCKER_COMPOSE", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(shim), *args], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
        )

    result = run("-f", "x.yml", "config")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        7,
        "real docker-compose: -f x.yml config",
        "",
    )
    result = run("build", "--print")
    assert result.stdout.strip() == "real docker-compose: build --print"
    assert (
        result.stderr
        == "planner shim: passing to the real docker-compose: --print: prints a bake file (the real compose does that)\n"
    )
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    build:\n      context: ./missing\n")
    result = run("--context", "default", "build")
    assert result.returncode == 2 and result.stderr.startswith("planner: ")  # planner ran it


def shim_cli(*args: str, path: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from planner.cli.app import app

    environ = {"PATH": path, "PLANNER_REAL_DOCKER": "", "PLANNER_REAL_DOCKER_COMPOSE": ""}
    result = CliRunner().invoke(app, ["shim", *args], env=environ)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_uninstall_removes_only_the_launchers_install_wrote(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    install(folder)
    install(folder, name="docker-compose")
    fake_tool(folder, "docker-buildx")
    code, output = shim_cli("uninstall", str(folder), path="/nonexistent")
    assert code == 0
    assert output.splitlines() == [f"removed {folder / 'docker'}", f"removed {folder / 'docker-compose'}"]
    assert [p.name for p in folder.iterdir()] == ["docker-buildx"]
    code, output = shim_cli("uninstall", str(folder), path="/nonexistent")
    assert code == 2 and f"no planner shim in {folder}" in output

    fake_tool(folder, "docker")  # a docker that is not the shim stays
    assert shim_cli("uninstall", str(folder), path="/nonexistent")[0] == 2
    assert (folder / "docker").read_text().startswith("#!/bin/sh\necho")


def test_status_says_which_docker_runs_and_where_the_shim_forwards(tmp_path: Path) -> None:
    real = tmp_path / "real"
    docker = fake_tool(real, "docker")
    compose = fake_tool(real, "docker-compose")
    shim = install(tmp_path / "shim")
    code, output = shim_cli("status", path=f"{shim.parent}:{real}")
    assert code == 0
    assert output.splitlines() == [
        f"docker: shim {shim}, first on PATH; forwards to {docker}",
        f"docker-compose: no shim on PATH (runs {compose})",
    ]
    code, output = shim_cli("status", path=f"{real}:{shim.parent}")
    assert (
        output.splitlines()[0]
        == f"docker: shim {shim}, NOT first on PATH ({docker} runs instead); forwards to {docker}"
    )
    code, output = shim_cli("status", path=str(shim.parent))
    assert output.splitlines() == [
        f"docker: shim {shim}, first on PATH; forwards to nothing found",
        "docker-compose: no shim on PATH (runs nothing)",
    ]


def test_docker_build_is_a_one_node_stack_with_paths_as_the_docker_cli_reads_them(tmp_path: Path) -> None:
    from planner.commands.shimsteps import ImageBuild, build_stack

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile.helix").write_text("FROM scratch\nARG A\n")
    (tmp_path / "other.Dockerfile").write_text("FROM scratch\n")
    environ = {"HOME": "/nonexistent", "A": "from-env"}
    args = (("A", None), ("B", "2"), ("UNSET", None))  # KEY alone: from the environment, left out when unset
    request = ImageBuild("ctx", ("r/helix-ubuntu:1", "r/helix:latest"), "ctx/Dockerfile.helix", args,
                         ("l=1", "bare"), "prod", "linux/amd64")  # fmt: skip
    stack = build_stack(request, str(tmp_path), environ)
    assert list(stack.nodes) == ["helix-ubuntu"]
    service = stack.compose.services["helix-ubuntu"]
    assert service.image == "r/helix-ubuntu:1" and service.build is not None
    build = service.build
    assert (build.context, build.dockerfile) == (str(tmp_path / "ctx"), "Dockerfile.helix")  # -f from the cwd
    assert build.args == {"A": "from-env", "B": "2"}
    assert (build.labels, build.target, build.platforms, build.tags) == (
        {"l": "1", "bare": ""}, "prod", ["linux/amd64"], ["r/helix:latest"]
    )  # fmt: skip
    outside = dataclasses.replace(request, dockerfile="other.Dockerfile", build_args=())
    build = build_stack(outside, str(tmp_path), environ).compose.services["helix-ubuntu"].build
    assert build is not None and build.dockerfile == str(tmp_path / "other.Dockerfile")
    with pytest.raises(UsageError, match="not a folder"):
        build_stack(dataclasses.replace(request, context="missing"), str(tmp_path), environ)
    with pytest.raises(UsageError, match="--label '=x'"):
        build_stack(dataclasses.replace(request, labels=("=x",)), str(tmp_path), environ)
