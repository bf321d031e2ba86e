"""Finding, reading and validating the rules file; errors carry the file:line of the offending value."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from planner import inputs
from planner.compose.loader import interpolate_tree
from planner.compose.yamltree import YList, YMap, load_yaml_file, location_in, plain
from planner.errors import InputError, Location, UsageError
from planner.rules.model import Rules

DEFAULT_RULES_FILE = "planner.yaml"
RULES_ENV = "PLANNER_RULES"

M = TypeVar("M", bound=BaseModel)


class RulesError(InputError):
    """The rules file is invalid."""


def rules_path(project_dir: Path, explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`--rules`, else $PLANNER_RULES, else planner.yaml in the project directory (optional)."""
    if explicit:
        path = cwd / explicit
        if not inputs.is_file(path):
            raise UsageError(f"--rules: no such file: {path}")
        return path
    if environ.get(RULES_ENV):
        path = cwd / environ[RULES_ENV]
        if not inputs.is_file(path):
            raise UsageError(f"{RULES_ENV}: no such file: {path}")
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
    interpolate_tree(tree, environment, "")
    return validate(Rules, tree, tree.loc), tree


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
