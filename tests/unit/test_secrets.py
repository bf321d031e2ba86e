"""Secret build arg values (default patterns plus the rules' `secret_args`) stay out of plan, explain and apply's
logs, errors and summaries. No Docker: apply runs a stand-in build step through the real executor path."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest

from planner import render
from planner.apply import run
from planner.apply.executor import Step, StepContext
from planner.compose.options import ProjectOptions
from planner.errors import RuntimeFailure
from planner.manifest_diff import Change
from planner.pipeline import make_plan
from planner.redact import mask_changes, node_secrets
from planner.secrets import MASK, mask_text, secret_values
from planner.store import Store
from tests.helpers import write_tree

SECRET = "s3cr3t-t0ken"
SEED = "seed-value-42"
COMPOSE = f"""\
services:
  s:
    build:
      context: .
      args: {{NPM_TOKEN: {SECRET}, MY_SEED: {SEED}, SHORT_TOKEN: abc, VERSION: "1.2"}}
"""


def options(root: Path) -> ProjectOptions:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PLANNER_CACHE_DIR": str(root / "cache")}
    return ProjectOptions(project_directory=str(root), environ=environ, cwd=str(root))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path,
        {
            "compose.yaml": COMPOSE,
            "planner.yaml": 'secret_args: ["*_SEED"]\n',
            "Dockerfile": "ARG NPM_TOKEN\nFROM example.com/${NPM_TOKEN}/base\n",
        },
    )


def test_secret_values_skip_short_and_non_secret_values() -> None:
    args = {"NPM_TOKEN": SECRET, "MY_SEED": SEED, "SHORT_TOKEN": "abc", "VERSION": "1.2.3.4"}
    assert secret_values(args) == (SECRET,)
    assert secret_values(args, ["*_SEED"]) == (SEED, SECRET)  # longest first
    line = f"echo {SECRET} {SEED} abc 1.2.3.4"
    assert mask_text(line, secret_values(args, ["*_SEED"])) == f"echo {MASK} {MASK} abc 1.2.3.4"
    assert mask_text("x", ()) == "x"


def test_apply_masks_secret_values_in_printed_and_kept_logs(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = make_plan(options(root), None, [], offline=True, store=Store.open(root / "cache"))

    def build(step: StepContext) -> None:
        step.log(f"#5 [2/2] RUN echo {SECRET}")
        step.log(f"{SECRET}")
        step.log(f"seed is {SEED}, short is abc")
        raise RuntimeFailure(f"s: build failed: token {SECRET} refused")

    monkeypatch.setattr(run, "make_steps", lambda ctx, plan_steps: [Step("build:s", "s", "build", build)])
    result = run.execute(planned, run.ApplyOptions(quiet=True), Store.open(root / "cache"))

    printed = StringIO()
    render.apply_summary(result, printed)
    kept = result.logs["build:s"].read_text()
    summary = render.apply_json(result)
    for text in (printed.getvalue(), kept, summary):
        assert SECRET not in text and SEED not in text
        assert MASK in text
    assert "short is abc" in printed.getvalue() and "short is abc" in kept  # short values stay
    assert kept.splitlines() == [f"#5 [2/2] RUN echo {MASK}", MASK, f"seed is {MASK}, short is abc"]
    assert result.results["build:s"].error == f"s: build failed: token {MASK} refused"


def test_plan_and_explain_mask_a_secret_value_in_a_base_ref(root: Path) -> None:
    planned = make_plan(options(root), None, [], offline=True, store=Store.open(root / "cache"))
    (node,) = planned.plan.nodes
    assert f"example.com/{SECRET}/base" in planned.manifests["s"].bases  # the arg reached the base ref
    assert [r.detail for r in node.reasons if r.code == "base-unresolved"] == [f"example.com/{MASK}/base"]
    assert SECRET not in planned.plan.model_dump_json()
    changes = [Change("changed", "base", f"example.com/{SECRET}/base")]
    masked = mask_changes(changes, node_secrets(planned.graph)["s"])
    assert masked == [Change("changed", "base", f"example.com/{MASK}/base")]
