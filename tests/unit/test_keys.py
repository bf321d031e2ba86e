"""Content keys: every relevant change moves exactly the affected keys and their downstream; nothing else does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planner.keys.patch
import planner.keys.snapshot
from planner.base.errors import InputError
from planner.build.graph import build_graph
from planner.build.stack import load_stack
from planner.compose.options import ProjectOptions
from planner.keys.compute import compute_keys
from planner.keys.statcache import StatCache, hash_file
from planner.keys.walk import Entry

STACK = {
    "compose.yaml": """
services:
  base:
    image: stack/base
    build:
      context: ./base
      args: {VERSION: "1", GIT_SHA: abc}
    x-planner:
      hash: {volatile_args: [GIT_SHA], env: [FEATURE]}
  app:
    build: ./app
  other:
    build: ./other
""",
    "base/Dockerfile": "FROM scratch\nARG VERSION\nCOPY . /base\n",
    "base/src/main.txt": "base v1\n",
    "base/notes.md": "ignored\n",
    "base/.dockerignore": "*.md\n",
    "app/Dockerfile": "FROM stack/base\nCOPY . /app\n",
    "app/app.txt": "app\n",
    "other/Dockerfile": "FROM scratch\nCOPY . /other\n",
    "other/o.txt": "other\n",
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def keys(root: Path, env: dict[str, str] | None = None, cache: StatCache | None = None) -> dict[str, str]:
    environ = {"PATH": "/usr/bin", "HOME": str(root), **(env or {})}
    stack = load_stack(ProjectOptions(environ=environ, cwd=str(root)))
    manifests = compute_keys(build_graph(stack), cache or StatCache(None), dict(stack.compose.environment))
    return {name: m.key for name, m in manifests.items()}


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    write_tree(tmp_path, STACK)
    return tmp_path


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: (r / "base/src/main.txt").write_text("base v2\n"), {"base", "app"}),
        (lambda r: (r / "base/src/new.txt").write_text("new\n"), {"base", "app"}),
        (lambda r: (r / "base/src/main.txt").unlink(), {"base", "app"}),
        (lambda r: (r / "base/src/empty").mkdir(), {"base", "app"}),
        (lambda r: (r / "base/src/main.txt").chmod(0o755), {"base", "app"}),
        (lambda r: (r / "base/link").symlink_to("src/main.txt"), {"base", "app"}),
        (
            lambda r: (r / "base/Dockerfile").write_text("FROM scratch\nARG VERSION\nCOPY . /b\n"),
            {"base", "app"},
        ),
        (lambda r: (r / "base/.dockerignore").write_text("*.md\nsrc\n"), {"base", "app"}),
        (lambda r: (r / "app/app.txt").write_text("app 2\n"), {"app"}),
        (lambda r: (r / "other/o.txt").write_text("other 2\n"), {"other"}),
        # irrelevant changes: ignored file, file outside every context, mtime only
        (lambda r: (r / "base/notes.md").write_text("still ignored\n"), set()),
        (lambda r: (r / "README").write_text("not in any context\n"), set()),
        (lambda r: os.utime(r / "app/app.txt", (1, 1)), set()),
    ],
)
def test_each_change_moves_exactly_the_affected_keys(stack: Path, edit: object, expected: set[str]) -> None:
    before = keys(stack)
    edit(stack)  # type: ignore[operator]
    assert changed(before, keys(stack)) == expected


def test_args_volatile_args_and_env_inputs(stack: Path) -> None:
    compose = stack / "compose.yaml"
    before = keys(stack)
    compose.write_text(compose.read_text().replace("GIT_SHA: abc", "GIT_SHA: def"))
    assert changed(before, keys(stack)) == set()  # volatile: left out of the key
    compose.write_text(compose.read_text().replace('VERSION: "1"', 'VERSION: "2"'))
    assert changed(before, keys(stack)) == {"base", "app"}
    again = keys(stack)
    assert changed(again, keys(stack, env={"FEATURE": "on"})) == {"base", "app"}
    assert changed(again, keys(stack, env={"UNRELATED": "x"})) == set()


def test_target_and_platforms_and_labels_feed_the_key(stack: Path) -> None:
    compose = stack / "compose.yaml"
    text = compose.read_text()
    before = keys(stack)
    for extra in ("      target: t\n", "      platforms: [linux/arm64]\n", "      labels: {a: b}\n"):
        compose.write_text(
            text.replace("    build: ./other\n", f"    build:\n      context: ./other\n{extra}")
        )
        assert changed(before, keys(stack)) == {"other"}


def test_service_platform_and_docker_default_platform_feed_the_key(stack: Path) -> None:
    """Issue #13: a build for one platform must not be taken as present for another. The service's `platform`
    and DOCKER_DEFAULT_PLATFORM (process or .env) are what the build gets when `build.platforms` is absent."""
    compose = stack / "compose.yaml"
    text = compose.read_text()
    native = keys(stack)
    arm = keys(stack, env={"DOCKER_DEFAULT_PLATFORM": "linux/arm64"})
    assert changed(native, arm) == {"base", "app", "other"}
    compose.write_text(
        text.replace("    build: ./other\n", "    platform: linux/arm64\n    build: ./other\n")
    )
    declared = keys(stack)
    assert changed(native, declared) == {"other"}
    assert declared["other"] == arm["other"]  # the same build: the same key
    assert keys(stack, env={"DOCKER_DEFAULT_PLATFORM": "linux/arm64"}) == arm  # the service's platform wins
    (stack / ".env").write_text("DOCKER_DEFAULT_PLATFORM=linux/arm64\n")
    compose.write_text(text)
    assert keys(stack) == arm
    compose.write_text(  # build.platforms wins over the default
        text.replace(
            "    build: ./other\n", "    build:\n      context: ./other\n      platforms: [linux/s390x]\n"
        )
    )
    assert keys(stack)["other"] not in {native["other"], arm["other"]}
    assert keys(stack)["base"] == arm["base"]


def test_keys_do_not_depend_on_location_service_order_or_formatting(
    stack: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = keys(stack)
    moved = tmp_path_factory.mktemp("elsewhere") / "deeper" / "copy"
    shutil.copytree(stack, moved, symlinks=True)
    compose = moved / "compose.yaml"
    lines = compose.read_text().splitlines()
    # reorder services (other first) and reformat
    text = "\n".join(lines)
    other_block = "  other:\n    build: ./other"
    text = text.replace(other_block, "").replace("services:\n", "services:\n" + other_block + "\n", 1)
    compose.write_text(
        "# reformatted\n"
        + text.replace('{VERSION: "1", GIT_SHA: abc}', "\n        VERSION: '1'\n        GIT_SHA: abc")
        + "\n"
    )
    assert keys(moved) == before


def test_stat_cache_reads_no_content_when_nothing_changed(
    stack: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("cache")
    first = StatCache(directory, racy_window_ns=0)
    before = keys(stack, cache=first)
    first.close()
    assert first.files_hashed > 0
    second = StatCache(directory, racy_window_ns=0)
    assert keys(stack, cache=second) == before
    second.close()
    assert second.files_hashed == 0


def test_recently_changed_files_are_not_remembered(
    stack: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written within the racy window may change again without its stat moving: hash it every time
    (by the stat cache in a walk, or by the patch of a snapshot that kept it as racy)."""
    monkeypatch.setattr(planner.keys.snapshot, "RACY_WINDOW_NS", 3600 * 10**9)
    patched: list[str] = []
    hash_file = planner.keys.patch.hash_file

    def counted(path: str) -> str:
        patched.append(path)
        return hash_file(path)

    monkeypatch.setattr(planner.keys.patch, "hash_file", counted)
    directory = tmp_path_factory.mktemp("cache")
    first = StatCache(directory, racy_window_ns=3600 * 10**9)
    keys(stack, cache=first)
    first.close()
    assert first.files_hashed > 0 and not patched
    second = StatCache(directory, racy_window_ns=3600 * 10**9)
    keys(stack, cache=second)
    second.close()
    assert second.files_hashed + len(set(patched)) == first.files_hashed


def test_a_changed_file_with_the_same_size_and_mtime_is_still_seen(
    stack: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """ctime and inode are part of the stat record: rewriting content and restoring mtime does not fool it."""
    directory = tmp_path_factory.mktemp("cache")
    target = stack / "app/app.txt"
    os.utime(target, ns=(10**18, 10**18))
    cache = StatCache(directory, racy_window_ns=0)
    before = keys(stack, cache=cache)
    cache.close()
    target.write_text("APP\n")  # same size
    os.utime(target, ns=(10**18, 10**18))
    cache = StatCache(directory, racy_window_ns=0)
    assert changed(before, keys(stack, cache=cache)) == {"app"}
    cache.close()


def test_corrupt_cache_directory_is_rebuilt_with_a_warning(
    stack: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path_factory.mktemp("cache")
    cache = StatCache(directory)
    before = keys(stack, cache=cache)
    cache.close()
    for path in directory.glob("*.db"):
        path.write_bytes(b"this is not sqlite" * 100)
    cache = StatCache(directory)
    assert keys(stack, cache=cache) == before
    cache.close()
    assert "warning" in capsys.readouterr().err


def test_generated_outputs_are_represented_by_their_producers_key(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "compose.yaml": "services:\n  desktop:\n    build: .\n",
            "Dockerfile": "FROM scratch\nCOPY . /d\n",
            "planner.yaml": "artifacts:\n  tool:\n    context: tool\n    output: {type: local, dest: out}\n",
            "tool/Dockerfile": "FROM scratch\nCOPY src /src\n",
            "tool/src/a": "v1\n",
        },
    )
    before = keys(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out/stale-binary").write_text("whatever was exported last time\n")
    assert keys(tmp_path) == before  # the generated folder does not feed the desktop's key directly
    (tmp_path / "tool/src/a").write_text("v2\n")
    assert changed(before, keys(tmp_path)) == {"tool", "desktop"}


def test_missing_context_dockerfile_and_unreadable_file_are_input_errors(stack: Path) -> None:
    (stack / "other/Dockerfile").unlink()
    with pytest.raises(InputError, match=r"Dockerfile not found: .*other/Dockerfile"):
        keys(stack)
    (stack / "other/Dockerfile").write_text("FROM scratch\n")
    shutil.rmtree(stack / "app")
    with pytest.raises(InputError, match="app"):
        keys(stack)


def test_unreadable_file_names_the_path(stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads any file, so the permission error is injected where the hasher opens files."""
    real_open = open

    def guarded_open(path: object, *args: object, **kwargs: object) -> object:
        if str(path).endswith("o.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", guarded_open)
    with pytest.raises(InputError, match=r"cannot read .*other/o.txt: permission denied"):
        keys(stack)


NAMES = st.sampled_from(["a", "b", "c.txt", "d.md", "e"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.dictionaries(
        st.lists(NAMES, min_size=1, max_size=3).map("/".join), st.binary(max_size=20), max_size=6
    )
)
def test_identical_trees_give_identical_keys_anywhere(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes]
) -> None:
    results = []
    for _ in range(2):
        root = tmp_path_factory.mktemp("tree")
        write_tree(
            root, {"compose.yaml": "services:\n  s:\n    build: ./ctx\n", "ctx/Dockerfile": "FROM scratch\n"}
        )
        for name, data in files.items():
            path = root / "ctx" / "data" / name
            if any(parent.is_file() for parent in path.parents):
                continue
            if path.is_dir():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        results.append(keys(root))
    assert results[0] == results[1]


def test_context_symlinked_outside_the_project_is_an_input_error(
    stack: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "Dockerfile").write_text("FROM scratch\n")
    shutil.rmtree(stack / "other")
    (stack / "other").symlink_to(outside)
    with pytest.raises(InputError, match=r"other is a symlink to .*outside.*, outside the project"):
        keys(stack)
    (stack / "other").unlink()
    shutil.copytree(outside, stack / "elsewhere")
    (stack / "other").symlink_to(stack / "elsewhere")  # a symlink that stays inside the project is fine
    assert "other" in keys(stack)


def test_large_and_small_files_hash_to_their_own_content_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large files go to a thread pool, small ones stay on this thread: each result still lands on its file."""
    from planner.keys import statcache

    monkeypatch.setattr(statcache, "PARALLEL_FROM_BYTES", 100)
    sizes = [5, 500, 7, 300, 0, 1000, 99, 100]
    entries = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"f{index}"
        path.write_bytes(bytes([index]) * size)
        entries.append(Entry(path.name, "f", 0o644, size))
    hashes = StatCache(None).hashes(str(tmp_path), entries, jobs=4)
    assert [hashes[e.path] for e in entries] == [hash_file(str(tmp_path / e.path)) for e in entries]
    assert len(set(hashes.values())) == len(sizes)
