"""The rules file: discovery, every field parsed and applied, layering, interpolation, and errors at file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.base.errors import InputError, UsageError
from planner.build.stack import Stack, load_stack
from planner.cli.app import app
from planner.compose.options import ProjectOptions
from planner.rules.load import load_rules, rules_path
from planner.rules.model import EffectiveRules, NodeRules, Rules, layer
from tests.helpers import write_tree as write

COMPOSE = """\
name: proj
services:
  api:
    build: ./api
  web:
    build:
      context: ./web
  db:
    image: postgres:16
"""


def project(root: Path, rules: str | None = None, compose: str = COMPOSE, **files: str) -> Path:
    base = {"compose.yaml": compose, "api/Dockerfile": "FROM scratch\n", "web/Dockerfile": "FROM scratch\n"}
    if rules is not None:
        base["planner.yaml"] = rules
    return write(root, {**base, **files})


def load(
    root: Path, rules_option: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Stack:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(root), **(env or {})}
    options = ProjectOptions(project_directory=str(root), environ=environ, cwd=str(cwd or root))
    return load_stack(options, rules_option)


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line of `path` containing `needle`."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def load_error(root: Path, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as caught:
        load(root, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- defaults --------------------------------------------------------------------------------------


def test_defaults_without_a_rules_file(tmp_path: Path) -> None:
    stack = load(project(tmp_path))
    assert stack.rules_file is None
    assert stack.rules == Rules()
    assert stack.rules.builder.kind == "docker"
    assert stack.rules.builder.name is None
    assert stack.rules.registry is None
    assert stack.rules.destinations == {}
    assert stack.rules.secret_args == []
    assert set(stack.nodes) == {"api", "web"}  # db has no build
    api = stack.nodes["api"]
    assert api.rules == EffectiveRules()
    assert api.rules.destinations == ["local"]
    assert api.rules.transfer == "auto"
    assert (api.rules.always, api.rules.skip) == (False, False)
    assert (api.rules.inputs, api.rules.ignore, api.rules.env, api.rules.volatile_args) == ([], [], [], [])
    assert api.rules.depends_on == []
    assert (api.kind, api.image) == ("image", "proj-api")


def test_an_empty_rules_file_is_all_defaults(tmp_path: Path) -> None:
    stack = load(project(tmp_path, rules="# nothing yet\n"))
    assert stack.rules == Rules()
    assert stack.rules_file == tmp_path / "planner.yaml"


def test_registry_defaults(tmp_path: Path) -> None:
    stack = load(project(tmp_path, rules="registry:\n  url: 127.0.0.1:5000\n"))
    assert stack.rules.registry is not None
    assert stack.rules.registry.url == "127.0.0.1:5000"
    assert stack.rules.registry.namespace == "planner"
    assert stack.rules.registry.insecure is False
    assert (stack.rules.registry.username, stack.rules.registry.password) == (None, None)


# --- every field -----------------------------------------------------------------------------------

FULL = """\
version: 1
registry:
  url: reg.local:5000
  namespace: team
  insecure: true
  username: bob
  password: ${REG_PASSWORD}
  compression: none
builder:
  kind: buildx
  name: shared
destinations:
  sandbox:
    host: unix:///run/sandbox.sock
  remote:
    host: tcp://10.0.0.2:2375
images:
  desktop:
    context: desktop
    dockerfile: Dockerfile.desktop
    args:
      PLAIN: value
      FROM_ENV: null
      UNSET_ENV: null
    target: final
    additional_contexts:
      assets: ./assets
      base: service:api
    platforms: [linux/amd64, linux/arm64]
    image: registry.local/desktop
    tags: [desktop:extra]
    hash:
      inputs: [go.mod]
      ignore: ["*.tmp"]
      env: [GOFLAGS]
      volatile_args: [PLAIN]
    destinations: [local, sandbox]
    transfer: registry
    always: true
    skip: false
    depends_on: [api]
  inline:
    dockerfile_inline: "FROM scratch\\n"
artifacts:
  bundle:
    context: desktop
    output: {type: tar, dest: out/bundle.tar}
stamps:
  desktop-version:
    path: desktop/version.txt
    from: desktop
    template: "{short_key} {image}\\n"
  plain:
    path: desktop/plain.txt
    from: bundle
rules:
  - match: "*"
    transfer: tarball
secret_args: ["*_TOKEN"]
"""


def test_every_field_is_parsed_and_applied(tmp_path: Path) -> None:
    root = project(tmp_path, rules=FULL, **{"desktop/Dockerfile.desktop": "FROM scratch\n", "assets/x": ""})
    stack = load(root, env={"REG_PASSWORD": "s3cret", "FROM_ENV": "from-env"})
    rules = stack.rules
    assert rules.registry is not None
    assert rules.registry.model_dump() == {
        "url": "reg.local:5000", "namespace": "team", "insecure": True, "username": "bob", "password": "s3cret",
        "compression": "none", "share": True,
    }  # fmt: skip
    assert rules.registry.codec() == "none"  # set, although the registry is not on loopback
    assert (rules.builder.kind, rules.builder.name) == ("buildx", "shared")
    assert {k: d.host for k, d in rules.destinations.items()} == {
        "sandbox": "unix:///run/sandbox.sock", "remote": "tcp://10.0.0.2:2375",
    }  # fmt: skip
    assert rules.secret_args == ["*_TOKEN"]

    desktop = stack.nodes["desktop"]
    assert (desktop.kind, desktop.image) == ("image", "registry.local/desktop")
    build = desktop.build
    assert build.context == str(root / "desktop")
    assert build.dockerfile == "Dockerfile.desktop"
    assert build.args == {"PLAIN": "value", "FROM_ENV": "from-env"}  # UNSET_ENV: null and unset -> dropped
    assert build.target == "final"
    assert build.additional_contexts == {"assets": str(root / "assets"), "base": "service:api"}
    assert build.platforms == ["linux/amd64", "linux/arm64"]
    assert build.tags == ["desktop:extra"]
    assert desktop.rules == EffectiveRules(
        inputs=["go.mod"], ignore=["*.tmp"], env=["GOFLAGS"], volatile_args=["PLAIN"],
        destinations=["local", "sandbox"], transfer="registry", always=True, skip=False, depends_on=["api"],
    )  # fmt: skip

    inline = stack.nodes["inline"]
    assert inline.build.dockerfile_inline == "FROM scratch\n"
    assert inline.build.dockerfile is None
    assert inline.image == "proj-inline"  # default <project>-<name>
    assert inline.build.context == str(root)  # default "."
    assert inline.rules.transfer == "tarball"  # from the selector

    bundle = stack.nodes["bundle"]
    assert (bundle.kind, bundle.image, bundle.output_type) == ("artifact", None, "tar")
    assert bundle.output_dest == str(root / "out" / "bundle.tar")

    stamp = stack.stamps["desktop-version"]
    assert (stamp.path, stamp.source, stamp.template) == (
        str(root / "desktop/version.txt"),
        "desktop",
        "{short_key} {image}\n",
    )
    assert stack.stamps["plain"].template == "{key}\n"


# --- layering --------------------------------------------------------------------------------------


def test_selectors_apply_in_file_order_then_inline_rules(tmp_path: Path) -> None:
    compose = COMPOSE.replace(
        "    build: ./api\n",
        "    build: ./api\n    x-planner:\n      always: true\n      transfer: registry\n",
    )
    rules = """\
        destinations:
          sandbox: {host: "unix:///s.sock"}
        images:
          extra:
            context: api
            destinations: [sandbox]
        rules:
          - match: "*"
            transfer: tarball
            destinations: [local, sandbox]
            hash: {env: [A], ignore: ["*.log"]}
          - match: [api, "ext*"]
            transfer: auto
            hash: {env: [B]}
          - match: "nothing-matches-*"
            skip: true
        """
    stack = load(project(tmp_path, rules=rules, compose=compose))
    api, web, extra = (stack.nodes[n].rules for n in ("api", "web", "extra"))
    # web: only the `*` selector
    assert (web.transfer, web.destinations, web.env, web.ignore) == (
        "tarball",
        ["local", "sandbox"],
        ["A"],
        ["*.log"],
    )
    assert (web.always, web.skip) == (False, False)
    # api: `*`, then the list selector (env replaced, ignore kept), then x-planner (transfer, always)
    assert (api.transfer, api.always, api.env, api.ignore) == ("registry", True, ["B"], ["*.log"])
    assert api.destinations == ["local", "sandbox"]
    # a rules image: selectors first, then its own entry (lists replace, never merge)
    assert (extra.transfer, extra.destinations, extra.env) == ("auto", ["sandbox"], ["B"])


def test_layer_keeps_unset_fields_and_copies_lists() -> None:
    base = EffectiveRules(env=["A"], destinations=["local", "x"], transfer="registry")
    own = ["y"]
    result = layer(base, NodeRules.model_validate({"destinations": own, "hash": {"ignore": ["i"]}}))
    assert result == EffectiveRules(env=["A"], ignore=["i"], destinations=["y"], transfer="registry")
    own.append("z")
    assert result.destinations == ["y"]
    assert layer(base, NodeRules.model_validate({})) == base
    assert layer(base, NodeRules.model_validate({"always": False, "hash": {}})) == base


def test_rules_depends_on_is_a_build_order_edge_source(tmp_path: Path) -> None:
    rules = "rules:\n  - match: web\n    depends_on: [api]\n"
    stack = load(project(tmp_path, rules=rules))
    assert stack.nodes["web"].rules.depends_on == ["api"]
    assert stack.nodes["api"].rules.depends_on == []


# --- interpolation ----------------------------------------------------------------------------------


def test_rules_values_are_interpolated_like_compose(tmp_path: Path) -> None:
    rules = """\
        registry:
          url: ${REGISTRY:-127.0.0.1:5000}
          namespace: ${NS}
          username: $$literal
        destinations:
          sandbox: {host: "${SANDBOX_HOST:?set SANDBOX_HOST}"}
        """
    root = project(tmp_path, rules=rules, **{".env": "NS=from-dotenv\n"})
    stack = load(root, env={"SANDBOX_HOST": "unix:///x.sock"})
    assert stack.rules.registry is not None
    assert stack.rules.registry.url == "127.0.0.1:5000"
    assert stack.rules.registry.namespace == "from-dotenv"
    assert stack.rules.registry.username == "$literal"
    assert stack.rules.destinations["sandbox"].host == "unix:///x.sock"

    stack = load(root, env={"REGISTRY": "reg:1", "NS": "from-env", "SANDBOX_HOST": "h"})
    assert stack.rules.registry is not None
    assert (stack.rules.registry.url, stack.rules.registry.namespace) == ("reg:1", "from-env")

    error = load_error(root)
    assert "set SANDBOX_HOST" in str(error)
    assert str(error).startswith(f"{root / 'planner.yaml'}:{line_of(root / 'planner.yaml', 'SANDBOX_HOST')}:")


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    stack = load(project(tmp_path, rules="destinations:\n  ${NAME}: {host: h}\n"), env={"NAME": "x"})
    assert list(stack.rules.destinations) == ["${NAME}"]


# --- discovery -------------------------------------------------------------------------------------


def test_discovery_order(tmp_path: Path) -> None:
    root = project(tmp_path, rules="builder: {name: default-file}\n")
    write(root, {"other.yaml": "builder: {name: from-option}\n", "env.yaml": "builder: {name: from-env}\n"})
    sub = root / "sub"
    sub.mkdir()
    assert load(root).rules.builder.name == "default-file"
    assert load(root, env={"PLANNER_RULES": "env.yaml"}).rules.builder.name == "from-env"
    assert load(root, "other.yaml", env={"PLANNER_RULES": "env.yaml"}).rules.builder.name == "from-option"
    # relative to the current directory, not the project directory
    stack = load(root, "../other.yaml", env={"PLANNER_RULES": "../env.yaml"}, cwd=sub)
    assert (stack.rules.builder.name, stack.rules_file) == ("from-option", sub / "../other.yaml")
    assert load(root, env={"PLANNER_RULES": "../env.yaml"}, cwd=sub).rules.builder.name == "from-env"
    assert load(root, str(root / "other.yaml"), cwd=sub).rules.builder.name == "from-option"


def test_no_rules_file_anywhere(tmp_path: Path) -> None:
    assert rules_path(tmp_path, None, {}, tmp_path) is None
    assert rules_path(tmp_path, None, {"PLANNER_RULES": ""}, tmp_path) is None
    assert load_rules(None, {}) == (Rules(), None)


def test_missing_explicit_rules_files_are_usage_errors(tmp_path: Path) -> None:
    root = project(tmp_path, rules="version: 1\n")
    with pytest.raises(UsageError, match="--rules: no such file"):
        load(root, "missing.yaml")
    with pytest.raises(UsageError, match="PLANNER_RULES: no such file"):
        load(root, env={"PLANNER_RULES": "missing.yaml"})


def test_a_folder_named_planner_yaml_is_not_a_rules_file(tmp_path: Path) -> None:
    (tmp_path / "planner.yaml").mkdir()
    assert rules_path(tmp_path, None, {}, tmp_path) is None


# --- errors with file:line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "needle", "message"),
    [
        ("version: 1\nimagez: {}\n", "imagez", "unknown key imagez"),
        ("images:\n  x:\n    context: api\n    contxt: api\n", "contxt", "unknown key images.x.contxt"),
        ("rules:\n  - match: api\n    hash: {inputz: [a]}\n", "inputz", "unknown key rules.0.hash.inputz"),
        ("builder:\n  kind: podman\n", "podman", "builder.kind"),
        ("images:\n  x:\n    always: maybe\n", "maybe", "images.x.always"),
        ("images:\n  x:\n    tags: latest\n", "latest", "images.x.tags"),
        ("version: 2\n", "version", "version"),
        ("registry:\n  namespace: x\n", "namespace", "registry.url is required"),
        ("artifacts:\n  a:\n    output: {type: zip, dest: out}\n", "zip", "artifacts.a.output.type"),
        ("stamps:\n  s:\n    path: x\n", "path", "stamps.s.from is required"),
        ("rules:\n  - transfer: auto\n", "transfer", "rules.0.match is required"),
        ("rules:\n  - match: api\n    transfer: ftp\n", "ftp", "rules.0.transfer"),
        ("- just\n- a list\n", "just", "must be a mapping"),
    ],
)
def test_invalid_rules_name_file_and_line(tmp_path: Path, rules: str, needle: str, message: str) -> None:
    """The line is the offending value's (for a missing key, the first line of the mapping that lacks it)."""
    root = project(tmp_path, rules=rules)
    error = load_error(root)
    assert message in str(error)
    path = root / "planner.yaml"
    assert str(error).startswith(f"{path}:{line_of(path, needle)}:"), str(error)
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("rules", "needle", "message"),
    [
        ("images:\n  x:\n    context: api\n    depends_on: [ghost]\n", "ghost", "x: depends_on names unknown node 'ghost'"),
        ("rules:\n  - match: '*'\n    transfer: auto\n  - match: web\n    depends_on: [ghost]\n", "ghost", "web: depends_on names unknown node 'ghost'"),
        ("images:\n  x:\n    context: api\n    destinations: [mars]\n", "mars", "x: unknown destination 'mars' (known: local)"),
        ("destinations:\n  moon: {host: h}\nrules:\n  - match: api\n    destinations: [moon, mars]\n", "mars", "api: unknown destination 'mars' (known: local, moon)"),
        ("artifacts:\n  a:\n    context: api\n    output:\n      type: local\n      dest: ../outside\n", "outside", "artifacts.a.output.dest: ../outside is outside the project directory"),
        ("artifacts:\n  a:\n    context: api\n    output: {type: tar, dest: /tmp/x.tar}\n", "x.tar", "is outside the project directory"),
        ("stamps:\n  s:\n    path: v.txt\n    from: ghost\n", "ghost", "stamps.s.from: unknown node 'ghost'"),
        ("stamps:\n  s:\n    path: ../v.txt\n    from: api\n", "../v.txt", "stamps.s.path: ../v.txt is outside the project directory"),
        ("stamps:\n  s:\n    path: v.txt\n    from: api\n    template: '{sha}'\n", "template", "stamps.s.template: bad field"),
        ("images:\n  api:\n    context: api\n", "context", "images.api: a compose service already has this name"),
        ("artifacts:\n  web:\n    output: {type: local, dest: o}\n", "output", "artifacts.web: a compose service already has this name"),
    ],
)  # fmt: skip
def test_invalid_references_name_file_and_line(tmp_path: Path, rules: str, needle: str, message: str) -> None:
    root = project(tmp_path, rules=rules)
    error = load_error(root)
    assert message in str(error)
    path = root / "planner.yaml"
    assert str(error).startswith(f"{path}:{line_of(path, needle)}:"), str(error)


def test_artifact_dest_may_be_the_project_directory_itself(tmp_path: Path) -> None:
    stack = load(
        project(
            tmp_path, rules="artifacts:\n  a:\n    context: api\n    output: {type: local, dest: sub/..}\n"
        )
    )
    assert stack.nodes["a"].output_dest == str(tmp_path)


def test_x_planner_errors_point_into_the_compose_file(tmp_path: Path) -> None:
    compose = COMPOSE.replace("    build: ./api\n", "    build: ./api\n    x-planner:\n      alwayz: true\n")
    root = project(tmp_path, compose=compose)
    error = load_error(root)
    assert "unknown key services.api.x-planner.alwayz" in str(error)
    assert str(error).startswith(f"{root / 'compose.yaml'}:{line_of(root / 'compose.yaml', 'alwayz')}:")

    compose = COMPOSE.replace(
        "    build: ./api\n", "    build: ./api\n    x-planner:\n      destinations: [mars]\n"
    )
    root = project(tmp_path, rules="rules:\n  - match: '*'\n    transfer: auto\n", compose=compose)
    error = load_error(root)
    assert "api: unknown destination 'mars'" in str(error)
    assert str(error).startswith(f"{root / 'compose.yaml'}:"), (
        "the bad value is in x-planner, not the selector"
    )

    compose = COMPOSE.replace(
        "    build: ./api\n", "    build: ./api\n    x-planner:\n      depends_on: [ghost]\n"
    )
    root = project(tmp_path, compose=compose)
    assert str(load_error(root)).startswith(f"{root / 'compose.yaml'}:")


def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    root = project(tmp_path, rules="images:\n  x:\n    context: api\n    depends_on: [ghost]\n")
    result = CliRunner().invoke(app, ["graph", "--project-directory", str(root)], env={"PLANNER_RULES": ""})
    assert result.exit_code == 2
    line = line_of(root / "planner.yaml", "ghost")
    assert result.stderr.splitlines() == [
        f"planner: {root / 'planner.yaml'}:{line}:17: x: depends_on names unknown node 'ghost'"
    ]


def test_the_cli_takes_rules_from_the_option_and_the_environment(tmp_path: Path) -> None:
    root = project(tmp_path, rules="version: 1\n")
    write(
        root,
        {"alt.yaml": "images:\n  extra: {context: api}\n", "env.yaml": "images:\n  viaenv: {context: api}\n"},
    )
    runner = CliRunner()
    args = ["graph", "--project-directory", str(root)]
    for extra_args, env, expected in (
        ([], {"PLANNER_RULES": ""}, {"api", "web"}),
        (
            ["--rules", str(root / "alt.yaml")],
            {"PLANNER_RULES": str(root / "env.yaml")},
            {"api", "web", "extra"},
        ),
        ([], {"PLANNER_RULES": str(root / "env.yaml")}, {"api", "web", "viaenv"}),
    ):
        result = runner.invoke(app, [*args, *extra_args], env=env)
        assert result.exit_code == 0, result.output
        assert {n["name"] for n in json.loads(result.stdout)["nodes"]} == expected
