"""Access to the shared compose conformance corpus (../shared/compose-corpus), read in place, never copied."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path | None:
    """The corpus folder: $PLANNER_COMPOSE_CORPUS, else ../shared/compose-corpus beside the repository."""
    configured = os.environ.get("PLANNER_COMPOSE_CORPUS")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "compose-corpus"
    return candidate if (candidate / "index.json").is_file() else None


def scenarios(root: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """(test id, case folder, scenario) for every scenario of every case, real-world ones included."""
    found = []
    for spec in sorted([*root.glob("*/expected.json"), *root.glob("real/*/reference.json")]):
        case_dir = spec.parent
        data = json.loads(spec.read_text())
        for scenario in data["scenarios"]:
            found.append((f"{case_dir.relative_to(root)}::{scenario['name']}", case_dir, scenario))
    return found


def _is_remote(value: str) -> bool:
    return "://" in value or value.startswith(("git@", "github.com/", "service:"))


def _norm_path(value: str | None, case_dir: Path, root: Path) -> str | None:
    if value is None or _is_remote(value) or not os.path.isabs(value):
        return value
    real = os.path.normpath(value)
    if real == str(root) or real.startswith(str(root) + os.sep):
        return os.path.relpath(real, case_dir).replace(os.sep, "/")
    return real


def _norm_extra(key: str, value: Any) -> Any:
    if key == "secrets":
        return [s["source"] if isinstance(s, dict) else s for s in value]
    return value


def normalise(config: dict[str, Any], case_dir: Path, root: Path, extra_keys: dict[str, list[str]]) -> Any:
    """planner's config output in the corpus' normalised shape (its README's rules)."""
    out: dict[str, Any] = {}
    for name, service in config["services"].items():
        build = service.get("build")
        entry: dict[str, Any] = {"image": service.get("image")}
        if build is None:
            entry["build"] = None
        else:
            entry["build"] = {
                "context": _norm_path(build["context"], case_dir, root),
                "dockerfile": build.get("dockerfile"),
                "dockerfile_inline": build.get("dockerfile_inline"),
                "args": build["args"],
                "target": build.get("target"),
                "additional_contexts": {
                    k: _norm_path(v, case_dir, root) for k, v in build["additional_contexts"].items()
                },
            }
            keys = extra_keys.get(name) or []
            if keys:
                entry["extra"] = {k: _norm_extra(k, build.get(k)) for k in keys}
        out[name] = entry
    return out
