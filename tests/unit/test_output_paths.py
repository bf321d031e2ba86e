"""Artifact and stamp destinations (issue #12): a symlinked parent cannot carry them out of the project, at plan
time (exit 2 at the rules line) or at export time (a parent swapped after planning); exported outputs get the
modes the image's layers hold, not the private modes of temporary files."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner.apply.export import export_image, folder_inside
from planner.base.errors import RuntimeFailure
from tests.unit.test_rules import line_of, load, load_error, project

ARTIFACT = "artifacts:\n  a:\n    context: api\n    output: {type: local, dest: out/art}\n"
STAMP = "stamps:\n  s:\n    path: out/v.txt\n    from: api\n"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize(
    ("rules", "needle", "key"),
    [(ARTIFACT, "out/art", "artifacts.a.output.dest"), (STAMP, "out/v.txt", "stamps.s.path")],
)
def test_a_symlinked_parent_leading_out_of_the_project_is_refused_at_the_rules_line(
    tmp_path: Path, rules: str, needle: str, key: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = project(tmp_path / "p", rules=rules)
    (root / "out").symlink_to(elsewhere)
    error = load_error(root)
    path = root / "planner.yaml"
    assert str(error).startswith(f"{path}:{line_of(path, needle)}:")
    assert f"{key}: {needle} is outside the project directory (through a symlink" in str(error)
    assert str(elsewhere) in str(error) and error.exit_code == 2


def test_a_symlink_that_stays_inside_the_project_is_fine(tmp_path: Path) -> None:
    root = project(tmp_path / "p", rules=ARTIFACT)
    (root / "build").mkdir()
    (root / "out").symlink_to(root / "build")
    assert load(root).nodes["a"].output_dest == str(root / "out/art")


def saved_image(members: list[tuple[str, int, bytes | None]]) -> list[bytes]:
    """A `docker save` stream of one image with one layer: (name, mode, content or None for a folder)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as archive:
        for name, mode, content in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in (
            ("manifest.json", json.dumps([{"Layers": ["l/layer.tar"]}]).encode()),
            ("l/layer.tar", layer.getvalue()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return [out.getvalue()]


IMAGE = [
    ("bin", 0o755, None),
    ("bin/tool", 0o755, b"#!/bin/sh\n"),
    ("etc", 0o750, None),
    ("etc/conf", 0o640, b"x"),
    ("readme", 0o644, b"r"),
]


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


def test_exported_outputs_get_the_layer_modes_or_the_umask_defaults(tmp_path: Path) -> None:
    dest = tmp_path / "out/art"
    export_image(saved_image(IMAGE), "local", dest, tmp_path)
    assert mode(dest) == 0o755  # no layer sets the root: a new folder's mode under the umask (was 0700)
    assert mode(dest / "bin") == 0o755 and mode(dest / "bin/tool") == 0o755
    assert mode(dest / "etc") == 0o750 and mode(dest / "etc/conf") == 0o640 and mode(dest / "readme") == 0o644
    assert mode(tmp_path / "out") == 0o755
    export_image(saved_image([("./", 0o711, None), *IMAGE]), "local", dest, tmp_path)
    assert mode(dest) == 0o711  # the image's root mode, when a layer holds it

    tar = tmp_path / "out/art.tar"
    export_image(saved_image(IMAGE), "tar", tar, tmp_path)
    assert mode(tar) == 0o644  # was mkstemp's 0600
    with tarfile.open(tar) as archive:
        assert {m.name: m.mode for m in archive.getmembers()}["bin/tool"] == 0o755
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["art", "art.tar"]  # no temporaries left


@pytest.mark.parametrize("output_type", ["local", "tar"])
def test_a_parent_swapped_for_a_symlink_after_planning_is_refused(tmp_path: Path, output_type: str) -> None:
    root, elsewhere = tmp_path / "p", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "out").mkdir(parents=True)
    dest = root / "out/art"  # planned while out/ was a folder of the project
    (root / "out").rmdir()
    (root / "out").symlink_to(elsewhere)
    with pytest.raises(RuntimeFailure, match="leads out of the project"):
        export_image(saved_image(IMAGE), output_type, dest, root)
    assert list(elsewhere.iterdir()) == []
    (root / "out").unlink()
    (root / "deep").symlink_to(elsewhere)  # a missing folder below it is not made out there either
    with pytest.raises(RuntimeFailure, match="leads out of the project"):
        export_image(saved_image(IMAGE), output_type, root / "deep/x/art", root)
    assert list(elsewhere.iterdir()) == []


def test_the_folder_is_written_through_the_descriptor_opened_and_checked(tmp_path: Path) -> None:
    """A swap after the check is not followed: the write lands in the folder that was checked."""
    root, elsewhere = tmp_path / "p", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "out").mkdir(parents=True)
    with folder_inside(root / "out/v.txt", root) as folder:
        os.rename(root / "out", root / "moved")
        (root / "out").symlink_to(elsewhere)
        (folder / "v.txt").write_text("stamp\n")
    assert (root / "moved/v.txt").read_text() == "stamp\n"
    assert list(elsewhere.iterdir()) == []
