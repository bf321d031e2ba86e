"""A file name that is not valid UTF-8 (issue #12): hashed by its bytes, shown escaped (`caf\\xe9.txt`) in plan
reasons, explain and every JSON document, and sent to the builder with its original bytes."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from planner.base.names import printable
from planner.cli import render
from planner.commands import explain
from planner.compose.options import ProjectOptions
from planner.engine.context_tar import write_context
from planner.engine.observation import DaemonView, Observation
from planner.keys.store import Store
from planner.keys.walk import Entry
from planner.plan.decide import Forcing
from planner.plan.model import Plan, Reason
from planner.plan.pipeline import Planned, _decided, make_plan
from tests import helpers
from tests.helpers import write_tree

RAW = b"caf\xe9.txt"  # Latin-1 bytes: not UTF-8
NAME = os.fsdecode(RAW)  # how Python holds it: "caf\udce9.txt"
SHOWN = "caf\\xe9.txt"


def write_raw(folder: Path, content: bytes) -> None:
    helpers.write_raw(folder, RAW, content)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_tree(
        tmp_path,
        {
            "compose.yaml": "name: p\nservices:\n  app:\n    build: ctx\n",
            "ctx/Dockerfile": "FROM scratch\nCOPY . /x/\n",
        },
    )
    write_raw(tmp_path / "ctx", b"one")
    return tmp_path


def options(root: Path) -> ProjectOptions:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PLANNER_CACHE_DIR": str(root / "cache")}
    return ProjectOptions(project_directory=str(root), environ=environ, cwd=str(root))


def rebuild_plan(root: Path, store: Store, previous_key: str) -> Planned:
    """The plan an online run makes when the daemon holds the build of `previous_key` (and not the current)."""
    planned = make_plan(options(root), None, [], offline=True, store=store)
    observation = Observation(
        daemons={"local": DaemonView("local")}, registry=None, previous_keys={"app": previous_key}
    )
    return _decided(planned.graph, store, planned.manifests, observation, {}, Forcing())


def test_printable_escapes_only_undecodable_bytes() -> None:
    assert printable(NAME) == SHOWN
    assert printable("plain/é.txt") == "plain/é.txt"
    assert printable(printable(NAME)) == SHOWN  # idempotent: a plan read back stays the same
    assert Reason(code="x", detail=f"~ {NAME}").detail == f"~ {SHOWN}"


def test_an_edit_changes_the_key_and_plan_reasons_show_the_name_escaped(root: Path) -> None:
    store = Store.open(root / "cache")
    before = make_plan(options(root), None, [], offline=True, store=store).manifests["app"]
    assert any(name.endswith(NAME) for name in before.files)  # hashed under its own (undecodable) name
    write_raw(root / "ctx", b"two")
    planned = rebuild_plan(root, store, before.key)
    assert planned.manifests["app"].key != before.key
    (node,) = planned.plan.nodes
    assert node.action == "build"
    assert [(r.code, r.detail) for r in node.reasons] == [("file-changed", f"~ {SHOWN}")]
    text = render.plan_json(planned.plan)  # used to raise PydanticSerializationError (surrogates not allowed)
    assert json.loads(text)["nodes"][0]["reasons"][0]["detail"] == f"~ {SHOWN}"
    assert Plan.model_validate_json(text) == planned.plan
    table = io.StringIO()
    from rich.console import Console

    render.print_plan_table(planned.plan, Console(file=table, width=200))
    assert SHOWN in table.getvalue()
    text.encode("utf-8")  # strict: printable anywhere
    store.close()


def test_explain_shows_the_name_escaped(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(root / "cache")
    before = make_plan(options(root), None, [], offline=True, store=store).manifests["app"]
    write_raw(root / "ctx", b"two")
    monkeypatch.setattr(explain, "make_plan", lambda *args, **kwargs: rebuild_plan(root, store, before.key))
    explanation = explain._explain(options(root), None, "app", store)
    assert [c.line() for c in explanation.changes] == [f"~ file {SHOWN}"]
    text = render.explanation_text(explanation)
    assert f"~ file {SHOWN}" in text
    text.encode("utf-8")  # a UTF-8 terminal (strict stdout) can print it
    assert json.loads(render.explanation_json(explanation))["changes"] == [
        {"change": "changed", "input": "file", "name": SHOWN}
    ]
    store.close()


def test_the_context_tar_carries_the_original_bytes(root: Path) -> None:
    context = root / "ctx"
    st = os.lstat(os.path.join(os.fsencode(context), RAW))
    entry = Entry(NAME, "f", 0o644, st.st_size, st.st_mtime_ns)
    out = io.BytesIO()
    write_context(out, context, [entry], {})
    raw = out.getvalue()
    assert RAW in raw[:512]  # the header's name field holds the bytes themselves
    with tarfile.open(fileobj=io.BytesIO(raw), encoding="utf-8", errors="surrogateescape") as archive:
        (member,) = archive.getmembers()
        assert os.fsencode(member.name) == RAW
        handle = archive.extractfile(member)
        assert handle is not None and handle.read() == b"one"
