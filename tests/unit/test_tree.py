"""A tree's views (keys/tree.py) against the plain definitions they stand for: the streamed digest is
`files_digest`, a patched tree is the tree made from scratch, index lookups are bisect over all paths, and a
selection of index ranges reads as (and digests like) the dict of the entries it covers. Small blocks, so that
random trees span many of them and patches split them."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.keys import tree as tree_module
from planner.keys.manifest import files_digest
from planner.keys.tree import Lines, Tree

NAMES = st.text(alphabet="ab/.-é\udcff", min_size=1, max_size=6)
LINES = st.sampled_from(["f 644 h1", "f 644 h2", "f 755 h1", "d 755 ", "l 777 t"])
TREES = st.dictionaries(NAMES, LINES, max_size=40).map(lambda files: dict(sorted(files.items())))


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_module, "BLOCK", 3)


@settings(max_examples=300, deadline=None)
@given(TREES)
def test_a_tree_reads_as_its_files_and_digests_as_files_digest(files: dict[str, str]) -> None:
    tree = Tree.of_files(files)
    assert tree.digest == files_digest(files)
    assert list(tree.items()) == list(files.items()) and len(tree) == len(files)
    assert list(tree.values()) == list(files.values()) and dict(tree) == files
    assert all(tree[path] == line and path in tree for path, line in files.items())
    assert "\0missing" not in tree and tree.get("\0missing") is None
    assert tree.joined() == ("\0".join(files), "\0".join(files.values()))


@settings(max_examples=400, deadline=None)
@given(TREES, st.data(), st.booleans())
def test_a_patched_tree_is_the_tree_made_afresh(
    files: dict[str, str], data: st.DataObject, made: bool
) -> None:
    before = Tree.of_files(files)
    if made:
        before.prepare()  # blocks encoded: the patch shares those it does not change
    paths = list(files)
    changed_paths = data.draw(st.lists(st.sampled_from(paths), unique=True) if paths else st.just([]))
    rest = [path for path in paths if path not in changed_paths]
    removed = data.draw(st.lists(st.sampled_from(rest), unique=True) if rest else st.just([]))
    changed = {path: data.draw(LINES) for path in changed_paths}
    added = data.draw(st.dictionaries(NAMES.filter(lambda n: n not in files), LINES, max_size=12))
    after = before.patched(changed, removed, added)
    expected = {path: line for path, line in files.items() if path not in removed}
    expected.update(changed)
    expected.update(added)
    expected = dict(sorted(expected.items()))
    assert list(after.items()) == list(expected.items())
    assert after.digest == files_digest(expected)
    assert all(after[path] == line for path, line in expected.items())
    assert list(before.items()) == list(files.items()) and before.digest == files_digest(files)  # unchanged
    again = after.patched({}, list(expected)[: len(expected) // 2], {})  # a patch of a patched tree
    assert again.digest == files_digest(dict(list(expected.items())[len(expected) // 2 :]))


def test_a_patch_of_a_path_not_in_the_tree_is_refused() -> None:
    before = Tree.of_files({"a": "f 644 h1", "b": "f 644 h2"})
    with pytest.raises(KeyError):
        before.patched({"c": "f 644 h1"}, (), {})
    with pytest.raises(KeyError):
        before.patched({}, ["c"], {})
    with pytest.raises(ValueError, match="already"):
        before.patched({}, (), {"a": "f 644 h1"})


@settings(max_examples=400, deadline=None)
@given(TREES, st.lists(st.tuples(st.integers(0, 45), st.integers(0, 45)), max_size=5), NAMES)
def test_index_ranges_select_what_a_dict_of_them_holds(
    files: dict[str, str], ranges: list[tuple[int, int]], probe: str
) -> None:
    tree = Tree.of_files(files)
    tree.prepare()
    paths = list(files)
    assert tree.index(probe) == bisect.bisect_left(paths, probe)
    assert list(tree.paths_between(1, len(paths) - 1)) == paths[1:-1]
    ranges = [(min(a, b, len(paths)), min(max(a, b), len(paths))) for a, b in ranges]
    covered = sorted({at for first, end in ranges for at in range(first, end)})
    expected = {paths[at]: files[paths[at]] for at in covered}
    selection = tree.select(ranges)
    assert selection.digest == files_digest(expected)  # streamed from the blocks, before any list is made
    assert len(selection) == len(expected)
    assert all(path in selection for path in expected)
    assert all(path not in selection for path in files if path not in expected)
    assert list(selection.items()) == list(expected.items())


@settings(max_examples=200, deadline=None)
@given(TREES)
def test_lines_read_as_the_dict_they_hold(files: dict[str, str]) -> None:
    lines = Lines(list(files), list(files.values()))
    assert dict(lines) == files and list(lines.items()) == list(files.items())
    assert list(lines.values()) == list(files.values()) and len(lines) == len(files)
    assert lines.digest == files_digest(files)
    assert all(lines[path] == line for path, line in files.items())
    assert "\0missing" not in lines and lines.get("\0missing") is None
