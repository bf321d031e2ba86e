"""Compose loading rules, each on a small fixture of our own (the corpus and the differential test add the oracle)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from planner.base.errors import InputError
from planner.compose.loader import load_project
from planner.compose.model import ComposeProject
from planner.compose.options import ProjectOptions


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def load(cwd: Path, *files: str, env: dict[str, str] | None = None, **kwargs: Any) -> ComposeProject:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})}
    return load_project(ProjectOptions(files=files, environ=environ, cwd=str(cwd), **kwargs))


def build(project: ComposeProject, service: str) -> dict[str, Any]:
    svc = project.services[service]
    assert svc.build is not None
    return svc.build.to_config()


# --- discovery and project directory ---------------------------------------------------------------


def test_discovery_prefers_compose_yaml_and_adds_the_matching_override(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  a:\n    image: from-compose-yaml\n",
            "docker-compose.yml": "services:\n  a:\n    image: from-docker-compose\n",
            "compose.override.yaml": "services:\n  a:\n    build: .\n",
        },
    )
    project = load(tmp_path)
    assert project.services["a"].image == "from-compose-yaml"
    assert build(project, "a")["context"] == str(tmp_path)
    assert project.config_files == [str(tmp_path / "compose.yaml"), str(tmp_path / "compose.override.yaml")]


def test_discovery_walks_up_from_a_subdirectory(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yml": "services:\n  a:\n    build: ./app\n", "deep/er/x": ""})
    project = load(tmp_path / "deep" / "er")
    assert project.working_dir == str(tmp_path)
    assert build(project, "a")["context"] == str(tmp_path / "app")


def test_no_compose_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no configuration file"):
        load(tmp_path)


def test_compose_file_env_with_custom_separator(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"one.yaml": "services:\n  a:\n    image: one\n", "two.yaml": "services:\n  a:\n    image: two\n"},
    )
    project = load(tmp_path, env={"COMPOSE_FILE": "one.yaml;two.yaml", "COMPOSE_PATH_SEPARATOR": ";"})
    assert project.services["a"].image == "two"


def test_every_file_resolves_paths_against_the_first_files_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "stack/compose.yaml": "services:\n  a:\n    build: ./a\n",
            "overrides/extra.yaml": "services:\n  b:\n    build: ./b\n",
        },
    )
    project = load(tmp_path, "stack/compose.yaml", "overrides/extra.yaml")
    assert build(project, "a")["context"] == str(tmp_path / "stack" / "a")
    assert build(project, "b")["context"] == str(tmp_path / "stack" / "b")


def test_project_directory_option_moves_the_base_and_the_env_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "files/compose.yaml": "services:\n  a:\n    build:\n      context: ctx\n      target: ${T}\n",
            "proj/.env": "T=from-project-dir\n",
        },
    )
    project = load(tmp_path, "files/compose.yaml", project_directory="proj")
    assert build(project, "a")["context"] == str(tmp_path / "proj" / "ctx")
    assert build(project, "a")["target"] == "from-project-dir"


# --- environment ------------------------------------------------------------------------------------


def test_dotenv_feeds_interpolation_and_the_shell_environment_wins(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".env": "A=dotenv-a\nB=dotenv-b\n",
            "compose.yaml": "services:\n  s:\n    image: ${A}-${B}\n",
        },
    )
    assert load(tmp_path, env={"B": "shell-b"}).services["s"].image == "dotenv-a-shell-b"


def test_env_file_options_replace_dotenv_and_apply_in_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".env": "A=dotenv\n",
            "one.env": "A=one\nB=one\n",
            "two.env": "B=two-${A}\n",
            "compose.yaml": "services:\n  s:\n    image: ${A}/${B}/${C-unset}\n",
        },
    )
    assert load(tmp_path, env_files=("one.env", "two.env")).services["s"].image == "one/two-one/unset"


def test_missing_env_file_is_an_input_error(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  s:\n    image: x\n"})
    with pytest.raises(InputError, match="env file not found"):
        load(tmp_path, env_files=("missing.env",))


# --- interpolation ----------------------------------------------------------------------------------


def test_interpolation_touches_values_not_keys_and_unescapes_dollars(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  s:\n    build:\n      context: .\n      args:\n"
                "        ${K}: ${V}\n        - ignored: 1\n"
            )
        },
    )
    # a list inside a map is a type error; keep the valid part of the check separate
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  s:\n    build:\n      context: .\n      args:\n"
                "        ${K}: ${V}\n        PRICE: $$5\n      dockerfile_inline: RUN echo $${HOME}\n"
            )
        },
    )
    b = build(load(tmp_path, env={"K": "key", "V": "value"}), "s")
    assert b["args"] == {"${K}": "value", "PRICE": "$5"}
    assert b["dockerfile_inline"] == "RUN echo ${HOME}"


def test_interpolation_happens_per_file_before_the_merge(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  s:\n    build:\n      context: .\n      args:\n        A: ${X:-base}\n",
            "override.yaml": "services:\n  s:\n    build:\n      args:\n        B: ${X:-override}\n",
        },
    )
    assert build(load(tmp_path, "compose.yaml", "override.yaml"), "s")["args"] == {
        "A": "base",
        "B": "override",
    }


def test_required_variable_error_names_file_line_and_key(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  s:\n    build:\n      context: ${CTX:?set CTX}\n"})
    with pytest.raises(InputError) as raised:
        load(tmp_path)
    line = raised.value.one_line()
    assert f"{tmp_path / 'compose.yaml'}:4:" in line
    assert "set CTX" in line
    assert "services.s.build.context" in line


# --- YAML features ----------------------------------------------------------------------------------


def test_anchors_aliases_merge_keys_and_extensions(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "x-common: &common\n  context: ./shared\n  args:\n    A: '1'\n"
                "x-other: &other\n  target: prod\n"
                "services:\n"
                "  one:\n    build:\n      <<: [*common, *other]\n      target: dev\n"
                "  two:\n    build: *common\n    x-planner:\n      always: true\n"
            )
        },
    )
    project = load(tmp_path)
    assert build(project, "one") | {} == build(project, "one")
    one, two = build(project, "one"), build(project, "two")
    assert one["context"] == two["context"] == str(tmp_path / "shared")
    assert one["target"] == "dev"  # explicit keys win over merged ones
    assert one["args"] == {"A": "1"}
    assert project.services["two"].extensions == {"x-planner": {"always": True}}
    assert project.extensions["x-other"] == {"target": "prod"}


def test_plain_scalars_become_strings_as_compose_prints_them(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  s:\n    build:\n      context: .\n      args:\n"
                "        INT: 017\n        HEX: 0x1f\n        FLOAT: 1.0\n        BIG: 1e6\n"
                "        BOOL: true\n        QUOTED: '017'\n        EMPTY: ''\n        UNDERSCORE: 1_000\n"
            )
        },
    )
    assert build(load(tmp_path), "s")["args"] == {
        "INT": "15",
        "HEX": "31",
        "FLOAT": "1",
        "BIG": "1e+06",
        "BOOL": "true",
        "QUOTED": "017",
        "EMPTY": "",
        "UNDERSCORE": "1000",
    }


def test_duplicate_keys_are_rejected_with_both_lines(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  s:\n    image: a\n  s:\n    image: b\n"})
    with pytest.raises(InputError, match=r'mapping key "s" already defined at line 2'):
        load(tmp_path)


# --- build section ----------------------------------------------------------------------------------


def test_long_form_build_fields(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": """
services:
  s:
    build:
      context: ./app
      dockerfile: build/Dockerfile.prod
      args: [A=1, B=, C]
      target: prod
      additional_contexts: [lib=./lib, base=docker-image://alpine:3, svc=service:other, git=https://x.test/r.git]
      tags: [reg.test/s:1, reg.test/s:1, reg.test/s:2]
      platforms: [linux/amd64]
      cache_from: ['type=registry,ref=reg.test/cache']
      cache_to: [type=inline]
      labels: {team: core}
      network: host
      shm_size: 1.5g
      secrets: [token, {source: key, target: /run/k}]
      ssh: [default]
      no_cache: "true"
      pull: false
  other:
    build: ./other
secrets:  # Compose refuses a build secret that is not declared
  token: {environment: TOKEN}
  key: {file: ./key}
"""
        },
    )
    b = build(load(tmp_path, env={"C": "from-env"}), "s")
    assert b == {
        "context": str(tmp_path / "app"),
        "dockerfile": "build/Dockerfile.prod",
        "args": {"A": "1", "B": "", "C": "from-env"},
        "target": "prod",
        "additional_contexts": {
            "lib": str(tmp_path / "lib"),
            "base": "docker-image://alpine:3",
            "svc": "service:other",
            "git": "https://x.test/r.git",
        },
        "tags": ["reg.test/s:1", "reg.test/s:2"],
        "platforms": ["linux/amd64"],
        "cache_from": ["type=registry,ref=reg.test/cache"],
        "cache_to": ["type=inline"],
        "labels": {"team": "core"},
        "network": "host",
        "shm_size": 1610612736,
        "secrets": [{"source": "token"}, {"source": "key", "target": "/run/k"}],
        "ssh": ["default"],
        "no_cache": True,
        "pull": False,
    }


def test_defaults_short_form_and_unset_value_less_args(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  short:\n    build: ctx\n  inline:\n    build:\n      dockerfile_inline: FROM scratch\n"
                "      args:\n        UNSET:\n        EMPTY_IN_ENV:\n"
            )
        },
    )
    project = load(tmp_path, env={"EMPTY_IN_ENV": ""})
    assert build(project, "short")["dockerfile"] == "Dockerfile"
    inline = build(project, "inline")
    assert "dockerfile" not in inline
    assert inline["context"] == str(tmp_path)
    assert inline["args"] == {"EMPTY_IN_ENV": ""}


def test_default_image_name_is_project_dash_service(tmp_path: Path) -> None:
    write(
        tmp_path / "My.Project", {"compose.yaml": "services:\n  web:\n    build: .\n  db:\n    image: pg\n"}
    )
    project = load(tmp_path / "My.Project")
    assert project.name == "myproject"
    assert project.image_name("web") == "myproject-web"
    assert project.image_name("db") == "pg"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "services:\n  s:\n    build:\n      args: 42\n",
            "services.s.build.args must be a mapping or a list",
        ),
        (
            "services:\n  s:\n    build:\n      tags: latest\n",
            "services.s.build.tags must be a list of strings",
        ),
        ("services:\n  s:\n    build:\n      context: [a]\n", "services.s.build.context must be a string"),
        ("services:\n  s:\n    build:\n      contxt: .\n", "additional property contxt is not allowed"),
        (
            "services:\n  s:\n    build:\n      no_cache: maybe\n",
            "services.s.build.no_cache must be a boolean",
        ),
        ("services:\n  s:\n    build:\n      shm_size: lots\n", "invalid size: 'lots'"),
        ("services: [a, b]\n", "services must be a mapping"),
        ("- just\n- a list\n", "top-level object must be a mapping"),
    ],
)
def test_wrong_types_name_the_file_line_and_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    write(tmp_path, {"compose.yaml": yaml_text})
    with pytest.raises(InputError) as raised:
        load(tmp_path)
    line = raised.value.one_line()
    assert message in line
    assert line.startswith(f"{tmp_path / 'compose.yaml'}:")
    assert "\n" not in line


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  s:\n    build: .\n   image: x\n"})
    with pytest.raises(InputError) as raised:
        load(tmp_path)
    assert raised.value.one_line().startswith(f"{tmp_path / 'compose.yaml'}:4:")


# --- merging ----------------------------------------------------------------------------------------


def test_merge_of_build_sections_across_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": """
services:
  s:
    build:
      context: ./a
      args: {A: "1", B: "2"}
      tags: [t1]
      platforms: [linux/amd64]
      labels: [x=1]
""",
            "compose.override.yaml": """
services:
  s:
    build:
      args: [B=3, C]
      tags: [t1, t2]
      platforms: [linux/amd64]
      labels: {x: "2"}
""",
        },
    )
    b = build(load(tmp_path), "s")
    assert b["context"] == str(tmp_path / "a")
    assert b["args"] == {"A": "1", "B": "3"}  # C has no value and no environment value
    assert b["tags"] == ["t1", "t2"]
    assert b["platforms"] == ["linux/amd64", "linux/amd64"]  # appended, as Compose does
    assert b["labels"] == {"x": "2"}
    assert "target" not in b


def test_short_form_build_merges_with_long_form(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  s:\n    build:\n      context: ./a\n      target: t\n",
            "override.yaml": "services:\n  s:\n    build: ./b\n",
        },
    )
    b = build(load(tmp_path, "compose.yaml", "override.yaml"), "s")
    assert (b["context"], b["target"]) == (str(tmp_path / "b"), "t")


def test_reset_and_override_tags(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  s:\n    build:\n      context: .\n      args: {A: '1'}\n      target: t\n"
                "  r:\n    image: r\n    build: .\n"
            ),
            "override.yaml": (
                "services:\n  s:\n    build:\n      args: !override {B: '2'}\n      target: !reset null\n"
                "  r:\n    build: !reset\n"
            ),
        },
    )
    project = load(tmp_path, "compose.yaml", "override.yaml")
    b = build(project, "s")
    assert b["args"] == {"B": "2"}
    assert "target" not in b
    assert project.services["r"].build is None


def test_merging_a_map_over_a_list_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  s:\n    build:\n      context: .\n      tags: [a]\n",
            "override.yaml": "services:\n  s:\n    build:\n      tags: {a: b}\n",
        },
    )
    with pytest.raises(InputError, match=r"cannot override services\.s\.build\.tags"):
        load(tmp_path, "compose.yaml", "override.yaml")


# --- extends and include ----------------------------------------------------------------------------


def test_extends_same_file_and_other_file_rebases_paths(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": """
services:
  local:
    extends: base
    build:
      target: local
  base:
    build:
      context: ./base
      args: {A: "1"}
  remote:
    extends:
      file: lib/common.yaml
      service: common
""",
            "lib/common.yaml": (
                "services:\n  common:\n    build:\n      context: ./ctx\n"
                "      additional_contexts: {x: ./extra}\n"
            ),
        },
    )
    project = load(tmp_path)
    local = build(project, "local")
    assert (local["context"], local["args"], local["target"]) == (str(tmp_path / "base"), {"A": "1"}, "local")
    remote = build(project, "remote")
    assert remote["context"] == str(tmp_path / "lib" / "ctx")
    assert remote["additional_contexts"] == {"x": str(tmp_path / "lib" / "extra")}


def test_extends_unknown_service_and_cycles(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    extends: missing\n"})
    with pytest.raises(InputError, match='service "missing" not found'):
        load(tmp_path)
    write(
        tmp_path, {"compose.yaml": "services:\n  a:\n    extends: b\n  b:\n    extends:\n      service: a\n"}
    )
    with pytest.raises(InputError, match="circular reference with extends"):
        load(tmp_path)


def test_include_resolves_against_its_own_folder_and_env(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".env": "SHARED=parent\n",
            "compose.yaml": "include:\n  - sub/compose.yaml\nservices:\n  main:\n    build: .\n",
            "sub/.env": "SHARED=child\nOWN=child-own\n",
            "sub/compose.yaml": "services:\n  inc:\n    build:\n      context: ./ctx\n      args: {S: $SHARED, O: $OWN}\n",
        },
    )
    project = load(tmp_path)
    inc = build(project, "inc")
    assert inc["context"] == str(tmp_path / "sub" / "ctx")
    assert inc["args"] == {"S": "parent", "O": "child-own"}  # the including project's environment wins


def test_include_cycle_and_conflicts_are_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"compose.yaml": "include: [sub/compose.yaml]\n", "sub/compose.yaml": "include: [../compose.yaml]\n"},
    )
    with pytest.raises(InputError, match="include cycle detected"):
        load(tmp_path)
    write(
        tmp_path,
        {
            "compose.yaml": "include: [sub/compose.yaml]\nservices:\n  s:\n    image: a\n",
            "sub/compose.yaml": "services:\n  s:\n    image: b\n",
        },
    )
    with pytest.raises(InputError, match="conflicts with imported resource"):
        load(tmp_path)


# --- profiles and name ------------------------------------------------------------------------------

PROFILED = """
services:
  always:
    image: a
  debug:
    image: d
    profiles: [debug]
  tools:
    image: t
    profiles: [tools, debug]
"""


@pytest.mark.parametrize(
    ("profiles", "env", "expected"),
    [
        ((), {}, {"always"}),
        (("debug",), {}, {"always", "debug", "tools"}),
        ((), {"COMPOSE_PROFILES": "tools"}, {"always", "tools"}),
        (("debug",), {"COMPOSE_PROFILES": "tools"}, {"always", "debug", "tools"}),
        (("*",), {}, {"always", "debug", "tools"}),
    ],
)
def test_profiles(tmp_path: Path, profiles: tuple[str, ...], env: dict[str, str], expected: set[str]) -> None:
    write(tmp_path, {"compose.yaml": PROFILED})
    assert set(load(tmp_path, env=env, profiles=profiles).services) == expected


def test_service_context_must_name_an_enabled_buildable_service(tmp_path: Path) -> None:
    text = (
        PROFILED + "  app:\n    build:\n      context: .\n      additional_contexts: {d: 'service:debug'}\n"
    )
    write(tmp_path, {"compose.yaml": text})
    with pytest.raises(InputError, match='unknown service "debug" as additional context d'):
        load(tmp_path)
    with pytest.raises(InputError, match='non-buildable service "debug" as additional contexts d'):
        load(tmp_path, profiles=("debug",))
    write(tmp_path, {"compose.yaml": text.replace("    image: d\n", "    build: ./d\n")})
    with pytest.raises(InputError, match='unknown service "debug" as additional context d'):
        load(tmp_path)
    assert build(load(tmp_path, profiles=("debug",)), "app")["additional_contexts"] == {"d": "service:debug"}


def test_enabled_service_depending_on_a_disabled_one_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": PROFILED + "  app:\n    image: x\n    depends_on: [debug]\n"})
    with pytest.raises(InputError, match='"debug", which is disabled'):
        load(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "env", "dotenv", "expected"),
    [
        ({}, {}, "", "fromfile"),
        ({}, {"COMPOSE_PROJECT_NAME": "fromenv"}, "", "fromenv"),
        ({}, {}, "COMPOSE_PROJECT_NAME=fromdotenv\n", "fromdotenv"),
        ({"project_name": "fromflag"}, {"COMPOSE_PROJECT_NAME": "fromenv"}, "", "fromflag"),
    ],
)
def test_project_name_precedence(
    tmp_path: Path, kwargs: dict[str, str], env: dict[str, str], dotenv: str, expected: str
) -> None:
    write(tmp_path, {"compose.yaml": "name: FromFile\nservices: {}\n", ".env": dotenv})
    assert load(tmp_path, env=env, **kwargs).name == expected


def test_invalid_project_name_flag_is_an_input_error(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services: {}\n"})
    with pytest.raises(InputError, match="invalid project name"):
        load(tmp_path, project_name="Has Spaces")


def test_default_environment_is_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  s:\n    image: ${PLANNER_TEST_IMAGE}\n"})
    monkeypatch.setenv("PLANNER_TEST_IMAGE", "from-os")
    project = load_project(ProjectOptions(cwd=str(tmp_path), environ=dict(os.environ)))
    assert project.services["s"].image == "from-os"
