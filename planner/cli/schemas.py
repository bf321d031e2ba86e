"""JSON Schemas generated from the models; schemas/*.schema.json are these outputs (a test checks the drift)."""

from __future__ import annotations

import json
from typing import Any

from planner.rules.model import Rules

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_dict(name: str) -> dict[str, Any]:
    if name == "rules":
        schema = Rules.model_json_schema(by_alias=True)
        schema["title"] = "planner rules file (planner.yaml)"
    elif name == "plan":
        from planner.plan.model import Plan

        schema = Plan.model_json_schema(by_alias=True)
        schema["title"] = "planner plan --format json"
    else:  # pragma: no cover - the CLI restricts the choice
        raise ValueError(name)
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema_json(name: str) -> str:
    return json.dumps(schema_dict(name), indent=2, sort_keys=False) + "\n"
