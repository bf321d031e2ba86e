"""walk_context: what a build context sends, as the docker CLI's context walk does (no Docker needed).

tests/integration/test_context_differential.py checks the same against a real engine; the cases below marked
"found by the differential test" are the differences it found, reduced.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from planner.base.errors import InputError
from planner.build.dockerignore import PatternMatcher, read_dockerignore
from planner.keys.statcache import StatCache
from planner.keys.walk import Entry, walk_context, walk_contexts


def matcher(*lines: str) -> PatternMatcher:
    return PatternMatcher.from_lines(read_dockerignore("\n".join(lines)))


def make(root: Path, spec: dict[str, Any]) -> None:
    """Files (`str` content, or `(content, mode)`; 0644 by default), folders (`dict`, or `(dict, mode)`; 0755),
    symlinks (`("->", target)`). Modes are always set, so no result depends on the umask."""
    for name, value in spec.items():
        path = root / name
        if isinstance(value, tuple) and value[0] == "->":
            os.symlink(value[1], path)
            continue
        content, mode = value if isinstance(value, tuple) else (value, None)
        if isinstance(content, dict):
            path.mkdir()
            make(path, content)
        else:
            path.write_text(content)
        os.chmod(path, mode if mode is not None else 0o755 if isinstance(content, dict) else 0o644)


def listing(root: Path, *lines: str, skip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(path, kind, octal mode) per entry, symlinks with their target instead of a mode."""
    entries = walk_context(root, matcher(*lines), skip)
    return [(e.path, e.kind, e.target if e.kind == "l" else f"{e.mode:o}") for e in entries]


def paths(root: Path, *lines: str, skip: tuple[str, ...] = ()) -> list[str]:
    return [e.path for e in walk_context(root, matcher(*lines), skip)]


def test_files_folders_and_empty_folders_with_their_permission_bits(tmp_path: Path) -> None:
    make(tmp_path, {
        "Dockerfile": ("FROM scratch\n", 0o644),
        "run.sh": ("#!/bin/sh\n", 0o755),
        "secret": ("s", 0o600),
        "suid": ("x", 0o4755),
        "src": ({"main.py": ("", 0o640), "empty": ({}, 0o700), "deep": {"er": {"x": ("", 0o444)}}}, 0o2775),
        "sticky": ({}, 0o1777),
    })  # fmt: skip
    os.chmod(tmp_path / "src/deep/er", 0o750)
    assert listing(tmp_path) == [
        ("Dockerfile", "f", "644"),
        ("run.sh", "f", "755"),
        ("secret", "f", "600"),
        ("src", "d", "2775"),
        ("src/deep", "d", "755"),
        ("src/deep/er", "d", "750"),
        ("src/deep/er/x", "f", "444"),
        ("src/empty", "d", "700"),
        ("src/main.py", "f", "640"),
        ("sticky", "d", "1777"),
        ("suid", "f", "4755"),
    ]
    entry = next(e for e in walk_context(tmp_path, PatternMatcher()) if e.path == "run.sh")
    assert entry.size == len("#!/bin/sh\n") and entry.inode == (tmp_path / "run.sh").stat().st_ino


def test_symlinks_are_sent_as_links_never_followed(tmp_path: Path) -> None:
    make(tmp_path, {
        "real": {"inside": "x"},
        "to-dir": ("->", "real"),
        "to-file": ("->", "real/inside"),
        "absolute": ("->", "/etc"),
        "dangling": ("->", "../nowhere/ünï"),
        "loop": ("->", "loop"),
    })  # fmt: skip
    assert listing(tmp_path) == [
        ("absolute", "l", "/etc"),
        ("dangling", "l", "../nowhere/ünï"),
        ("loop", "l", "loop"),
        ("real", "d", "755"),
        ("real/inside", "f", "644"),
        ("to-dir", "l", "real"),
        ("to-file", "l", "real/inside"),
    ]
    # a pattern through the link does not reach into its target
    assert "to-dir" in paths(tmp_path, "to-dir/inside")
    assert paths(tmp_path, "*", "!to-dir/inside") == []


def test_fifos_are_sent_and_sockets_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    os.chmod(tmp_path / "pipe", 0o600)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
    (tmp_path / "file").write_text("")
    os.chmod(tmp_path / "file", 0o644)
    assert listing(tmp_path) == [("file", "f", "644"), ("pipe", "p", "600")]


def test_an_excluded_folder_without_exceptions_is_skipped_whole(tmp_path: Path) -> None:
    make(tmp_path, {"build": {"out": {"x": ""}, "y": ""}, "buildx": "", "src": {"build": {"z": ""}}})
    assert paths(tmp_path, "build") == ["buildx", "src", "src/build", "src/build/z"]
    assert paths(tmp_path, "**/build") == ["buildx", "src"]
    assert paths(tmp_path, "build/") == ["buildx", "src", "src/build", "src/build/z"]


def test_an_excluded_folder_with_an_exception_sends_only_what_it_re_includes(tmp_path: Path) -> None:
    make(tmp_path, {"a": ({"b": ({"keep.txt": "", "drop.txt": ""}, 0o700), "other": ""}, 0o750)})
    entries = walk_context(tmp_path, matcher("a", "!a/b/keep.txt"))
    assert [(e.path, e.kind, f"{e.mode:o}") for e in entries] == [
        ("a", "d", "755"),  # implicit parents: not sent themselves, created by the daemon with 0755
        ("a/b", "d", "755"),
        ("a/b/keep.txt", "f", "644"),
    ]
    assert [e.inode for e in entries[:2]] == [0, 0]  # no stat: nothing on disk to hash
    # a re-included folder is sent with its own mode and content
    assert listing(tmp_path, "a", "!a/b") == [
        ("a", "d", "755"),
        ("a/b", "d", "700"),
        ("a/b/drop.txt", "f", "644"),
        ("a/b/keep.txt", "f", "644"),
    ]
    # nothing re-included under it: no implicit folder either
    assert paths(tmp_path, "a", "!a/b/missing") == []


def test_the_walk_enters_an_excluded_folder_only_for_exceptions_that_start_with_it(tmp_path: Path) -> None:
    make(tmp_path, {"a": {"b": {"c": ""}, "c": ""}})
    assert paths(tmp_path, "a", "!*/c") == []  # matches a/c, but does not start with "a/"
    assert paths(tmp_path, "a", "!a/c") == ["a", "a/c"]
    assert paths(tmp_path, "a", "!a/*/c") == []  # enters a, but not a/b ("a/*/c/" does not start with "a/b/")
    assert paths(tmp_path, "a", "!a/b/c") == ["a", "a/b", "a/b/c"]


def test_implicit_parent_folders_inherit_the_setgid_bit(tmp_path: Path) -> None:
    """Found by the differential test: the daemon creates implicit folders with MkdirAll, and a folder made
    inside a setgid folder gets the bit (Linux); COPY keeps it. At the top the daemon's temporary context root
    is the parent, never setgid, whatever the bits of the context folder here."""
    make(tmp_path, {"s": ({"ex": {"in": {"f": ""}}}, 0o2775), "top": {"in": {"f": ""}}})
    os.chmod(tmp_path, 0o2775)
    assert listing(tmp_path, "s/ex", "!s/ex/in/f", "top", "!top/in/f") == [
        ("s", "d", "2775"),
        ("s/ex", "d", "2755"),
        ("s/ex/in", "d", "2755"),
        ("s/ex/in/f", "f", "644"),
        ("top", "d", "755"),
        ("top/in", "d", "755"),
        ("top/in/f", "f", "644"),
    ]


@pytest.mark.parametrize(
    ("lines", "sent"),
    [
        # `!a` is skipped for `a` (nothing excluded yet), so it does not act through `a` on `a/x`
        (["a/x", "!a"], ["a", "a/y"]),
        # the second `d` is skipped for `d` (already excluded) and then tried on `d/keep` alone
        (["d", "!d/keep", "d"], ["d", "d/keep"]),
        # `!a` was tried for `a` (excluded then) and matched: it carries to the children
        (["a", "!a", "a/x"], ["a", "a/y"]),
        (["*", "!a", "a/x"], ["a", "a/y"]),
    ],
)
def test_matching_uses_the_parent_folders_results(tmp_path: Path, lines: list[str], sent: list[str]) -> None:
    """Found by the differential test: the CLI's walk (moby/go-archive TarWithOptions) matches a path with
    patternmatcher's MatchesUsingParentResults, not MatchesOrParentMatches; they differ when a pattern was
    skipped for the parent folder. `would_send` agrees with the walk."""
    make(tmp_path, {"a": {"x": "", "y": ""}} if "a" in sent else {"d": {"keep": "", "other": ""}})
    m = matcher(*lines)
    entries = walk_context(tmp_path, m)
    assert [e.path for e in entries] == sent
    everything = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")]
    real = [e.path for e in entries if e.inode]  # implicit folders are not sent themselves
    assert sorted(p for p in everything if m.would_send(p)) == real


def test_patterns_can_exclude_the_dockerfile_and_dockerignore(tmp_path: Path) -> None:
    """The legacy CLI sends both anyway; the daemon then removes them when the patterns match them."""
    make(tmp_path, {"Dockerfile": "", ".dockerignore": "", "a": ""})
    assert paths(tmp_path, "Dockerfile", ".dockerignore") == ["a"]
    assert paths(tmp_path, "*", "!a") == ["a"]
    assert paths(tmp_path, ".*") == ["Dockerfile", "a"]


def test_skip_leaves_out_paths_and_everything_below_them(tmp_path: Path) -> None:
    make(tmp_path, {"gen": {"x": ""}, "gen2": "", "a": {"out": {"y": ""}, "src": ""}})
    # a folder holding a skipped path ("a") is left out too: it appears only once a producer ran
    assert paths(tmp_path, skip=("gen", "a/out")) == ["a/src", "gen2"]
    # skip is applied before .dockerignore: a skipped folder is not re-included by an exception
    assert paths(tmp_path, "a", "!a/out/y", skip=("a/out",)) == ["gen", "gen/x", "gen2"]


def test_several_matchers_share_one_traversal(tmp_path: Path) -> None:
    make(tmp_path, {"a": {"x": "", "y": ""}, "b": ""})
    matchers = [matcher("a"), matcher("*", "!a/x"), PatternMatcher()]
    skips: list[tuple[str, ...]] = [(), (), ("b",)]
    together = walk_contexts(tmp_path, matchers, skips)
    assert together == [walk_context(tmp_path, m, s) for m, s in zip(matchers, skips, strict=True)]
    assert [[e.path for e in listed] for listed in together] == [["b"], ["a", "a/x"], ["a", "a/x", "a/y"]]


def _denied(target: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path).endswith(target):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path, *args, **kwargs)

    return guarded


def test_an_unreadable_folder_is_an_input_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads any folder, so the permission error is injected where the walk lists folders."""
    make(tmp_path, {"ok": {"x": ""}, "locked": {"y": ""}})
    monkeypatch.setattr(os, "scandir", _denied("/locked", os.scandir))
    with pytest.raises(InputError, match=r"cannot read .*/locked: Permission denied"):
        walk_context(tmp_path, PatternMatcher())
    assert paths(tmp_path, "locked") == ["ok", "ok/x"]  # an excluded folder is never listed


def test_an_unreadable_file_is_an_input_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk only stats files (a mode-000 file is listed); reading it for the key fails, naming the path."""
    make(tmp_path, {"dir": {"secret.bin": ("x", 0o000)}, "ok": "y"})
    entries = walk_context(tmp_path, PatternMatcher())
    assert [(e.path, e.mode) for e in entries] == [("dir", 0o755), ("dir/secret.bin", 0), ("ok", 0o644)]
    monkeypatch.setattr("builtins.open", _denied("secret.bin", open))
    with pytest.raises(InputError, match=r"cannot read .*dir/secret\.bin: permission denied"):
        StatCache(None).hashes(str(tmp_path), entries)


def test_a_missing_or_non_folder_context_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match=r"build context is not a directory: .*file"):
        walk_context(tmp_path / "file", PatternMatcher())
    with pytest.raises(InputError, match=r"build context is not a directory: .*missing"):
        walk_context(tmp_path / "missing", PatternMatcher())


def test_entries_are_sorted_by_path(tmp_path: Path) -> None:
    make(tmp_path, {"b": "", "a-b": "", "a": {"c": ""}, "A": "", "ä": ""})
    result = paths(tmp_path)
    assert result == sorted(result)


def test_entry_is_hashable_and_compares_by_value() -> None:
    assert Entry("a", "f", 0o644) == Entry("a", "f", 0o644)
    assert len({Entry("a", "f", 0o644), Entry("a", "f", 0o644)}) == 1
