"""A tree's views (keys/tree.py) against the plain definitions they stand for: the streamed digest is
`files_digest`, a patched tree is the tree made from scratch, and a selection's lines read as the dict they
were cut from. Small blocks, so that random trees span many of them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.keys import tree as tree_module
from planner.keys.manifest import files_digest
from planner.keys.tree import Lines, Tree

NAMES = st.text(alphabet="ab/.-é\udcff", min_size=1, max_size=6)
LINES = st.sampled_from(["f 644 h1", "f 644 h2", "f 755 h1", "d 755 ", "l 777 t"])


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_module, "BLOCK", 3)


def sorted_files(files: dict[str, str]) -> dict[str, str]:
    return dict(sorted(files.items()))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NAMES, LINES, max_size=40))
def test_the_streamed_digest_is_files_digest(files: dict[str, str]) -> None:
    files = sorted_files(files)
    assert Tree(files).digest == files_digest(files)
    assert Tree(dict(files), paths=list(files), lines=list(files.values())).digest == files_digest(files)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(NAMES, LINES, max_size=40),
    st.data(),
    st.booleans(),
)
def test_a_patched_tree_is_the_tree_made_afresh(
    files: dict[str, str], data: st.DataObject, made: bool
) -> None:
    files = sorted_files(files)
    before = Tree(files)
    if made:
        before.prepare()  # blocks made: the patch carries them over
    paths = list(files)
    changed_paths = data.draw(st.lists(st.sampled_from(paths), unique=True) if paths else st.just([]))
    removed = data.draw(
        st.lists(st.sampled_from([p for p in paths if p not in changed_paths]), unique=True)
        if len(paths) > len(changed_paths)
        else st.just([])
    )
    changed = {path: data.draw(LINES) for path in changed_paths}
    added = data.draw(st.dictionaries(NAMES.filter(lambda n: n not in files), LINES, max_size=8))
    after = before.patched(changed, removed, added)
    expected = {path: line for path, line in files.items() if path not in removed}
    expected.update(changed)
    expected.update(added)
    expected = sorted_files(expected)
    assert list(after.files.items()) == list(expected.items())
    assert after.paths == list(expected) and after.lines == list(expected.values())
    assert after.digest == files_digest(expected)
    assert dict(before.files) == files and before.digest == files_digest(files)  # the old tree is unchanged


def test_a_patch_of_a_path_not_in_the_tree_is_refused() -> None:
    before = Tree({"a": "f 644 h1", "b": "f 644 h2"})
    with pytest.raises(KeyError):
        before.patched({"c": "f 644 h1"}, (), {})
    with pytest.raises(KeyError):
        before.patched({}, ["c"], {})
    with pytest.raises(ValueError, match="already"):
        before.patched({}, (), {"a": "f 644 h1"})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(NAMES, LINES, max_size=20))
def test_lines_read_as_the_dict_they_hold(files: dict[str, str]) -> None:
    files = sorted_files(files)
    lines = Lines(list(files), list(files.values()))
    assert dict(lines) == files and list(lines.items()) == list(files.items())
    assert list(lines.values()) == list(files.values()) and len(lines) == len(files)
    assert lines.digest == files_digest(files)
    assert all(lines[path] == line for path, line in files.items())
    assert "\0missing" not in lines and lines.get("\0missing") is None
    assert lines.keys() - files.keys() == set() and dict(lines.items()) == files
