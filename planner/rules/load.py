"""Finding, reading and validating the rules file; errors carry the file:line of the offending value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from planner.base import inputs
from planner.base.errors import InputError, Location, UsageError
from planner.base.refs import namespace_problem, registry_host_problem
from planner.compose.loader import interpolate_tree
from planner.compose.yamltree import YList, YMap, load_yaml_file, location_in, plain
from planner.rules.model import Rules

DEFAULT_RULES_FILE = "planner.yaml"
RULES_ENV = "PLANNER_RULES"

M = TypeVar("M", bound=BaseModel)
_VARIABLE = re.compile(r"\$(\{|[A-Za-z_])")  # a `${VAR}` / `$VAR` reference (`$$` is a literal dollar)


class RulesError(InputError):
    """The rules file is invalid."""


def rules_path(project_dir: Path, explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`--rules`, else $PLANNER_RULES, else planner.yaml in the project directory (optional)."""
    for option, value in (("--rules", explicit), (RULES_ENV, environ.get(RULES_ENV))):
        if not value:
            continue
        path = cwd / value
        if not inputs.is_file(path):
            problem = "is a directory, not a rules file" if inputs.is_dir(path) else "no such file"
            raise UsageError(f"{option}: {problem}: {path}")
        return path
    default = project_dir / DEFAULT_RULES_FILE
    return default if inputs.is_file(default) else None


def load_rules(path: Path | None, environment: Mapping[str, str]) -> tuple[Rules, YMap | None]:
    """The validated rules and their located tree (for later reference checks); empty rules when no file."""
    if path is None:
        return Rules(), None
    tree = load_yaml_file(path)
    if tree is None:
        return Rules(), None
    if not isinstance(tree, YMap):
        raise RulesError("the rules file must be a mapping", getattr(tree, "loc", Location(str(path))))
    _refuse_literal_password(tree)
    interpolate_tree(tree, environment, "")
    rules = validate(Rules, tree, tree.loc)
    _check_registries(rules, tree)
    return rules, tree


def _refuse_literal_password(tree: YMap) -> None:
    """`registry.password` must come from the environment (`${VAR}`): a literal would sit in the repository."""
    registry = tree.get("registry")
    if not isinstance(registry, YMap):
        return
    password = registry.get("password")
    if isinstance(password, str | int | float) and not _VARIABLE.search(str(password).replace("$$", "")):
        raise RulesError(
            "registry.password is a literal; write ${VAR} and set VAR in the environment or .env",
            registry.loc_of("password").at("registry.password"),
            hint="a password in the rules file ends up in version control",
        )


def _check_registries(rules: Rules, tree: YMap) -> None:
    if rules.registry is not None:
        for key, problem in (
            ("url", registry_host_problem(rules.registry.url)),
            ("namespace", namespace_problem(rules.registry.namespace)),
        ):
            if problem is not None:
                where = locate(tree, ("registry", key)) or tree.loc
                raise RulesError(f"registry.{key}: {problem}", where.at(f"registry.{key}"))
    for name, destination in rules.destinations.items():
        if destination.registry is not None and (problem := registry_host_problem(destination.registry)):
            where = locate(tree, ("destinations", name, "registry")) or tree.loc
            raise RulesError(
                f"destinations.{name}.registry: {problem}", where.at(f"destinations.{name}.registry")
            )


def validate(model: type[M], tree: Any, fallback: Location, prefix: str = "") -> M:
    """Validate a located tree against a model, reporting the first error at its file:line."""
    try:
        return model.model_validate(plain(tree))
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key_path = ".".join(str(part) for part in first["loc"])
        full_path = f"{prefix}.{key_path}" if prefix and key_path else (prefix or key_path)
        loc = locate(tree, first["loc"]) or fallback
        message = _message(first, full_path)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise RulesError(message, loc.at(full_path)) from None


def locate(tree: Any, path: tuple[int | str, ...]) -> Location | None:
    """The location of the deepest existing value along a pydantic error path."""
    found: Location | None = getattr(tree, "loc", None)
    node = tree
    for part in path:
        if isinstance(node, YMap) and isinstance(part, str) and part in node:
            found, node = location_in(node, part), node[part]
            continue
        if isinstance(node, YList) and isinstance(part, int) and 0 <= part < len(node):
            found, node = location_in(node, part), node[part]
            continue
        break
    return found


def _message(error: Any, key_path: str) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {key_path}"
    if kind == "missing":
        return f"{key_path} is required"
    return f"{key_path}: {error['msg']}"
