"""Differential property test: random compose projects on disk, planner against Docker Compose v2.

Hypothesis generates whole projects: one to four services with short- and long-form builds, interpolated
values over a process environment, `.env` and `--env-file` files, several `-f` files or default discovery of
the override file (`!reset` / `!override` included), `extends` within the file and from files in subfolders,
`include` of a subfolder project with its own `.env`, profiles, and every source of the project name. Each
project is loaded by planner in-process and by the real `docker compose config --format json` (v2.40.3, the
oracle): both must succeed or both fail, and on success agree on the project name, the set of enabled
services, and per service the image and the build fields planner models (`BUILD_FIELDS`).

`PLANNER_DIFF_EXAMPLES` sets the number of examples (default 300). The run is database-less and derandomized,
so CI always explores the same inputs. Disagreements found so far have minimal reproductions in
test_differential_regressions.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from planner.base.errors import InputError
from planner.compose.loader import load_project
from planner.compose.options import ProjectOptions
from tests.oracle import compose_v2_binary, require_compose_v2, run_compose_config, unescape_dollars

pytestmark = pytest.mark.oracle

EXAMPLES = int(os.environ.get("PLANNER_DIFF_EXAMPLES", "300"))
ROOT = "@ROOT@"  # placeholder for the temporary root folder in generated files and values

BUILD_FIELDS = (
    "context", "dockerfile", "dockerfile_inline", "args", "target", "additional_contexts", "tags",
    "platforms", "cache_from", "cache_to", "labels", "network", "shm_size", "no_cache", "pull",
)  # fmt: skip

# Folders every generated project has (relative to the root; the project folder is "{p}").
DIRS = (
    "{p}/ctx", "{p}/sub/ctx", "{p}/sub/deeper/ctx", "{p}/inc/ctx", "{p}/over", "shared", "abs/ctx", "homectx",
)  # fmt: skip


# --- a small YAML writer (block style, strings double-quoted unless wrapped in Plain) ----------------------


@dataclass(frozen=True)
class Plain:
    """A scalar written verbatim, unquoted: `1.5`, `yes`, `0x1F`, `~`."""

    text: str


@dataclass(frozen=True)
class Tagged:
    """A value carrying a Compose merge tag: `!reset` or `!override`."""

    tag: str
    value: Any


Node: TypeAlias = Any  # dict[str, Node] | list[Node] | str | int | float | bool | None | Plain | Tagged
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _scalar(value: Node) -> str:
    if isinstance(value, Plain):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _block(value: Node, indent: int) -> tuple[str, list[str]]:
    """(text after `key:` / `-`, following lines) for one value."""
    tag = ""
    if isinstance(value, Tagged):
        tag, value = value.tag, value.value
    if isinstance(value, dict | list) and value:
        lines = _mapping(value, indent) if isinstance(value, dict) else _sequence(value, indent)
        return (" " + tag if tag else ""), lines
    text = "{}" if isinstance(value, dict) else "[]" if isinstance(value, list) else _scalar(value)
    return " " + (tag + " " if tag else "") + text, []


def _mapping(node: dict[str, Node], indent: int) -> list[str]:
    lines = []
    for key, value in node.items():
        inline, rest = _block(value, indent + 2)
        lines.append(" " * indent + _key(key) + ":" + inline)
        lines.extend(rest)
    return lines


def _sequence(node: list[Node], indent: int) -> list[str]:
    lines = []
    for value in node:
        if isinstance(value, dict) and value:
            inner = _mapping(value, indent + 2)
            lines.append(" " * indent + "- " + inner[0].lstrip())
            lines.extend(inner[1:])
        else:
            inline, rest = _block(value, indent + 2)
            lines.append(" " * indent + "-" + inline)
            lines.extend(rest)
    return lines


def to_yaml(document: dict[str, Node]) -> str:
    return "\n".join(_mapping(document, 0)) + "\n"


# --- the scenario: files on disk plus one invocation -------------------------------------------------------


@dataclass
class Scenario:
    folder: str  # the project folder, under the temporary root
    files: dict[str, str]  # path relative to the root -> content (ROOT placeholders inside)
    env: dict[str, str]  # the process environment besides PATH and HOME
    cwd: str  # relative to the root
    compose_files: list[str] = field(default_factory=list)  # -f, relative to cwd
    project_name: str | None = None  # -p
    profiles: list[str] = field(default_factory=list)  # --profile
    env_files: list[str] = field(default_factory=list)  # --env-file, relative to cwd
    project_directory: str | None = None  # --project-directory, relative to cwd

    def cli_args(self) -> list[str]:
        args: list[str] = []
        for path in self.compose_files:
            args += ["-f", path]
        if self.project_directory is not None:
            args += ["--project-directory", self.project_directory]
        if self.project_name is not None:
            args += ["-p", self.project_name]
        for path in self.env_files:
            args += ["--env-file", path]
        for profile in self.profiles:
            args += ["--profile", profile]
        return args

    def materialise(self, root: Path) -> None:
        for directory in DIRS:
            (root / directory.format(p=self.folder)).mkdir(parents=True, exist_ok=True)
        for rel, content in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content.replace(ROOT, str(root)), encoding="utf-8")

    def environ(self, root: Path) -> dict[str, str]:
        """The complete environment of both runs."""
        env = {k: v.replace(ROOT, str(root)) for k, v in self.env.items()}
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), **env}

    def describe(self) -> str:
        """The files, the environment and the command, as a reader would reproduce them by hand."""
        lines = []
        for rel, content in sorted(self.files.items()):
            lines.append(f"--- {ROOT}/{rel}")
            lines.extend("    " + line for line in content.rstrip("\n").split("\n"))
        env = [f"{k}={v}" for k, v in self.env.items()]
        command = [f"HOME={ROOT}", *env, "docker-compose", *self.cli_args(), "config", "--format", "json"]
        lines.append(f'$ cd {shlex.quote(f"{ROOT}/{self.cwd}")} && env -i PATH="$PATH" {shlex.join(command)}')
        return "\n".join(lines)

    def _shape_changes(self) -> bool:
        """Whether some service field is a list in one compose file and a mapping in another."""
        shapes: dict[tuple[str, str], set[str]] = {}
        for rel, text in self.files.items():
            if not rel.endswith((".yaml", ".yml")) or "/sub/" in rel or "/inc/" in rel:
                continue
            service, key = "", ("", "")
            for line in text.splitlines():
                if re.match(r"^  [^ ].*:$", line):
                    service = line.strip()[:-1]
                elif match := re.match(r"^    ([a-z_]+):$", line):
                    key = (service, match.group(1))
                elif re.match(r"^      - ", line):
                    shapes.setdefault(key, set()).add("list")
                elif re.match(r"^      [^ -]", line):
                    shapes.setdefault(key, set()).add("mapping")
        return any(len(found) > 1 for found in shapes.values())

    def features(self) -> list[str]:
        """What this project exercises (reported by `pytest --hypothesis-show-statistics`)."""
        text = "\n".join(self.files.values())
        own = "\n".join(
            t for rel, t in self.files.items() if rel.count("/") == 1 and rel.endswith(("ml", ".yaml"))
        )
        found = {
            "files: default discovery": not self.compose_files and "COMPOSE_FILE" not in text + str(self.env),
            "files: COMPOSE_FILE": "COMPOSE_FILE" in text + str(self.env),
            "files: several -f": len(self.compose_files) > 1,
            "files: override file": any("override" in rel for rel in self.files),
            "extends: same file": bool(re.search(r'extends: "|service: "(web|api|db|worker)"', own)),
            "extends: other file": "base.yaml" in own,
            "include": "include:" in text,
            "merge tag: !reset": "!reset" in text,
            "merge tag: !override": "!override" in text,
            "env: .env": any(rel.endswith("/.env") for rel in self.files),
            "env: --env-file": bool(self.env_files),
            "profiles": bool(self.profiles) or "COMPOSE_PROFILES" in text + str(self.env),
            "project name: name:": "\nname:" in "\n" + text,
            "project name: -p / COMPOSE_PROJECT_NAME": bool(self.project_name)
            or "COMPOSE_PROJECT_NAME" in text,
            "cwd: subfolder": self.cwd.endswith("/sub"),
            "--project-directory": self.project_directory is not None,
            "service:NAME context": "service:" in text,
            "env: COMPOSE_ENV_FILES": "COMPOSE_ENV_FILES" in self.env,
            "env: COMPOSE_DISABLE_ENV_FILE": "COMPOSE_DISABLE_ENV_FILE" in self.env,
            "platform: service": "\n    platform:" in text,
            "platform: DOCKER_DEFAULT_PLATFORM": "DOCKER_DEFAULT_PLATFORM" in text + str(self.env),
            "env_file: service": "env_file:" in text,
            "implicit depends_on": bool(re.search(r"links:|volumes_from:|network_mode: .service:", text)),
            "explicit null": bool(re.search(r"\n {4}[a-z_]+: null", text)),
            "shape: list meets mapping": self._shape_changes(),
        }
        return [name for name, present in found.items() if present]


# --- strategies ------------------------------------------------------------------------------------------
# Strategy factories are cached: building strategies is what costs time in Hypothesis, not drawing from them.

VARS = ("A", "B", "C", "TAG", "SHM")  # interpolation variables the environments may set
SERVICE_NAMES = ("web", "api", "db", "worker")
ODD_SERVICE_NAMES = ("Web.2", "x_y-z", "bad name")
PROFILES = ("p1", "p2")


def weighted(*pairs: tuple[int, Any]) -> st.SearchStrategy[Any]:
    """sampled_from with integer weights (Hypothesis shrinks towards the first value).

    Hypothesis favours both ends of a list, so the first value is repeated at the end: rare values placed last
    stay rare."""
    values = [value for weight, value in pairs for _ in range(weight)]
    return st.sampled_from([*values, values[0]])


def pick(values: tuple[Any, ...] | list[Any]) -> st.SearchStrategy[Any]:
    """sampled_from without the bias towards the last value (see `weighted`)."""
    return weighted(*((1, value) for value in values))


def one_of_weighted(*pairs: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """one_of with integer weights (Hypothesis shrinks towards the first strategy).

    (`st.one_of` drops repeated branches, so repeating a strategy does not weight it.)"""
    chooser = weighted(*((weight, index) for index, (weight, _) in enumerate(pairs)))
    strategies = [strategy for _, strategy in pairs]

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        return draw(strategies[draw(chooser)])

    return pick()


VAR_NAMES = weighted((8, "A"), (6, "B"), (4, "C"), (4, "TAG"), (1, "UNSET_X"), (1, "PWD"))
OPERATORS = weighted((8, ":-"), (6, "-"), (4, ":+"), (4, "+"), (1, ":?"), (1, "?"))
LITERALS = pick(["x", "v1", "a b", "/", "-", ".", ":", "1", "é", "{", "}"])
SIMPLE_PIECES = st.one_of(
    LITERALS, st.just("$$"), VAR_NAMES.map(lambda n: "$" + n), VAR_NAMES.map(lambda n: "${" + n + "}")
)
INVALID_TEMPLATES = pick(["${", "${A", "x${A:-y", "${ A}"])


@functools.cache
def template_sequence(depth: int, min_size: int) -> st.SearchStrategy[str]:
    piece = SIMPLE_PIECES
    if depth > 0:
        braced = st.builds(
            lambda name, op, arg: "${" + name + op + arg + "}",
            VAR_NAMES,
            OPERATORS,
            template_sequence(depth - 1, 0),
        )
        piece = st.one_of(SIMPLE_PIECES, braced)
    return st.lists(piece, min_size=min_size, max_size=3).map("".join)


@functools.cache
def templates(max_depth: int = 2) -> st.SearchStrategy[str]:
    """Interpolation templates: `$VAR`, `${VAR}`, the six operators (nested), `$$`, literal text; rarely a
    malformed one."""
    return one_of_weighted((400, template_sequence(max_depth, 1)), (1, INVALID_TEMPLATES))


@functools.cache
def maybe_template(literals: tuple[str, ...], template_weight: int = 1) -> st.SearchStrategy[str]:
    """Mostly one of `literals`, sometimes a literal with a template glued on, sometimes a bare template."""
    base = pick(literals)
    glued = st.builds(lambda a, t: a + t, base, templates(1))
    return one_of_weighted((6, base), (template_weight, glued), (template_weight, templates()))


CONTEXTS = (
    ".", "ctx", "./ctx", "ctx/", "sub/ctx", "./sub/../ctx", "..", "../shared", f"{ROOT}/abs/ctx",
    f"{ROOT}/shared/", f"{ROOT}/abs/../shared", "~/homectx", "https://github.com/docker/welcome.git#main", "",
)  # fmt: skip
EXTRA_CONTEXTS = (
    "../shared", "./ctx", "ctx", f"{ROOT}/abs/ctx", "docker-image://alpine:3.19", "https://github.com/a/b.git",
    "~/homectx", "oci-layout://./layout",
)  # fmt: skip
DOCKERFILES = (
    "Dockerfile", "Dockerfile.dev", "docker/Dockerfile", "../Dockerfile", f"{ROOT}/abs/Dockerfile", "",
)  # fmt: skip
INLINES = ("FROM alpine", "FROM $${BASE:-alpine}\nRUN echo $$HOME", "FROM busybox\n", "")
IMAGES = ("alpine", "alpine:3.19", "registry.local:5000/team/app:1.0", "app", "")
TAGS = ("app:1", "reg.example/app:latest", "app:dev", "app:1")  # a duplicate on purpose
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
CACHES = ("type=registry,ref=reg/app:cache", "app:cache", "type=local,src=/tmp/cache", "type=gha")
NETWORKS = ("host", "none", "default")
TARGETS = ("dev", "prod", "")
SHM_SIZES: tuple[Node, ...] = (
    67108864, 0, "64m", "1g", "1.5gb", "256M", "2GB", "100", "10kb", "1024b", Plain("128m"), 1.5,
)  # fmt: skip
BAD_SHM_SIZES = ("12x", "-1")
SHM_VARS = ("${SHM:-64m}", "${SHM}", "${SHM-1g}")
ARG_KEYS = ("A", "B", "K1", "K2", "TAG", "UNSET_X", "k-3", "A", "K1", "B", "$A")  # keys are not interpolated
LABEL_KEYS = ("com.example.a", "b", "A", "c.d", "b", "${B}")
PLAIN_SCALARS = (
    "1", "1.5", "true", "yes", "null", "~", "017", "0o17", "0x1F", "1_000", "1e3", ".5", "+1", "1.0",
)  # fmt: skip
BOOLEANS: st.SearchStrategy[Node] = weighted(
    (8, True), (8, False), (1, "true"), (1, Plain("yes")), (1, "${C:-false}"), (1, "False"), (1, Plain("on")),
    (1, "1"), (1, Plain("0")),
)  # fmt: skip
ODD_SCALARS = pick([Plain("1"), Plain("1.5"), Plain("true"), Plain("0x10")])  # non-strings
SCALAR_VALUES: st.SearchStrategy[Node] = st.one_of(
    maybe_template(("v", "1", "hello world", "a=b"), 3),
    weighted((3, None), (2, ""), (1, 1), (1, 1.5), (1, True), (1, False), (1, 0)),
    pick(PLAIN_SCALARS).map(Plain),
)


@functools.cache
def key_values(keys: tuple[str, ...]) -> st.SearchStrategy[Node]:
    """Map form `{K: V}` or list form `["K=V", "K", "K="]` (list entries are interpolated as a whole)."""
    as_map = st.dictionaries(st.sampled_from(keys), SCALAR_VALUES, max_size=4)
    entry = st.one_of(
        st.builds(
            lambda k, v: f"{k}={v}", st.sampled_from(keys), maybe_template(("v", "1", "", "x=y", "a b"))
        ),
        st.sampled_from(keys),
        st.builds(lambda t: f"{t}=v", templates(1)),
    )
    return st.one_of(as_map, st.lists(entry, max_size=4))


@functools.cache
def string_lists(values: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(maybe_template(values), max_size=3)


@functools.cache
def build_values(others: tuple[str, ...]) -> Mapping[str, st.SearchStrategy[Node]]:
    """Strategy per long-form build key; `others` are the services `service:NAME` contexts may name."""
    contexts = one_of_weighted(
        (4, pick(EXTRA_CONTEXTS)),
        (2, maybe_template(EXTRA_CONTEXTS[:3])),
        (1, st.sampled_from([f"service:{name}" for name in others] or ["service:ghost"])),
    )
    names = st.sampled_from(("base", "src", "tools"))
    extra_map = st.dictionaries(names, contexts, max_size=3)
    extra_list = st.lists(st.builds(lambda k, v: f"{k}={v}", names, contexts), max_size=3)
    values: dict[str, st.SearchStrategy[Node]] = {
        "context": maybe_template(CONTEXTS),
        "dockerfile": maybe_template(DOCKERFILES),
        "dockerfile_inline": maybe_template(INLINES),
        "args": key_values(ARG_KEYS),
        "target": maybe_template(TARGETS),
        "additional_contexts": st.one_of(extra_map, extra_list),
        "tags": string_lists(TAGS),
        "platforms": string_lists(PLATFORMS),
        "cache_from": string_lists(CACHES),
        "cache_to": string_lists(CACHES),
        "labels": key_values(LABEL_KEYS),
        "network": maybe_template(NETWORKS),
        "shm_size": one_of_weighted(
            (12, pick(SHM_SIZES)),
            (1, pick(BAD_SHM_SIZES)),
            (1, pick(SHM_VARS)),
        ),
        "no_cache": BOOLEANS,
        "pull": BOOLEANS,
    }
    for key in ("dockerfile", "target", "network", "context"):
        values[key] = one_of_weighted((60, values[key]), (1, ODD_SCALARS))
    return {
        key: one_of_weighted((150, value), (1, st.none())) for key, value in values.items()
    }  # null: invalid


@functools.cache
def build_sections(
    others: tuple[str, ...], max_keys: int = 6, contexts: tuple[str, ...] = CONTEXTS
) -> st.SearchStrategy[Node]:
    """`build:` as a short-form path or a long-form mapping with a random subset of keys."""
    values = {**build_values(others), "context": maybe_template(contexts)}

    @st.composite
    def long_form(draw: st.DrawFn) -> dict[str, Node]:
        keys = draw(st.lists(st.sampled_from(BUILD_FIELDS), max_size=max_keys, unique=True))
        if "dockerfile" in keys and "dockerfile_inline" in keys and draw(weighted((6, True), (1, False))):
            keys.remove(draw(st.sampled_from(["dockerfile", "dockerfile_inline"])))  # mutually exclusive
        if "context" not in keys and draw(weighted((3, True), (1, False))):
            keys.insert(0, "context")
        return {key: draw(values[key]) for key in keys}

    return st.one_of(maybe_template(contexts), long_form())


RESETS = pick([Tagged("!reset", None), Tagged("!reset", {}), Tagged("!reset", [])])


@functools.cache
def tagged(value: st.SearchStrategy[Node], override: bool = True) -> st.SearchStrategy[Node]:
    """Sometimes wrap an override file's value in `!override`, or replace it with `!reset`."""
    overridden = value.map(lambda v: Tagged("!override", v))
    return one_of_weighted((8, value), (1, RESETS), (1 if override else 0, overridden))


@functools.cache
def override_build(others: tuple[str, ...], tags: bool = True) -> st.SearchStrategy[Node]:
    """A build section of an override file: short form, or a few (tagged, unless `tags` is false) keys of the
    long form. (No tags inside an `!override` value: compose-go leaves them unprocessed, see the regressions.)"""
    values = {key: tagged(strategy) if tags else strategy for key, strategy in build_values(others).items()}

    @st.composite
    def long_form(draw: st.DrawFn) -> dict[str, Node]:
        keys = draw(st.lists(st.sampled_from(BUILD_FIELDS), min_size=1, max_size=3, unique=True))
        return {key: draw(values[key]) for key in keys}

    return one_of_weighted((4, long_form()), (1, maybe_template(CONTEXTS)))


IMAGE_VALUES = one_of_weighted((100, maybe_template(IMAGES)), (1, st.none()))

# Service fields planner does not print but must validate and merge as Compose does (issue #13): a list or a
# mapping form (files and overrides pick independently, so a list meets a mapping; `shape_flip` makes one meet
# the other on purpose), rarely an explicit null (refused), a reference to something undeclared or an empty
# spec; a service platform (checked against build.platforms); env_file entries, present, missing or optional;
# links, volumes_from and `service:` network modes, which Compose adds to depends_on (compared).
SHAPED_FIELDS: dict[str, tuple[st.SearchStrategy[Node], st.SearchStrategy[Node]]] = {
    "environment": (st.lists(pick(["X=1", "Y", "Z=${A:-z}"]), max_size=2, unique=True),
                    st.dictionaries(pick(["X", "Y", "W"]), pick(["1", None, "v"]), max_size=2)),
    "labels": (st.lists(pick(["l=1", "m=2"]), max_size=2, unique=True),
               st.dictionaries(pick(["l", "n"]), pick(["1", "x"]), max_size=2)),
    "networks": (st.lists(pick(["front", "back", "default"]), max_size=2, unique=True),
                 st.dictionaries(pick(["front", "back"]), pick([None, {}, {"aliases": ["al"]}]), max_size=2)),
    "extra_hosts": (st.lists(pick(["h1:10.0.0.1", "h2=10.0.0.2"]), max_size=2, unique=True),
                    st.dictionaries(pick(["h1", "h3"]), pick(["10.0.0.3", "10.0.0.4"]), max_size=2)),
    "sysctls": (st.lists(pick(["net.core.somaxconn=1", "net.ipv4.ip_forward=0"]), max_size=2, unique=True),
                st.dictionaries(pick(["net.core.somaxconn", "net.ipv4.tcp_syncookies"]), pick([1, "0"]),
                                max_size=2)),
    "annotations": (st.lists(pick(["an=1", "bn=2"]), max_size=2, unique=True),
                    st.dictionaries(pick(["an", "cn"]), pick(["1", "x"]), max_size=2)),
}  # fmt: skip
# Both forms non-empty, for a list meeting a mapping (an empty list or mapping would not change the shape).
FLIP_FORMS: dict[str, tuple[st.SearchStrategy[Node], st.SearchStrategy[Node]]] = {
    "environment": (pick([["X=1"], ["Y"], ["Z=${A:-z}", "X=2"]]), pick([{"X": "1"}, {"Y": None, "W": "v"}])),
    "labels": (pick([["l=1"], ["m=2", "l=3"]]), pick([{"l": "1"}, {"n": "x"}])),
    "networks": (pick([["front"], ["back", "default"]]),
                 pick([{"front": None}, {"back": {}}, {"front": {"aliases": ["al"]}}])),
    "extra_hosts": (pick([["h1:10.0.0.1"], ["h2=10.0.0.2"]]), pick([{"h1": "10.0.0.3"}, {"h3": "10.0.0.4"}])),
    "sysctls": (pick([["net.core.somaxconn=1"]]), pick([{"net.core.somaxconn": 2}, {"net.ipv4.ip_forward": "0"}])),
    "annotations": (pick([["an=1"], ["bn=2"]]), pick([{"an": "1"}, {"cn": "x"}])),
}  # fmt: skip
NULLABLE = ("volumes", "ports", "depends_on", "env_file", "healthcheck", "secrets", "configs", "links")
REFERENCES: st.SearchStrategy[dict[str, Node]] = weighted(
    (4, {"secrets": ["s"]}), (4, {"volumes": ["v:/x", "./c:/d"]}), (4, {"ports": ["80"]}),
    (2, {"configs": ["c"]}), (1, {"networks": ["undeclared"]}), (1, {"secrets": ["nope"]}),
    (1, {"configs": ["nope"]}), (1, {"volumes": ["nope:/x"]}), (1, {"volumes": [""]}), (1, {"ports": [""]}),
)  # fmt: skip
ENV_FILE_ENTRIES: st.SearchStrategy[Node] = weighted(
    (4, "svc.env"), (2, ["svc.env", {"path": "missing.env", "required": False}]), (1, "missing.env"),
    (1, [{"path": "missing.env", "required": True}]), (1, [{"path": "missing.env", "required": "${C:-false}"}]),
)  # fmt: skip


@st.composite
def service_extras(draw: st.DrawFn, others: tuple[str, ...] = ()) -> dict[str, Node]:
    extras: dict[str, Node] = {}
    for key in draw(st.lists(pick(sorted(SHAPED_FIELDS)), max_size=2, unique=True)):
        as_list, as_map = SHAPED_FIELDS[key]
        extras[key] = draw(one_of_weighted((10, as_list), (10, as_map), (1, st.none())))
    if draw(weighted((6, False), (1, True))):
        extras.update(draw(REFERENCES))
    if draw(weighted((15, False), (1, True))):
        extras[draw(pick(NULLABLE))] = None
    if draw(weighted((8, False), (1, True))):
        extras["env_file"] = draw(ENV_FILE_ENTRIES)
    if draw(weighted((3, False), (1, True))):  # implicit dependencies (rarely on a service that is not there)
        target = draw(weighted((12, "other"), (1, "ghost"))) if others else "ghost"
        name = draw(pick(others)) if target == "other" else "ghost"
        key = draw(pick(["links", "volumes_from", "network_mode"]))
        extras[key] = f"service:{name}" if key == "network_mode" else [name]
        if key == "network_mode":
            extras.pop("networks", None)  # (both at once is an error of its own, not the one drawn here)
    if draw(weighted((6, False), (1, True))):
        extras["platform"] = draw(pick([*PLATFORMS, "linux/s390x"]))
    return extras


@st.composite
def shape_flip(draw: st.DrawFn, names: tuple[str, ...]) -> tuple[str, str, Node, Node]:
    """(service, field, value in the main file, value in the override) of different shapes."""
    key = draw(pick(sorted(FLIP_FORMS)))
    as_list, as_map = FLIP_FORMS[key]
    first, then = (as_list, as_map) if draw(st.booleans()) else (as_map, as_list)
    return draw(pick(names)), key, draw(first), draw(then)


SERVICE_PROFILES = st.lists(st.sampled_from([*PROFILES, "${A:-p1}"]), min_size=1, max_size=2, unique=True)


@st.composite
def main_services(
    draw: st.DrawFn, names: tuple[str, ...], with_base_file: bool, included: tuple[str, ...]
) -> dict[str, Node]:
    services: dict[str, Node] = {}
    for index, name in enumerate(names):
        service: dict[str, Node] = {}
        extends = draw(
            weighted(
                (24, "none"), (4, "same"), (8 if with_base_file else 0, "file"), (1 if included else 0, "inc")
            )
        )
        if extends == "same" and index > 0:
            target = draw(st.sampled_from(names[:index]))
            service["extends"] = draw(st.sampled_from([target, {"service": target}]))
        elif extends == "file":
            path = draw(
                weighted((6, "sub/base.yaml"), (1, "./sub/../sub/base.yaml"), (1, "${SUBDIR:-sub}/base.yaml"))
            )
            service["extends"] = {"file": path, "service": draw(st.sampled_from(["base", "base2"]))}
        elif extends == "inc":  # a service the include brings in
            service["extends"] = draw(st.sampled_from(included))
        has_image = draw(st.booleans())
        if has_image:
            service["image"] = draw(IMAGE_VALUES)
        if draw(weighted((1, False), (3, True))) or ("extends" not in service and not has_image):
            service["build"] = draw(build_sections(tuple(n for n in names if n != name)))
        if draw(weighted((4, False), (1, True))):
            service["profiles"] = draw(SERVICE_PROFILES)
        if index > 0 and draw(weighted((40, False), (1, True))):
            service["depends_on"] = [draw(st.sampled_from(names[:index]))]
        if draw(weighted((3, False), (1, True))):
            service.update(draw(service_extras(tuple(n for n in names if n != name))))
        services[name] = service
    return services


OVERRIDE_PROFILES = tagged(st.lists(st.sampled_from(PROFILES), max_size=2, unique=True))
OVERRIDE_IMAGES = tagged(IMAGE_VALUES, override=False)


@st.composite
def override_documents(draw: st.DrawFn, names: tuple[str, ...]) -> dict[str, Node]:
    chosen = draw(st.lists(st.sampled_from([*names, "extra"]), min_size=1, max_size=3, unique=True))
    services: dict[str, Node] = {}
    for name in chosen:
        service: dict[str, Node] = {}
        if name == "extra":
            service["image"] = draw(IMAGE_VALUES)
            if draw(weighted((12, False), (1, True))):
                service["extends"] = draw(st.sampled_from(names))  # a service of an earlier file
        if draw(weighted((3, False), (1, True))):
            service["image"] = draw(OVERRIDE_IMAGES)
        if draw(weighted((1, False), (3, True))):
            others = tuple(n for n in names if n != name)
            overridden = override_build(others, tags=False).map(lambda v: Tagged("!override", v))
            service["build"] = draw(
                one_of_weighted((8, override_build(others)), (1, RESETS), (1, overridden))
            )
        if draw(weighted((6, False), (1, True))):
            service["profiles"] = draw(OVERRIDE_PROFILES)
        if draw(weighted((3, False), (1, True))):
            service.update(draw(service_extras(tuple(n for n in names if n != name))))
        services[name] = service
    document: dict[str, Node] = {"services": services}
    if draw(weighted((8, False), (1, True))):
        document = {"name": draw(maybe_template(("override-name", "Other"))), **document}
    return document


BASE_CONTEXTS = (".", "ctx", "../ctx", "../../shared", "deeper/ctx", f"{ROOT}/abs/ctx")


@st.composite
def base_files(draw: st.DrawFn) -> dict[str, str]:
    """sub/base.yaml (services `base`, `base2`) and sub/deeper/more.yaml, for extends from other files."""
    base: dict[str, Node] = {}
    if draw(st.booleans()):
        base["image"] = draw(st.sampled_from(IMAGES[:3]))
    base["build"] = draw(build_sections(("base2",), 4, BASE_CONTEXTS))
    base2: dict[str, Node] = {}
    if draw(st.booleans()):
        base2["extends"] = "base"
    else:
        base2["extends"] = {"file": "deeper/more.yaml", "service": "more"}
    if draw(st.booleans()):
        base2["build"] = draw(build_sections(("base",), 3, BASE_CONTEXTS))
    more = {"build": draw(build_sections((), 3, (".", "ctx", "../ctx", "../../../shared")))}
    return {
        "sub/base.yaml": to_yaml({"services": {"base": base, "base2": base2}}),
        "sub/deeper/more.yaml": to_yaml({"services": {"more": more}}),
    }


@st.composite
def included_project(draw: st.DrawFn) -> tuple[Node, dict[str, str], tuple[str, ...]]:
    """(include entry, files, service names) of a project in inc/ with its own .env ("web" may collide with
    a main service: an error case)."""
    names = draw(
        st.lists(weighted((16, "lib"), (12, "tool"), (1, "web")), min_size=1, max_size=2, unique=True)
    )
    services: dict[str, Node] = {}
    for name in names:
        service: dict[str, Node] = {}
        if draw(st.booleans()):
            service["image"] = draw(maybe_template(("inc/app:1", "lib")))
        others = tuple(n for n in names if n != name)
        if services and draw(weighted((3, False), (1, True))):
            service["extends"] = next(iter(services))  # extends inside the included project
            if draw(st.booleans()):
                service["build"] = draw(build_sections(others, 3, (".", "ctx", "../shared")))
        else:
            service["build"] = draw(build_sections(others, 4, (".", "ctx", "../shared")))
        services[name] = service
    document: dict[str, Node] = {"services": services}
    if draw(weighted((3, False), (1, True))):
        document = {"name": "included", **document}
    files = {"inc/compose.yaml": to_yaml(document), "inc/.env": draw(dotenv_text(draw(ENV_ASSIGNMENTS)))}
    form = draw(weighted((3, "short"), (2, "path"), (1, "env_file"), (1, "project_directory")))
    entry: Node = "inc/compose.yaml"
    if form == "path":
        paths = [
            "inc/compose.yaml",
            ["inc/compose.yaml"],
            "./inc/compose.yaml",
            "${INCDIR:-inc}/compose.yaml",
        ]
        entry = {"path": draw(st.sampled_from(paths))}
    elif form == "env_file":
        files["inc/other.env"] = draw(dotenv_text(draw(ENV_ASSIGNMENTS)))
        entry = {
            "path": "inc/compose.yaml",
            "env_file": draw(st.sampled_from(["inc/other.env", ["inc/other.env"]])),
        }
    elif form == "project_directory":
        entry = {"path": "inc/compose.yaml", "project_directory": draw(pick(["inc", ".", "sub"]))}
    return entry, files, tuple(names)


ENV_VALUES = ("", "x", "1", "v2", "a b", "ctx", "64m", "p1", "$$x", "-")
DOTENV_VALUES = (*ENV_VALUES, "${B}", "$A-x", "${UNSET_X:-dflt}", "${A:+alt}")  # .env values are interpolated
ENV_ASSIGNMENTS = st.dictionaries(pick(VARS), pick(DOTENV_VALUES), max_size=3)
DOTENV_STYLES = weighted(
    (8, "plain"), (4, "double"), (2, "single"), (2, "export"), (1, "comment"), (1, "spaced")
)


@st.composite
def dotenv_text(draw: st.DrawFn, assignments: Mapping[str, str]) -> str:
    """A .env file: unquoted, double- or single-quoted values, sometimes `export` or a comment."""
    lines = []
    if draw(weighted((4, False), (1, True))):
        lines.append("# generated")
    for name, value in assignments.items():
        style = draw(DOTENV_STYLES)
        if style == "plain" and (" " in value or not value):
            style = "double"
        if style == "double":
            lines.append(f'{name}="{value}"')
        elif style == "single":
            lines.append(f"{name}='{value}'")
        elif style == "export":
            lines.append(f"export {name}={json.dumps(value)}")
        elif style == "comment":
            lines.append(f"{name}={value} # note")
        elif style == "spaced":
            lines.append(f"{name} = {json.dumps(value)}")
        else:
            lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


FOLDERS = ("proj", "My_Proj.v2", "-dash", "UPPER", "x y")
MAIN_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILE_NAMES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yml")
CLI_NAMES = weighted((8, "cli-name"), (7, "cli_2"), (1, "Bad Name"))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    folder = draw(weighted((6, "proj"), *((1, f) for f in FOLDERS[1:])))
    names = tuple(draw(st.lists(st.sampled_from(SERVICE_NAMES), min_size=1, max_size=4, unique=True)))
    if draw(weighted((30, False), (1, True))):
        names = (*names[1:], draw(pick(ODD_SERVICE_NAMES)))
    files: dict[str, str] = {}
    with_base_file = draw(weighted((2, False), (1, True)))
    if with_base_file:
        files.update({f"{folder}/{rel}": text for rel, text in draw(base_files()).items()})

    main: dict[str, Node] = {}
    name_source = draw(weighted((4, "folder"), (2, "name"), (1, "-p"), (1, "env"), (1, "dotenv")))
    if name_source == "name":
        main["name"] = draw(
            one_of_weighted((5, st.sampled_from(["demo", "My-App", "app_2"])), (1, templates(1)))
        )
    included: tuple[str, ...] = ()
    if draw(weighted((4, False), (1, True))):
        entry, included_files, included = draw(included_project())
        main["include"] = [entry]
        files.update({f"{folder}/{rel}": text for rel, text in included_files.items()})
    main["services"] = draw(main_services(names, with_base_file, included))
    main["networks"] = {"front": {}, "back": None}
    main["volumes"] = {"v": None}
    main["secrets"] = {"s": {"environment": "A"}}
    main["configs"] = {"c": {"environment": "A"}}
    files[f"{folder}/svc.env"] = "FROM_ENV_FILE=1\n"
    overrides = draw(st.lists(override_documents(names), max_size=2))
    if draw(weighted((3, False), (1, True))):  # a list-form value overridden by a mapping (or the reverse)
        service, key, first, then = draw(shape_flip(names))
        if isinstance(main["services"][service], dict):
            main["services"][service][key] = first
            if key == "networks":
                main["services"][service].pop("network_mode", None)
            if not overrides:
                overrides = [{"services": {}}]
            overrides[0]["services"].setdefault(service, {})[key] = then

    # Environment: each variable unset, in the process env, in .env, both, or in an --env-file.
    use_env_files = draw(weighted((5, False), (1, True)))
    process: dict[str, str] = {}
    dotenv: dict[str, str] = {}
    env_file: dict[str, str] = {}
    places = weighted(
        (3, "unset"), (3, "process"), (2, "dotenv"), (1, "both"), (2 if use_env_files else 0, "file")
    )
    for var in VARS:
        place = draw(places)
        if place in ("process", "both"):
            process[var] = draw(pick(ENV_VALUES))
        if place in ("dotenv", "both"):
            dotenv[var] = draw(pick(DOTENV_VALUES))
        if place == "file":
            env_file[var] = draw(pick(DOTENV_VALUES))

    profiles: list[str] = []
    profile_source = draw(weighted((3, "none"), (2, "flag"), (1, "env"), (1, "dotenv")))
    selection = draw(st.lists(st.sampled_from([*PROFILES, "*", "nope"]), min_size=1, max_size=2, unique=True))
    if profile_source == "flag":
        profiles = selection
    elif profile_source == "env":
        process["COMPOSE_PROFILES"] = ",".join(selection)
    elif profile_source == "dotenv":
        dotenv["COMPOSE_PROFILES"] = ",".join(selection)

    project_name = None
    if name_source == "-p":
        project_name = draw(CLI_NAMES)
    elif name_source == "env":
        process["COMPOSE_PROJECT_NAME"] = draw(CLI_NAMES)
    elif name_source == "dotenv":
        dotenv["COMPOSE_PROJECT_NAME"] = draw(CLI_NAMES)

    # Files and how they are named on the command line.
    mode = draw(weighted((4, "-f"), (3, "default"), (1, "COMPOSE_FILE")))
    in_sub = draw(weighted((5, False), (1, True)))  # run from <project>/sub
    prefix = "../" if in_sub else ""
    compose_files: list[str] = []
    if mode == "default":
        main_name = draw(weighted((4, MAIN_FILE_NAMES[0]), *((1, n) for n in MAIN_FILE_NAMES[1:])))
        files[f"{folder}/{main_name}"] = to_yaml(main)
        if overrides:
            files[f"{folder}/{draw(st.sampled_from(OVERRIDE_FILE_NAMES))}"] = to_yaml(overrides[0])
    else:
        files[f"{folder}/compose.yaml"] = to_yaml(main)
        compose_files = [prefix + "compose.yaml"]
        for index, document in enumerate(overrides):
            rel = draw(st.sampled_from([f"override{index}.yaml", f"over/override{index}.yaml"]))
            files[f"{folder}/{rel}"] = to_yaml(document)
            compose_files.append(prefix + rel)
        if mode == "COMPOSE_FILE":
            where = process if draw(weighted((2, True), (1, False))) else dotenv
            where["COMPOSE_FILE"] = ":".join(compose_files)
            compose_files = []

    if draw(weighted((10, False), (1, True))):  # the platform every build gets unless it names one
        where = process if draw(st.booleans()) else dotenv
        where["DOCKER_DEFAULT_PLATFORM"] = draw(pick(PLATFORMS))
    if draw(weighted((6, False), (1, True))):
        process["COMPOSE_DISABLE_ENV_FILE"] = draw(weighted((4, "1"), (4, "true"), (2, "false"), (1, "yes")))
    if dotenv:
        files[f"{folder}/.env"] = draw(dotenv_text(dotenv))
    env_files: list[str] = []
    if use_env_files:
        files[f"{folder}/custom.env"] = draw(dotenv_text(env_file))
        env_files = [prefix + "custom.env"]
        if draw(st.booleans()):
            files[f"{folder}/sub/extra.env"] = draw(dotenv_text(draw(ENV_ASSIGNMENTS)))
            env_files.append(("" if in_sub else "sub/") + "extra.env")
        if draw(st.booleans()):  # named by COMPOSE_ENV_FILES instead of --env-file
            process["COMPOSE_ENV_FILES"] = ",".join(env_files)
            env_files = []
    if in_sub and draw(weighted((3, False), (1, True))):
        files[f"{folder}/sub/.env"] = draw(dotenv_text(draw(ENV_ASSIGNMENTS)))
    project_directory = None
    if mode != "default" and draw(weighted((8, False), (1, True))):
        project_directory = draw(st.sampled_from([".", "sub"] if not in_sub else [".", ".."]))

    return Scenario(
        folder=folder,
        files=files,
        env=process,
        cwd=f"{folder}/sub" if in_sub else folder,
        compose_files=compose_files,
        project_name=project_name,
        profiles=profiles,
        env_files=env_files,
        project_directory=project_directory,
    )


# --- running both sides and comparing --------------------------------------------------------------------

Outcome: TypeAlias = dict[str, Any]  # {"ok": True, "name", "services"} or {"ok": False, "error"}


def _build_view(build: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The compared build fields, with JSON omissions (omitempty) and planner's defaults made equal."""
    if build is None:
        return None
    shm = build.get("shm_size")
    return {
        "context": build.get("context"),
        "dockerfile": build.get("dockerfile") or None,
        "dockerfile_inline": build.get("dockerfile_inline") or None,
        "args": dict(build.get("args") or {}),
        "target": build.get("target") or None,
        "additional_contexts": dict(build.get("additional_contexts") or {}),
        "tags": list(build.get("tags") or []),
        "platforms": list(build.get("platforms") or []),
        "cache_from": list(build.get("cache_from") or []),
        "cache_to": list(build.get("cache_to") or []),
        "labels": dict(build.get("labels") or {}),
        "network": build.get("network") or None,
        "shm_size": int(shm) if shm else None,
        "no_cache": bool(build.get("no_cache")),
        "pull": bool(build.get("pull")),
    }


def project_view(config: Mapping[str, Any]) -> Outcome:
    """Name and per-service image + build of a `config`-shaped document (the binary's or planner's)."""
    services = config.get("services") or {}
    return {
        "ok": True,
        "name": config.get("name"),
        "services": {
            name: {
                "image": svc.get("image") or None,
                "build": _build_view(svc.get("build")),
                "depends_on": sorted(svc.get("depends_on") or ()),
            }
            for name, svc in sorted(services.items())
        },
    }


def run_planner(scenario: Scenario, root: Path) -> Outcome:
    options = ProjectOptions(
        files=tuple(scenario.compose_files),
        project_directory=scenario.project_directory,
        project_name=scenario.project_name,
        profiles=tuple(scenario.profiles),
        env_files=tuple(scenario.env_files),
        environ=scenario.environ(root),
        cwd=str(root / scenario.cwd),
    )
    try:
        project = load_project(options)
    except InputError as error:
        return {"ok": False, "error": error.one_line()}
    except Exception:  # a crash is a bug whatever the binary says; assert_agree reports it
        return {"ok": False, "error": "planner crashed", "crash": traceback.format_exc()}
    return project_view(project.to_config())


def run_binary(scenario: Scenario, root: Path) -> Outcome:
    env = scenario.environ(root)
    proc = run_compose_config(root / scenario.cwd, scenario.cli_args(), env)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        errors = [line for line in lines if not line.startswith("time=")]  # drop logrus warnings
        return {"ok": False, "error": "\n".join(errors or lines)}
    return project_view(unescape_dollars(json.loads(proc.stdout), keys=True))


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def differences(theirs: Outcome, mine: Outcome) -> str:
    """A short summary: the outcomes, or each differing name / service / field."""
    if theirs["ok"] != mine["ok"] or not theirs["ok"]:
        return f"docker compose: {theirs.get('error', 'ok')}\nplanner: {mine.get('error', 'ok')}"
    lines = []
    if theirs["name"] != mine["name"]:
        lines.append(f"name: docker compose {theirs['name']!r}, planner {mine['name']!r}")
    for name in sorted(set(theirs["services"]) | set(mine["services"])):
        a, b = theirs["services"].get(name), mine["services"].get(name)
        if a is None or b is None:
            lines.append(f"service {name}: only in {'planner' if a is None else 'docker compose'}")
            continue
        if a["image"] != b["image"]:
            lines.append(f"{name}.image: docker compose {a['image']!r}, planner {b['image']!r}")
        if a["depends_on"] != b["depends_on"]:
            lines.append(
                f"{name}.depends_on: docker compose {a['depends_on']!r}, planner {b['depends_on']!r}"
            )
        if (a["build"] is None) != (b["build"] is None):
            lines.append(f"{name}.build: docker compose {a['build']!r}, planner {b['build']!r}")
        elif a["build"] is not None:
            for key in BUILD_FIELDS:
                if a["build"][key] != b["build"][key]:
                    lines.append(
                        f"{name}.build.{key}: docker compose {a['build'][key]!r}, planner {b['build'][key]!r}"
                    )
    return "\n".join(lines)


def relocate(outcome: Outcome, root: Path) -> Outcome:
    """The outcome with the temporary root written as ROOT, as in the generated files."""
    relocated: Outcome = json.loads(json.dumps(outcome).replace(json.dumps(str(root))[1:-1], ROOT))
    return relocated


def compare(scenario: Scenario, check: Callable[[Outcome, Outcome, str], None] | None = None) -> None:
    """Materialise the scenario in a fresh temporary root, run both sides and assert they agree."""
    with tempfile.TemporaryDirectory(prefix="planner-diff-") as tmp:
        root = Path(tmp).resolve()
        scenario.materialise(root)
        theirs = relocate(run_binary(scenario, root), root)
        mine = relocate(run_planner(scenario, root), root)
        report = (
            f"\n{differences(theirs, mine)}\n{scenario.describe()}\n"
            f"--- docker compose (oracle):\n{_json(theirs)}\n--- planner:\n{_json(mine)}"
        ).replace(str(root), ROOT)
        (check or assert_agree)(theirs, mine, report)


def assert_agree(theirs: Outcome, mine: Outcome, report: str) -> None:
    # Separate assertions, so Hypothesis reports each kind of disagreement as its own failure.
    if "crash" in mine:
        raise AssertionError(f"planner crashed:\n{mine['crash']}" + report)
    if theirs["ok"] and not mine["ok"]:
        raise AssertionError("planner rejects a project docker compose accepts" + report)
    if mine["ok"] and not theirs["ok"]:
        raise AssertionError("planner accepts a project docker compose rejects" + report)
    if not theirs["ok"]:
        return
    assert mine["name"] == theirs["name"], "project names differ" + report
    assert sorted(mine["services"]) == sorted(theirs["services"]), "enabled services differ" + report
    for name, service in theirs["services"].items():
        assert mine["services"][name]["image"] == service["image"], f"image of {name} differs" + report
    for name, service in theirs["services"].items():
        assert mine["services"][name]["depends_on"] == service["depends_on"], f"depends_on of {name}" + report
    assert mine["services"] == theirs["services"], "build sections differ" + report


@pytest.fixture(scope="module", autouse=True)
def _binary() -> str:
    return require_compose_v2()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(scenarios())
def test_planner_agrees_with_docker_compose(scenario: Scenario) -> None:
    for feature in scenario.features():
        event(feature)

    def check(theirs: Outcome, mine: Outcome, report: str) -> None:
        event("docker compose: " + ("accepts" if theirs["ok"] else "rejects"))
        assert_agree(theirs, mine, report)

    compare(scenario, check)


def _outcomes(document: dict[str, Node], env: dict[str, str]) -> tuple[Outcome, Outcome]:
    scenario = Scenario(folder="proj", files={"proj/compose.yaml": to_yaml(document)}, env=env, cwd="proj")
    outcomes: list[tuple[Outcome, Outcome]] = []
    compare(scenario, lambda theirs, mine, _report: outcomes.append((theirs, mine)))
    return outcomes[0]


def test_oracle_harness_sees_errors_and_values() -> None:
    """Guard against a vacuous oracle: rejections are seen, and accepted projects come back with their values
    (`$$` re-escaping undone in keys and values)."""
    assert compose_v2_binary() is not None
    theirs, mine = _outcomes({"services": {"web": {"image": "${A:?boom}"}}}, {})
    assert not theirs["ok"] and "boom" in theirs["error"]
    assert not mine["ok"]
    build = {"context": "ctx", "args": {"$$K": "$$v ${A}", "B": None}, "shm_size": "1g", "pull": True}
    theirs, mine = _outcomes(
        {"name": "Demo", "services": {"web": {"image": "app", "build": build}}}, {"A": "a"}
    )
    assert theirs == mine
    assert theirs["name"] == "demo"
    web = theirs["services"]["web"]
    assert web["image"] == "app"
    assert web["build"]["context"] == f"{ROOT}/proj/ctx"
    assert web["build"]["args"] == {"$$K": "$v a"}
    assert (web["build"]["shm_size"], web["build"]["pull"]) == (1024**3, True)
