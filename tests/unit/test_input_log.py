"""The input log's record of what context walks covered (inputs.InputLog.in_trees): a path is in the trees
whether its tree came as a list (indexed when first asked) or with a set of its paths (a resident server's),
and opening such a path records no witness of its own, while any other path opened is recorded."""

from __future__ import annotations

from pathlib import Path

from planner.base import inputs
from planner.keys import signatures


def test_paths_of_listed_and_of_prebuilt_trees_are_in_the_trees(tmp_path: Path) -> None:
    files = [tmp_path / name for name in ("a", "b", "c", "d")]
    for file in files:
        file.write_text(file.name)
    paths = [str(file) for file in files]
    packed = signatures.pack_all([inputs.lstat_signature(path) or (0, 0, 0, 0, 0) for path in paths])
    log = inputs.InputLog()
    log.note_tree(paths[:2], packed[: 2 * signatures.PACKED.size], ())
    assert log.in_trees(paths[0]) and not log.in_trees(paths[2])
    log.note_tree(paths[2:3], packed, (), frozenset(paths[2:3]))  # with its set: not copied into the index
    log.note_tree(paths[3:], packed, ())  # a list again, after the index was made
    assert all(log.in_trees(path) for path in paths)
    assert not log.in_trees(str(tmp_path / "e")) and not log.in_trees(str(tmp_path))
    with inputs.recording(log):
        for path in [*paths, str(tmp_path / "e")]:
            (tmp_path / "e").write_text("e")
            with open(path) as handle:
                handle.read()
    assert log.looked_up == [str(tmp_path / "e")]  # the trees' paths have their walks' signatures
