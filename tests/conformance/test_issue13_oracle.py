"""Issue #13: each defect reproduced against the real `docker compose` (v2.40.3), then planner compared with it.

Every case first pins what the binary does, so a test cannot pass because both sides changed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.test_differential import compare
from tests.conformance.test_differential_regressions import binary_builds, binary_fails_with, project
from tests.oracle import require_compose_v2

pytestmark = pytest.mark.oracle
REPO = Path(__file__).resolve().parents[2]


def planner_cli(
    cwd: Path, args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=cwd, env=full, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def binary(
    cwd: Path, args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env}
    return subprocess.run([require_compose_v2(), *args, "config", "--format", "json"], cwd=cwd, env=full,
                          input=stdin, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# --- 1. list form overridden by mapping form (and the reverse) ------------------------------------------

SHAPES = {
    "networks": ("[a]", "{a: {aliases: [x]}}"),
    "networks-null": ("{a: {aliases: [x]}}", "{a: }"),
    "environment": ("[X=1]", "{Y: 2}"),
    "labels": ("{a: b}", "[c=d]"),
    "extra_hosts": ('["h1:1.1.1.1"]', "{h2: 2.2.2.2}"),
    "sysctls": ("[net.core.somaxconn=1]", "{net.ipv4.x: 1}"),
    "annotations": ("{an: 1}", "[an2=2]"),
}


@pytest.mark.parametrize("via", ["override-file", "extends"])
@pytest.mark.parametrize("field", sorted(SHAPES))
def test_list_and_mapping_forms_merge(field: str, via: str) -> None:
    key = field.partition("-")[0]
    base, over = SHAPES[field]
    top = "networks:\n  a: {}\n"
    if via == "override-file":
        files = {"compose.yaml": f"services:\n  web:\n    image: nginx\n    build: .\n    {key}: {base}\n{top}",
                 "over.yaml": f"services:\n  web:\n    {key}: {over}\n"}  # fmt: skip
        scenario = project(files, compose_files=("compose.yaml", "over.yaml"))
    else:
        files = {"compose.yaml": f"services:\n  base:\n    image: nginx\n    {key}: {base}\n"
                 f"  web:\n    extends: base\n    build: .\n    {key}: {over}\n{top}"}  # fmt: skip
        scenario = project(files)
    compare(scenario, binary_builds("web"))


BUILD_SHAPES = {
    "args": [("[A=1, B]", "{C: 3, A: 5}"), ("{A: 1}", "[A=2, C=3]")],
    "extra_hosts": [('["h1:1.1.1.1"]', "{h2: 2.2.2.2}"), ("{h1: 1.1.1.1}", '["h2=2.2.2.2", "h3:3.3.3.3"]')],
}


@pytest.mark.parametrize(
    ("key", "base", "over"), [(k, b, o) for k, pairs in BUILD_SHAPES.items() for b, o in pairs]
)
def test_build_list_and_mapping_forms_merge(key: str, base: str, over: str, tmp_path: Path) -> None:
    files = {"compose.yaml": f"services:\n  web:\n    image: i\n    build:\n      context: .\n      {key}: {base}\n",
             "over.yaml": f"services:\n  web:\n    build:\n      {key}: {over}\n"}  # fmt: skip
    compare(project(files, compose_files=("compose.yaml", "over.yaml")), binary_builds("web"))
    # extra_hosts is no field of the differential view: compare the printed entries
    write(tmp_path, files)
    args = ["-f", "compose.yaml", "-f", "over.yaml"]
    theirs = json.loads(binary(tmp_path, args, {}).stdout)["services"]["web"]["build"]
    mine = json.loads(planner_cli(tmp_path, ["config", *args], {}).stdout)["services"]["web"]["build"]
    assert mine[key] == theirs[key]


# --- 2. COMPOSE_ENV_FILES, COMPOSE_DISABLE_ENV_FILE ------------------------------------------------------

ARGS = "services:\n  web:\n    image: i\n    build:\n      context: .\n      args:\n        A: ${A:-unset}\n        B: ${B:-unset}\n"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COMPOSE_ENV_FILES": "ci.env"}, {"A": "from-ci-env", "B": "unset"}),
        ({"COMPOSE_ENV_FILES": "ci.env,other.env"}, {"A": "from-ci-env", "B": "from-other"}),
        ({"COMPOSE_ENV_FILES": "sub/ci.env"}, {"A": "from-sub", "B": "unset"}),
        ({"COMPOSE_DISABLE_ENV_FILE": "1"}, {"A": "unset", "B": "unset"}),
        ({"COMPOSE_DISABLE_ENV_FILE": "false"}, {"A": "from-dotenv", "B": "unset"}),
        (
            {"COMPOSE_DISABLE_ENV_FILE": "true", "COMPOSE_ENV_FILES": "ci.env"},
            {"A": "from-ci-env", "B": "unset"},
        ),
    ],
)
def test_env_files_from_the_environment(env: dict[str, str], expected: dict[str, str]) -> None:
    files = {"compose.yaml": ARGS, "ci.env": "A=from-ci-env\n", ".env": "A=from-dotenv\n",
             "other.env": "B=from-other\n", "sub/ci.env": "A=from-sub\n"}  # fmt: skip
    compare(project(files, env=env), binary_builds("web", args=expected))


def test_env_file_option_wins_over_compose_env_files() -> None:
    files = {"compose.yaml": ARGS, "ci.env": "A=from-ci-env\n", "other.env": "B=from-other\n"}
    scenario = project(files, env={"COMPOSE_ENV_FILES": "ci.env"})
    scenario.env_files = ["other.env"]
    compare(scenario, binary_builds("web", args={"A": "unset", "B": "from-other"}))


@pytest.mark.parametrize("value", ["yes", ""])
def test_compose_disable_env_file_must_be_a_go_boolean(value: str) -> None:
    scenario = project({"compose.yaml": ARGS}, env={"COMPOSE_DISABLE_ENV_FILE": value})
    compare(scenario, binary_fails_with(f'strconv.ParseBool: parsing "{value}": invalid syntax'))


def test_compose_env_files_missing_file() -> None:
    scenario = project({"compose.yaml": ARGS}, env={"COMPOSE_ENV_FILES": "missing.env"})
    compare(scenario, binary_fails_with("couldn't find env file"))


# --- 3 and 4. validation of fields planner does not print ------------------------------------------------

REFUSED = {
    **{f"null-{key}": (f"    {key}:\n", f"services.web.{key} must be a {kind}") for key, kind in [
        ("environment", "mapping"), ("labels", "mapping"), ("volumes", "array"), ("ports", "array"),
        ("networks", "array"), ("depends_on", "array"), ("env_file", "string"), ("extra_hosts", "mapping"),
        ("healthcheck", "mapping"), ("secrets", "array"), ("configs", "array"), ("sysctls", "mapping")]},
    "undefined-network": ("    networks: [nope]\n", 'service "web" refers to undefined network nope'),
    "undefined-secret": ("    secrets: [nope]\n", 'service "web" refers to undefined secret nope'),
    "undefined-config": ("    configs: [nope]\n", 'service "web" refers to undefined config nope'),
    "undefined-volume": ('    volumes: ["nope:/x"]\n', 'service "web" refers to undefined volume nope'),
    "undefined-build-secret": ("    build: {context: ., secrets: [nope]}\n", "undefined build secret nope"),
    "empty-volume": ('    volumes: [""]\n', "invalid empty volume spec"),
    "empty-port": ('    ports: [""]\n', "invalid proto"),
    "missing-env-file": ("    env_file: missing.env\n", "missing.env not found"),
    "missing-env-file-required": ("    env_file: [{path: missing.env, required: true}]\n", "missing.env not found"),
    "undefined-link": ("    links: [ghost]\n", 'depends on undefined service "ghost"'),
    "undefined-volumes-from": ("    volumes_from: [ghost]\n", 'depends on undefined service "ghost"'),
    "undefined-network-mode": ("    network_mode: service:ghost\n", 'depends on undefined service "ghost"'),
    "self-link": ("    links: [web]\n", "dependency cycle detected: web -> web"),
    "depends-on-cycle": ("    depends_on: [other]\n", "dependency cycle detected"),
    "volumes-from-self": ("    volumes_from: [web]\n", "dependency cycle detected: web -> web"),
}  # fmt: skip
ACCEPTED = {
    "optional-env-file": "    env_file: [{path: missing.env, required: false}]\n",
    "optional-env-file-interpolated": '    env_file: [{path: missing.env, required: "${R:-false}"}]\n',
    "default-network-null": "    networks: {default: }\n",
    "declared-references": '    networks: [n]\n    secrets: [s]\n    volumes: ["v:/x", "/a:/b", "./c:/d"]\n',
    "port": '    ports: ["80"]\n',
    "disabled-service-missing-env-file": "    profiles: [off]\n    env_file: missing.env\n",
}
TOP = "networks: {n: }\nsecrets: {s: {environment: S}}\nvolumes: {v: }\n"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_like_compose(case: str) -> None:
    lines, message = REFUSED[case]
    other = "{image: o, depends_on: [web]}" if case == "depends-on-cycle" else "{image: o}"
    text = f"services:\n  web:\n    image: nginx\n{lines}  other: {other}\n"
    compare(project({"compose.yaml": text}), binary_fails_with(message))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusal_names_file_and_line(case: str, tmp_path: Path) -> None:
    lines, _ = REFUSED[case]
    other = "{image: o, depends_on: [web]}" if case == "depends-on-cycle" else "{image: o}"
    write(tmp_path, {"compose.yaml": f"services:\n  web:\n    image: nginx\n{lines}  other: {other}\n"})
    proc = planner_cli(tmp_path, ["config"], {})
    assert proc.returncode == 2
    where = re.search(rf"{re.escape(str(tmp_path / 'compose.yaml'))}:(\d+):", proc.stderr)
    assert where is not None, proc.stderr
    assert 4 <= int(where.group(1)) <= 3 + lines.count("\n"), proc.stderr  # a line of the offending entry


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_like_compose(case: str) -> None:
    text = f"services:\n  web:\n    image: nginx\n    build: .\n{ACCEPTED[case]}  other: {{image: o}}\n{TOP}"
    compare(project({"compose.yaml": text}), binary_builds("web") if "disabled" not in case else None)


# --- 5. implicit depends_on ------------------------------------------------------------------------------


def test_implicit_dependencies(tmp_path: Path) -> None:
    text = ("services:\n  a:\n    image: a\n    links: [b, 'c:cc']\n    volumes_from: [d, 'container:foo', 'e:ro']\n"
            "    network_mode: service:f\n    depends_on: [g]\n  b: {image: b}\n  c: {image: c}\n  d: {image: d}\n"
            "  e: {image: e}\n  f: {image: f}\n  g: {image: g}\n  h:\n    image: h\n    ipc: service:b\n"
            "    pid: service:c\n")  # fmt: skip
    write(tmp_path, {"compose.yaml": text})
    theirs = json.loads(binary(tmp_path, [], {}).stdout)["services"]
    mine = json.loads(planner_cli(tmp_path, ["config"], {}).stdout)["services"]
    assert sorted(theirs["a"]["depends_on"]) == ["b", "c", "d", "e", "f", "g"]
    for name in theirs:
        assert sorted(mine[name]["depends_on"]) == sorted(theirs[name].get("depends_on") or {})


# --- 6. /dev/null, process substitution, -f - ------------------------------------------------------------


@pytest.mark.parametrize("source", ["/dev/null", "pipe"])
def test_env_file_any_readable_file(source: str, tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": ARGS})
    args = ["--env-file", source]
    if source == "pipe":  # what bash's <(echo A=piped) hands over: a /dev/fd/N path
        read, written = os.pipe()
        os.write(written, b"A=piped\n")
        os.close(written)
        args = ["--env-file", f"/dev/fd/{read}"]
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    runs = []
    for command in ([require_compose_v2(), *args, "config", "--format", "json"],
                    [sys.executable, "-m", "planner", "config", *args]):  # fmt: skip
        proc = subprocess.run(command, cwd=tmp_path, env={**full, "PYTHONPATH": str(REPO)}, capture_output=True,
                              text=True, timeout=120, check=False, pass_fds=(read,) if source == "pipe" else ())  # fmt: skip
        runs.append(proc)
        if source == "pipe":  # a pipe is read once: refill it for the second command
            os.close(read)
            read, written = os.pipe()
            os.write(written, b"A=piped\n")
            os.close(written)
            args = ["--env-file", f"/dev/fd/{read}"]
    theirs, mine = runs
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    # measured: compose reads a pipe more than once and interpolates with the (empty) last read
    expected = {"A": "unset", "B": "unset"}
    assert json.loads(theirs.stdout)["services"]["web"]["build"]["args"] == expected
    assert json.loads(mine.stdout)["services"]["web"]["build"]["args"] == expected


@pytest.mark.parametrize("files", [["-"], ["-", "../compose.yaml"], ["../compose.yaml", "-"]])
def test_compose_file_on_standard_input(files: list[str], tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": ARGS, ".env": "A=from-dotenv\n", "sub/ctx/x": ""})
    cwd = tmp_path / "sub"
    stdin = "services:\n  x:\n    image: x\n    build: ctx\n"
    args = [a for f in files for a in ("-f", f)]
    theirs = binary(cwd, args, {}, stdin)
    mine = planner_cli(cwd, ["config", *args], {}, stdin)
    assert theirs.returncode == 0 and mine.returncode == 0, theirs.stderr + mine.stderr
    t, m = json.loads(theirs.stdout), json.loads(mine.stdout)
    assert m["name"] == t["name"]
    for name, svc in t["services"].items():
        assert m["services"][name]["build"]["context"] == svc["build"]["context"]
        assert m["services"][name]["build"]["args"] == svc["build"].get("args", {})


# --- 7. warnings ------------------------------------------------------------------------------------------


def _warnings(stderr: str) -> set[str]:
    found = set()
    for line in stderr.splitlines():
        if 'msg="' in line:
            found.add(line.split('msg="', 1)[1].rstrip('"').replace('\\"', '"'))
        elif line.startswith("planner: warning: "):
            found.add(line.removeprefix("planner: warning: "))
    return found


def test_load_time_warnings(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": 'version: "3.8"\nservices:\n  x:\n    image: ${A}\n    build:\n      context: .\n'
                     "      args:\n        - Q=$A\n        - R=${B}\n        - S=${B-d}\n    labels: [l=$C]\n",
                     "o.yaml": "services:\n  x:\n    image: $A$D\n"})  # fmt: skip
    args = ["-f", "compose.yaml", "-f", "o.yaml"]
    theirs = binary(tmp_path, args, {})
    mine = planner_cli(tmp_path, ["config", *args], {})
    assert theirs.returncode == 0 and mine.returncode == 0
    expected = _warnings(theirs.stderr)
    assert any("`version` is obsolete" in w for w in expected)
    assert 'The "D" variable is not set. Defaulting to a blank string.' in expected
    assert _warnings(mine.stderr) == expected
    lines = [line for line in mine.stderr.splitlines() if line.startswith("planner: warning: ")]
    assert len(lines) == len(set(lines)), "each warning once"


@pytest.mark.parametrize("cwd", [".", "sub"])
def test_several_default_files_warn_as_compose_does(cwd: str, tmp_path: Path) -> None:
    """Default discovery with several main or override files: the first name wins, and Compose says so."""
    text = "services:\n  x:\n    image: i\n    build: .\n"
    write(tmp_path, {"compose.yaml": text, "docker-compose.yml": text, "compose.override.yaml": text,
                     "docker-compose.override.yaml": text, "sub/.keep": ""})  # fmt: skip
    theirs = binary(tmp_path / cwd, [], {})
    mine = planner_cli(tmp_path / cwd, ["config"], {})
    assert theirs.returncode == 0 and mine.returncode == 0, theirs.stderr + mine.stderr
    expected = _warnings(theirs.stderr)
    assert f"Using {tmp_path / 'compose.override.yaml'}" in expected and len(expected) == 4
    assert _warnings(mine.stderr) == expected
    single = binary(tmp_path, ["-f", "compose.yaml"], {})
    assert (
        _warnings(single.stderr)
        == set()
        == _warnings(planner_cli(tmp_path, ["config", "-f", "compose.yaml"], {}).stderr)
    )


# --- 8. platforms -----------------------------------------------------------------------------------------

PLATFORM_CASES = {
    "service": "    platform: linux/arm64\n    build: .\n",
    "build": "    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
    "both": "    platform: linux/arm64\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
    "none": "    build: .\n",
}


@pytest.mark.parametrize("default", [None, "linux/amd64"])
@pytest.mark.parametrize("case", sorted(PLATFORM_CASES))
def test_platforms_in_config(case: str, default: str | None) -> None:
    env = {"DOCKER_DEFAULT_PLATFORM": default} if default else {}
    scenario = project({"compose.yaml": f"services:\n  x:\n    image: i\n{PLATFORM_CASES[case]}"}, env=env)
    compare(scenario)


def test_platform_missing_from_build_platforms_is_refused(tmp_path: Path) -> None:
    text = "services:\n  x:\n    image: i\n    platform: linux/s390x\n    build:\n      context: .\n      platforms: [linux/amd64]\n"
    compare(
        project({"compose.yaml": text}), binary_fails_with("build.platforms MUST include service.platform")
    )
    write(tmp_path, {"compose.yaml": text})
    proc = planner_cli(tmp_path, ["config"], {})
    assert proc.returncode == 2 and f"{tmp_path / 'compose.yaml'}:4:" in proc.stderr


def test_platform_is_checked_against_build_platforms_on_the_merged_project() -> None:
    """Compose checks `platform` against `build.platforms` once, on the last file's merged model: a later file
    may fix an earlier file's mismatch (found by the differential test at 1000 examples)."""
    files = {"compose.yaml": "services:\n  x:\n    image: i\n    platform: linux/s390x\n    build:\n      context: .\n"
             "      platforms: [linux/amd64]\n", "over.yaml": "services:\n  x:\n    platform: linux/amd64\n"}  # fmt: skip
    compare(project(files, compose_files=("compose.yaml", "over.yaml")), binary_builds("x"))
    mismatch = {**files, "over.yaml": "services:\n  x:\n    image: j\n"}
    compare(
        project(mismatch, compose_files=("compose.yaml", "over.yaml")),
        binary_fails_with("build.platforms MUST include service.platform"),
    )
