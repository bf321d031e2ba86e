"""Secret build args beyond the default patterns: the rules' `secret_args` globs, for the outputs that show
args."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.compose.model import ComposeProject
    from planner.compose.options import ProjectOptions


def config_secret_args(
    project: ComposeProject, options: ProjectOptions, rules_option: str | None
) -> list[str]:
    """The rules' `secret_args` for `planner config` (none without a rules file; a bad file raises RulesError)."""
    from planner.rules.load import load_rules, rules_path

    path = rules_path(Path(project.working_dir), rules_option, options.environ, Path(options.cwd))
    rules, _ = load_rules(path, project.environment)
    return list(rules.secret_args)
