"""The plan memo: an identical `plan --offline` is answered from the memo only while nothing it read moved.

Every test compares against a full plan computed with the memo out of the way, so a stale answer fails."""

from __future__ import annotations

import os
import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planner.plan.pipeline
from planner.cli.main import main
from planner.plan import memo
from tests.helpers import write_tree

COMPOSE = """\
    services:
      api:
        build:
          context: ./api
          args:
            FLAVOUR: ${FLAVOUR:-plain}
      web:
        build: ./web
"""
DOCKERFILE = "FROM scratch\nCOPY . /app\n"
ARGS = ["plan", "--offline", "--format", "json"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_tree(
        tmp_path / "project",
        {
            "compose.yaml": COMPOSE,
            "api/Dockerfile": DOCKERFILE,
            "api/main.go": "package main\n",
            "api/.dockerignore": "*.log\n",
            "web/Dockerfile": DOCKERFILE,
            "web/src/app.js": "console.log(1)\n",
        },
    )
    monkeypatch.chdir(root)
    (tmp_path / "cache").mkdir()  # made now, so that tmp_path is settled when a witness
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FLAVOUR", raising=False)
    # Tests edit files milliseconds after a plan; a short racy window keeps memos possible yet safe here.
    monkeypatch.setattr(memo, "RACY_WINDOW_NS", 50_000_000)
    settle()
    return root


def settle() -> None:
    """Let freshly written files age past the test's racy window."""
    time.sleep(0.06)


class Runs:
    """Runs `planner` in-process, counting the full plans behind it, and compares with plans made afresh."""

    def __init__(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.capsys, self.tmp_path, self.monkeypatch = capsys, tmp_path, monkeypatch
        self.full_plans = 0
        original = planner.plan.pipeline.make_plan

        def counted(*args: object, **kwargs: object) -> planner.plan.pipeline.Planned:
            self.full_plans += 1
            return original(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(planner.plan.pipeline, "make_plan", counted)

    def plan(self, args: list[str] = ARGS) -> tuple[str, bool]:
        """(stdout, whether the memo answered)."""
        before = self.full_plans
        assert run_main(args) == 0
        return self.capsys.readouterr().out, self.full_plans == before

    def fresh(self) -> str:
        """The full plan with an empty cache: what a memo must agree with."""
        with self.monkeypatch.context() as scoped:
            scoped.setenv("PLANNER_CACHE_DIR", str(self.tmp_path / "fresh" / str(time.monotonic_ns())))
            assert run_main(ARGS) == 0
        return self.capsys.readouterr().out

    def change_is_seen(self, change: Callable[[], object]) -> None:
        """With a memo in place, `change()` makes the next plan run in full, and agree with a fresh one."""
        self.plan()
        assert self.plan()[1], "the memo should hold before the change"
        change()
        after, hit = self.plan()
        assert not hit
        assert after == self.fresh()


def run_main(args: list[str]) -> int:
    """`planner ARGS` in-process, its exit code; a full run ends in SystemExit like the console script, a memo
    hit returns."""
    try:
        main(args)
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


@pytest.fixture
def runs(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runs:
    return Runs(capsys, tmp_path, monkeypatch)


def test_identical_plan_is_answered_from_the_memo(project: Path, runs: Runs) -> None:
    first, first_hit = runs.plan()
    second, second_hit = runs.plan()
    assert (first_hit, second_hit) == (False, True)
    assert second == first
    assert '"key"' in second


def test_table_format_is_rendered_from_the_memo(project: Path, runs: Runs) -> None:
    args = ["plan", "--offline"]
    first, _ = runs.plan(args)
    second, hit = runs.plan(args)
    assert hit and second == first and "api" in second


def test_compose_warnings_are_replayed_by_the_memo(project: Path, runs: Runs) -> None:
    """Issue #13: Compose's load-time warnings on stderr, once each, also when the memo answers."""
    compose = project / "compose.yaml"
    compose.write_text('version: "3"\n' + textwrap.dedent(COMPOSE).replace("./web", "./web${WEB_SUFFIX}"))
    settle()
    expected = [
        f"planner: warning: {compose}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid "
        "potential confusion",
        'planner: warning: The "WEB_SUFFIX" variable is not set. Defaulting to a blank string.',
    ]
    for answered_by_memo in (False, True):
        before = runs.full_plans
        assert run_main(ARGS) == 0
        assert (runs.full_plans == before) is answered_by_memo
        assert sorted(runs.capsys.readouterr().err.splitlines()) == sorted(expected)


def test_another_command_line_is_another_memo(project: Path, runs: Runs) -> None:
    runs.plan()
    only_api, hit = runs.plan([*ARGS, "api"])
    assert not hit and '"web"' not in only_api


def _edit(path: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    return apply


def _chmod(root: Path) -> None:
    (root / "api/main.go").chmod(0o755)


def _remove(root: Path) -> None:
    (root / "web/src/app.js").unlink()


def _retarget_context(root: Path) -> None:
    write_tree(root, {"web-other/Dockerfile": DOCKERFILE, "web-other/x": "other\n"})
    (root / "web").unlink()
    (root / "web").symlink_to("web-other")


def _replace_by_symlink(root: Path) -> None:
    (root / "api/main.go").unlink()
    (root / "api/main.go").symlink_to("Dockerfile")


MUTATIONS: dict[str, Callable[[Path], None]] = {
    "context file, same size": _edit("api/main.go", "package mian\n"),
    "file mode": _chmod,
    "new context file": _edit("web/src/new.js", "new\n"),
    "new ignored file": _edit("api/debug.log", "noise\n"),
    "removed file": _remove,
    "dockerignore": _edit("api/.dockerignore", "*.log\nmain.go\n"),
    "Dockerfile-specific ignore file appears": _edit("api/Dockerfile.dockerignore", "main.go\n"),
    "Dockerfile": _edit("api/Dockerfile", "FROM scratch\nCOPY . /srv\n"),
    ".env appears": _edit(".env", "FLAVOUR=spicy\n"),
    "override file appears": _edit(
        "compose.override.yaml", "services:\n  web:\n    build:\n      target: t\n"
    ),
    "rules file appears": _edit("planner.yaml", "rules:\n  - match: web\n    hash:\n      env: [HOME]\n"),
    "compose file": _edit("compose.yaml", COMPOSE.replace("plain", "mild")),
    "context symlink retargeted": _retarget_context,
    "file replaced by a symlink": _replace_by_symlink,
}


@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_any_change_to_what_the_plan_read_is_seen(
    mutation: Callable[[Path], None], project: Path, runs: Runs
) -> None:
    if mutation is _retarget_context:  # start from a symlinked context
        (project / "web").rename(project / "web-real")
        (project / "web").symlink_to("web-real")
        settle()
    runs.change_is_seen(lambda: mutation(project))


def test_changed_environment_is_another_invocation(
    project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, _ = runs.plan()
    monkeypatch.setenv("FLAVOUR", "hot")
    hot, hit = runs.plan()
    assert not hit and hot != plain


def test_the_shells_underscore_does_not_count_unread(
    project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_", "/usr/bin/planner")
    runs.plan()
    monkeypatch.setenv("_", "/usr/bin/time")
    assert runs.plan()[1], "`_` differs per command; unused, it must not defeat the memo"


@pytest.mark.parametrize(
    "files",
    [
        {"compose.yaml": COMPOSE.replace("${FLAVOUR:-plain}", "${_}")},  # interpolated
        {"planner.yaml": "rules:\n  - match: api\n    hash:\n      env: [_]\n"},  # hashed by a rule
    ],
    ids=["interpolated", "hash-env"],
)
def test_the_shells_underscore_counts_when_read(
    files: dict[str, str], project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(project, files)
    settle()
    monkeypatch.setenv("_", "/usr/bin/planner")
    first, _ = runs.plan()
    monkeypatch.setenv("_", "/usr/bin/time")
    second, hit = runs.plan()
    assert not hit and second != first


def test_symlinked_compose_file_target_edit_is_seen(project: Path, runs: Runs, tmp_path: Path) -> None:
    elsewhere = write_tree(tmp_path / "elsewhere", {"compose.yaml": COMPOSE})
    (tmp_path / "fresh").mkdir()  # fresh() caches go in here: tmp_path, a witness, stays put
    (project / "compose.yaml").unlink()
    (project / "compose.yaml").symlink_to(elsewhere / "compose.yaml")
    settle()
    runs.change_is_seen(lambda: (elsewhere / "compose.yaml").write_text(COMPOSE.replace("plain", "sour")))


def test_included_file_edit_is_seen(project: Path, runs: Runs) -> None:
    write_tree(
        project,
        {
            "compose.yaml": "include:\n  - path: parts/more.yaml\n" + COMPOSE,
            "parts/more.yaml": "services:\n  extra:\n    build: ../web\n",
        },
    )
    settle()
    runs.change_is_seen(lambda: _edit("parts/more.yaml", "services:\n  extra:\n    build: ../api\n")(project))


def test_a_file_appearing_while_the_plan_runs_is_seen(
    project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder where `.env` was looked for is witnessed as it was then, not as it is at the save."""
    counted = planner.plan.pipeline.make_plan

    def racing(*args: object, **kwargs: object) -> planner.plan.pipeline.Planned:
        planned = counted(*args, **kwargs)  # type: ignore[arg-type]
        (project / ".env").write_text("FLAVOUR=late\n")
        settle()  # older than the racy window by the save: only the earlier signature can tell
        return planned

    monkeypatch.setattr(planner.plan.pipeline, "make_plan", racing)
    runs.plan()
    monkeypatch.setattr(planner.plan.pipeline, "make_plan", counted)
    after, hit = runs.plan()
    assert not hit and after == runs.fresh()


def test_a_file_changed_between_its_reading_and_the_walk_is_seen(
    project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Dockerfile is read while the graph is built and changes before the walk lists it: the key holds
    the old text, so no memo may vouch for the new file (the earlier signature is kept, or none)."""
    import planner.keys.compute

    walk = planner.keys.compute.walk_contexts

    def editing_walk(*args: Any, **kwargs: Any) -> Any:
        dockerfile = project / "api/Dockerfile"
        if "COPY . /app" in dockerfile.read_text():
            dockerfile.write_text(DOCKERFILE.replace("/app", "/srv"))
            settle()
        return walk(*args, **kwargs)

    monkeypatch.setattr(planner.keys.compute, "walk_contexts", editing_walk)
    runs.plan()
    monkeypatch.setattr(planner.keys.compute, "walk_contexts", walk)
    after, hit = runs.plan()
    assert not hit and after == runs.fresh()


def test_recently_written_inputs_are_not_memoized(
    project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memo, "RACY_WINDOW_NS", 3_600 * 10**9)  # everything here is "just written"
    runs.plan()
    assert not runs.plan()[1]


def test_a_damaged_memo_is_a_miss_and_is_rewritten(project: Path, runs: Runs) -> None:
    expected, _ = runs.plan()
    path = Path(memo.memo_path(ARGS, os.getcwd(), os.environ))
    path.write_bytes(b"not a pickle")
    again, hit = runs.plan()
    assert not hit and again == expected
    assert runs.plan()[1]


def test_failed_plan_leaves_no_memo(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "api/Dockerfile").unlink()
    with pytest.raises(SystemExit) as raised:
        main(ARGS)
    assert raised.value.code == 2
    assert not Path(memo.memo_path(ARGS, os.getcwd(), os.environ)).exists()


def test_memo_witnesses_planner_itself(project: Path, runs: Runs) -> None:
    runs.plan()
    import pickle

    data = pickle.loads(Path(memo.memo_path(ARGS, os.getcwd(), os.environ)).read_bytes())
    witnessed = set(data["paths"].split("\0"))
    assert memo.__file__ in witnessed
    assert str(project) in witnessed and str(project / "api") in witnessed


LOADERS = ["compose", "rules", "keys", "build/graph.py", "build/stack.py", "build/dockerfile.py"]
# keys/ also holds what reads outputs and the cache folder, not a build's inputs: the memo does not follow those
NOT_LOADERS = {"keys/artifacts.py", "keys/store.py", "keys/signatures.py"}
RAW_PROBE = re.compile(r"\.(is_file|is_dir|exists)\(\)|os\.path\.(exists|isfile|isdir)\(")


def test_loaders_probe_the_file_system_through_inputs() -> None:
    """A probe that bypasses inputs.py would let a file appear unseen by the memo."""
    package = Path(memo.__file__).parents[1]
    offenders = []
    for name in LOADERS:
        for path in sorted((package / name).rglob("*.py")) if (package / name).is_dir() else [package / name]:
            if str(path.relative_to(package)) in NOT_LOADERS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if RAW_PROBE.search(line):
                    offenders.append(f"{path.relative_to(package)}:{number}: {line.strip()}")
    assert offenders == []


EDITS = st.lists(
    st.tuples(
        st.sampled_from(
            ["api/main.go", "api/sub/util.go", "web/src/app.js", "web/.dockerignore", "api/x.log", ".env"]
        ),
        st.sampled_from(["", "a\n", "b\n", "*.js\n", "FLAVOUR=x\n", "FLAVOUR=y\n", None]),
        st.booleans(),  # let the edit age past the racy window, so the next plan keeps a memo
    ),
    min_size=1,
    max_size=4,
)


def test_memo_answers_equal_full_plans_through_any_edits(project: Path, runs: Runs) -> None:
    """Memos are kept (settled edits) and then either answer or are refused; every answer equals a fresh plan,
    and memos did answer some of them."""
    hits = [0]

    def plan_equals_fresh() -> None:
        answered, hit = runs.plan()
        hits[0] += hit
        assert answered == runs.fresh()

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(edits=EDITS)
    def through(edits: list[tuple[str, str | None, bool]]) -> None:
        plan_equals_fresh()  # answered by the memo kept at the end of the previous example
        for path, edit, settled in edits:
            text = "" if path == ".env" and edit and not edit.startswith("FLAVOUR=") else edit  # KEY=VALUE
            target = project / path
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            if settled:
                settle()
            plan_equals_fresh()  # after a settled edit this plan keeps a memo: the next one is answered
        settle()

    runs.plan()
    through()
    assert hits[0] > 0, "no plan was answered from a memo: the test compared full plans only"


def test_a_memo_check_of_the_registry_imports_neither_http_client_nor_the_registry_client() -> None:
    """A no-op apply that shares its builds replays a manifest HEAD per ref (issue 32) within its 0.1 s: the probe
    speaks HTTP/1.0 on a socket; `http.client` (ssl) and the registry client cost 40-45 ms each to import."""
    import subprocess
    import sys

    code = (
        "import sys; from planner.plan import memo; from planner.engine import manifest_probe; "
        "print(sorted(m for m in ('http.client', 'ssl', 'planner.engine.registry', 'requests') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
