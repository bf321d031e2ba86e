"""Secret build arg values (default patterns plus the rules' `secret_args`) stay out of plan, explain and apply's
logs, errors and summaries. No Docker: apply runs a stand-in build step through the real executor path."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from unittest.mock import ANY

import pytest
from rich.console import Console

from planner.apply import run
from planner.apply.executor import Step, StepContext
from planner.base.errors import RuntimeFailure
from planner.base.secrets import MASK, mask_config, mask_text, mask_url, secret_values, url_credentials
from planner.cli import render
from planner.commands import explain
from planner.compose.loader import load_project
from planner.compose.options import ProjectOptions
from planner.engine.observation import DaemonView, Observation
from planner.keys.compute import base_entries
from planner.keys.manifest import Manifest, value_hash
from planner.keys.store import Store
from planner.plan.decide import Forcing
from planner.plan.manifest_diff import Change
from planner.plan.pipeline import Planned, _decided, make_plan
from planner.plan.redact import mask_changes, node_secrets
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
            ".dockerignore": "compose.yaml\nplanner.yaml\ncache\n",  # a rotation changes no context file
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
    manifest = planned.manifests["s"]
    assert manifest.bases == {f"example.com/{MASK}/base": "unresolved"}  # the arg reached it, kept masked
    assert manifest.unchecked_bases == [f"example.com/{MASK}/base"]  # its ONBUILD triggers are unknown
    assert any(f"example.com/{MASK}/base" in r.detail for r in node.reasons if r.code == "onbuild-unchecked")
    assert [r.detail for r in node.reasons if r.code == "base-unresolved"] == [f"example.com/{MASK}/base"]
    assert SECRET not in planned.plan.model_dump_json()
    changes = [Change("changed", "base", f"example.com/{SECRET}/base")]
    masked = mask_changes(changes, node_secrets(planned.graph)["s"])
    assert masked == [Change("changed", "base", f"example.com/{MASK}/base")]


ROTATED = "r0tat3d-t0ken"


def rebuild_plan(root: Path, store: Store, previous_key: str) -> Planned:
    """The plan an online run makes when the daemon holds the build of `previous_key` (and not the current)."""
    planned = make_plan(options(root), None, [], offline=True, store=store)
    observation = Observation(
        daemons={"local": DaemonView("local")}, registry=None, previous_keys={"s": previous_key}
    )
    return _decided(planned.graph, store, planned.manifests, observation, {}, Forcing())


@pytest.mark.parametrize("volatile", [False, True], ids=["arg-in-key", "volatile-arg"])
def test_a_rotated_secret_in_a_base_ref_shows_in_no_plan_explain_or_manifest(
    root: Path, monkeypatch: pytest.MonkeyPatch, volatile: bool
) -> None:
    if volatile:  # the arg's own hash is not in the key: only the masked base ref's hash tells the change
        rules = 'secret_args: ["*_SEED"]\nrules:\n  - match: "*"\n    hash: {volatile_args: [NPM_TOKEN]}\n'
        (root / "planner.yaml").write_text(rules)
    store = Store.open(root / "cache")
    before = make_plan(options(root), None, [], offline=True, store=store).manifests["s"]
    assert before.bases == {f"example.com/{MASK}/base": "unresolved"}
    kept = store.manifest(before.key)
    assert kept is not None and SECRET not in repr(kept)

    (root / "compose.yaml").write_text(COMPOSE.replace(SECRET, ROTATED))
    planned = rebuild_plan(root, store, before.key)
    after = planned.manifests["s"]
    assert after.key != before.key  # the key is exact: it changes with the secret
    assert after.bases == before.bases and after.masked_bases != before.masked_bases
    (node,) = planned.plan.nodes
    assert node.action == "build"
    assert ("base-changed", f"~ example.com/{MASK}/base") in [(r.code, r.detail) for r in node.reasons]

    monkeypatch.setattr(explain, "make_plan", lambda *args, **kwargs: rebuild_plan(root, store, before.key))
    explanation = explain._explain(options(root), None, "s", store)
    assert f"~ base example.com/{MASK}/base" in [c.line() for c in explanation.changes]

    table = StringIO()
    render.print_plan_table(planned.plan, Console(file=table, width=300))
    outputs = {
        "plan json": render.plan_json(planned.plan),
        "plan table": table.getvalue(),
        "explain text": render.explanation_text(explanation),
        "explain json": render.explanation_json(explanation),
        "manifests": repr((store.manifest(before.key), store.manifest(after.key))),
    }
    for what, text in outputs.items():
        assert SECRET not in text and ROTATED not in text, what
    store.close()


def test_base_refs_without_a_secret_keep_their_key_lines() -> None:
    refs = ["debian:12", f"example.com/{SECRET}/base", f"example.com/{SEED}/base", "abc/x"]
    ids = {ref: f"id-of-{name}" for ref, name in zip(refs, ["debian:12", "one", "two", "abc/x"], strict=True)}

    def identity(ref: str) -> str:
        return ids[ref]

    bases, masked = base_entries(refs, identity, (SEED, SECRET))
    assert bases == {"debian:12": "id-of-debian:12", "abc/x": "id-of-abc/x", f"example.com/{MASK}/base": ANY}
    assert set(masked) == {f"example.com/{MASK}/base"}  # two refs that mask alike: one entry, both hashed
    assert bases[f"example.com/{MASK}/base"] == "id-of-one,id-of-two"
    assert base_entries(refs[:3], identity, (SECRET,))[1] != masked  # which refs stand behind it counts
    manifest = Manifest(node="s", bases=bases, masked_bases=masked)
    lines = [line for line in manifest.lines({}) if line.startswith("base ")]
    assert "base debian:12 id-of-debian:12" in lines and "base abc/x id-of-abc/x" in lines  # as before
    assert all(SECRET not in line and SEED not in line for line in lines)
    assert base_entries(["debian:12"], identity, ()) == ({"debian:12": "id-of-debian:12"}, {})
    unresolved = base_entries([f"a/{SECRET}", f"a/{SEED}"], lambda ref: "unresolved", (SECRET, SEED))[0]
    assert unresolved == {f"a/{MASK}": "unresolved"}  # still `unresolved` for decide and gc


def test_pull_bases_prints_and_fails_with_the_secret_masked(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner.commands import shimsteps
    from planner.engine import daemon
    from planner.engine.daemon import DaemonError

    pulled: list[str] = []

    class FakeDaemon:
        def __init__(self, name: str, url: str | None) -> None:
            self.name = name

        def pull(self, ref: str) -> None:
            pulled.append(ref)
            if fail:
                raise DaemonError(f"daemon {self.name}: pull {ref} failed: denied")

        def close(self) -> None:
            pass

    monkeypatch.setattr(daemon, "Daemon", FakeDaemon)
    fail = False
    assert shimsteps.pull_bases(options(root), []) == [f"example.com/{MASK}/base"]
    assert pulled == [f"example.com/{SECRET}/base"]  # pulled as used
    fail = True
    with pytest.raises(DaemonError) as raised:
        shimsteps.pull_bases(options(root), [])
    assert str(raised.value) == f"daemon local: pull example.com/{MASK}/base failed: denied"


@pytest.mark.parametrize(
    ("ref", "credentials", "masked"),
    [
        (
            "https://ghp_T0KEN@github.com/o/r.git#main:sub",
            "ghp_T0KEN",
            f"https://{MASK}@github.com/o/r.git#main:sub",
        ),
        ("HTTP://user:pa55@host/r.git", "user:pa55", f"HTTP://{MASK}@host/r.git"),
        ("ssh://git@github.com/o/r.git", None, "ssh://git@github.com/o/r.git"),  # a user, no secret
        ("ssh://git:pa55@host/r.git", "git:pa55", f"ssh://{MASK}@host/r.git"),
        ("git@github.com:o/r.git", None, "git@github.com:o/r.git"),
        ("https://github.com/o/r.git#v1@x", None, "https://github.com/o/r.git#v1@x"),  # `@` after the host
        ("docker-image://alpine@sha256:abcd", None, "docker-image://alpine@sha256:abcd"),
        ("service:base", None, "service:base"),
    ],
)
def test_credentials_in_a_remote_context_url(ref: str, credentials: str | None, masked: str) -> None:
    assert url_credentials(ref) == credentials
    assert mask_url(ref) == masked


REMOTE = "https://x-access-token:ghp_S3cretT0ken@github.com/org/repo.git#main"
LABEL = "label-value-that-stays-home"


def test_a_token_in_a_git_context_and_label_values_stay_out_of_the_cache_and_every_output(
    tmp_path: Path,
) -> None:
    """A git context with a token (Compose accepts one in the URL) and build labels: the key follows both, the
    plan, `planner config` and the manifest the cache keeps hold neither the token nor a label's value."""
    compose = (
        f"services:\n  s:\n    build:\n      context: {REMOTE}\n      labels: {{team: {LABEL}}}\n"
        f"  t:\n    build:\n      context: .\n      additional_contexts: {{src: '{REMOTE}'}}\n"
    )
    root = write_tree(tmp_path, {"compose.yaml": compose, "Dockerfile": "FROM scratch\n"})
    store = Store.open(root / "cache")
    planned = make_plan(options(root), None, [], offline=True, store=store)
    manifests = planned.manifests
    assert manifests["s"].contexts["."].startswith(f"https://{MASK}@github.com/org/repo.git#main ")
    assert manifests["t"].contexts["src"].startswith(f"https://{MASK}@github.com/org/repo.git#main ")
    assert node_secrets(planned.graph)["s"] == ("x-access-token:ghp_S3cretT0ken",)
    kept = repr([store.manifest(manifest.key) for manifest in manifests.values()])
    config = config_text(root)
    for what, text in {"manifests": kept, "plan": planned.plan.model_dump_json(), "config": config}.items():
        assert "ghp_S3cretT0ken" not in text, what
    assert LABEL not in kept
    assert f"{MASK}@github.com" in config
    # the key follows the token and the label value, hidden as they are
    for old, new in ((REMOTE, REMOTE.replace("S3cret", "R0tated")), (LABEL, "another-value")):
        (root / "compose.yaml").write_text(compose.replace(old, new))
        again = make_plan(options(root), None, [], offline=True, store=store).manifests
        assert again["s"].key != manifests["s"].key, old
    store.close()


def test_label_key_lines_are_as_before() -> None:
    """Labels are kept as value hashes; the key line is the one a label always had (no key changes)."""
    lines = Manifest(node="s", labels={"team": value_hash(LABEL)}).lines({})
    assert f"label team={value_hash(LABEL)}" in lines and not any(LABEL in line for line in lines)


def config_text(root: Path) -> str:
    """What `planner config` prints (without --show-secrets)."""
    return json.dumps(mask_config(load_project(options(root)).to_config()))
