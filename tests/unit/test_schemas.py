"""schemas/rules.schema.json is exactly `planner schema rules`, and every rules file in the repository obeys it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import jsonschema
import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from ruamel.yaml import YAML

from planner.build.stack import load_stack
from planner.cli.schemas import schema_json
from planner.compose.options import ProjectOptions
from planner.rules.load import load_rules
from planner.rules.model import Rules

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schemas" / "rules.schema.json"
REGENERATE = "regenerate it with `planner schema rules > schemas/rules.schema.json` and commit the result"
RULES_FILES = sorted((REPO / "rules").glob("*.yaml")) + sorted((REPO / "examples").rglob("planner.yaml"))


def yaml_data(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def test_schema_file_is_the_command_output_byte_for_byte() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "planner", "schema", "rules"], capture_output=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == SCHEMA_FILE.read_bytes(), (
        f"{SCHEMA_FILE} differs from the rules models: {REGENERATE}"
    )


def test_schema_module_and_file_agree() -> None:
    # the same check without a subprocess, so a drift also shows in a plain unit run
    assert schema_json("rules") == SCHEMA_FILE.read_text(encoding="utf-8"), f"schema drift: {REGENERATE}"


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False  # unknown keys are errors for editors too


def test_rules_files_exist() -> None:
    names = {p.relative_to(REPO).as_posix() for p in RULES_FILES}
    assert {"rules/helix.yaml", "rules/reference.yaml", "examples/compose/helix/planner.yaml"} <= names


@pytest.mark.parametrize("path", RULES_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_rules_files_validate_and_load(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml_data(path))
    ]
    assert errors == []
    rules, tree = load_rules(path, {})
    assert isinstance(rules, Rules)
    assert tree is not None


@pytest.mark.parametrize("path", sorted((REPO / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_rules_files_name_the_schema_for_editors(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    assert (path.parent / first.removeprefix(prefix)).resolve() == SCHEMA_FILE


def test_the_schema_rejects_what_the_models_reject() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    bad = [
        {"imagez": {}},
        {"version": 2},
        {"builder": {"kind": "podman"}},
        {"images": {"x": {"transfer": "ftp"}}},
        {"artifacts": {"x": {"output": {"type": "zip", "dest": "o"}}}},
        {"stamps": {"s": {"path": "p"}}},
        {"rules": [{"transfer": "auto"}]},
        {"registry": {"namespace": "n"}},
    ]
    for data in bad:
        assert not validator.is_valid(data), data
    assert validator.is_valid(
        {"stamps": {"s": {"path": "p", "from": "n"}}, "rules": [{"match": ["a", "b*"]}]}
    )


# --- rules/reference.yaml: complete, and every value its default ------------------------------------

REFERENCE = REPO / "rules" / "reference.yaml"


def _models_in(annotation: Any) -> tuple[str, type[BaseModel] | None]:
    """("model" | "map" | "list" | "plain", the model type) for a field annotation."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            kind, model = _models_in(arg)
            if model is not None:
                return kind, model
        return "plain", None
    if origin is dict:
        _, model = _models_in(get_args(annotation)[1])
        return ("map", model) if model is not None else ("plain", None)
    if origin is list:
        _, model = _models_in(get_args(annotation)[0])
        return ("list", model) if model is not None else ("plain", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "plain", None


def _check_reference(model: type[BaseModel], data: Any, where: str) -> list[str]:
    """Every field of `model` present in `data`, plain fields at their defaults; nested models recursively."""
    if not isinstance(data, dict):
        return [f"{where}: expected a mapping"]
    problems = []
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    problems += [f"{where}.{key}: missing" for key in fields if key not in data]
    problems += [f"{where}.{key}: not a field" for key in data if key not in fields]
    for key, info in fields.items():
        if key not in data:
            continue
        value, path = data[key], f"{where}.{key}" if where else key
        kind, nested = _models_in(info.annotation)
        if kind == "model" and nested is not None:
            problems += _check_reference(nested, value, path)
        elif kind in ("map", "list") and nested is not None:
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
            if not items:
                problems.append(f"{path}: holds no example entry")
            problems += [p for name, item in items for p in _check_reference(nested, item, f"{path}.{name}")]
        elif not info.is_required():
            default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
            if default is not PydanticUndefined and value != default:
                problems.append(f"{path}: {value!r} is not the default {default!r}")
    return problems


def test_reference_lists_every_field_at_its_default() -> None:
    assert _check_reference(Rules, yaml_data(REFERENCE), "") == []


def test_reference_check_catches_a_missing_field_and_a_wrong_default() -> None:
    data = yaml_data(REFERENCE)
    del data["builder"]["name"]
    data["registry"]["namespace"] = "other"
    data["images"]["example-image"]["hash"]["extra"] = None
    assert _check_reference(Rules, data, "") == [
        "registry.namespace: 'other' is not the default 'planner'",
        "builder.name: missing",
        "images.example-image.hash.extra: not a field",
    ]


def test_every_reference_line_has_a_comment() -> None:
    lines = [
        line
        for line in REFERENCE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert [line for line in lines if " # " not in line] == []


def test_reference_loads_as_a_projects_rules(tmp_path: Path) -> None:
    shutil.copy(REFERENCE, tmp_path / "planner.yaml")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    stack = load_stack(ProjectOptions(project_directory=str(tmp_path), environ=environ, cwd=str(tmp_path)))
    assert set(stack.nodes) == {"app", "example-image", "example-artifact"}
    assert stack.stamps["example-stamp"].template == "{key}\n"
    assert stack.nodes["example-image"].rules == stack.nodes["app"].rules  # all null: the built-in defaults


PLAN_SCHEMA_FILE = REPO / "schemas" / "plan.schema.json"


def test_plan_schema_file_is_the_command_output_and_a_plan_obeys_it() -> None:
    assert schema_json("plan") == PLAN_SCHEMA_FILE.read_text(encoding="utf-8"), (
        "plan schema drift: regenerate it with `planner schema plan > schemas/plan.schema.json`"
    )
    from planner.keys.store import Store
    from planner.plan.pipeline import make_plan

    schema = json.loads(PLAN_SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    helix = REPO / "examples" / "compose" / "helix"
    environ = {"PATH": "/usr/bin", "HOME": str(helix), "PLANNER_REGISTRY": "127.0.0.1:5000"}
    plan = make_plan(
        ProjectOptions(environ=environ, cwd=str(helix)), None, [], True, store=Store.memory()
    ).plan
    jsonschema.validate(json.loads(plan.model_dump_json()), schema)
