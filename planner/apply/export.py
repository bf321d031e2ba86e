"""Artifact outputs from an image built by the Engine-API builder: the image's filesystem, exactly as
`buildx --output type=local|tar` would write it (layers applied in order, whiteouts honoured; no container
is created, so nothing like /etc/hosts or /.dockerenv leaks in). Written beside the destination and moved into
place, so an interrupted export never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from planner.errors import RuntimeFailure
from planner.streams import reader

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def _safe_target(root: Path, name: str) -> Path:
    target = os.path.normpath(os.path.join(root, name))
    if not (target == str(root) or target.startswith(str(root) + os.sep)):
        raise RuntimeFailure(f"refusing image entry outside the output folder: {name}")
    return Path(target)


def apply_layer(layer: Path, root: Path) -> None:
    with tarfile.open(layer, mode="r:*") as archive:
        for member in archive:
            directory, base = os.path.split(member.name.rstrip("/"))
            if base == OPAQUE:
                folder = _safe_target(root, directory)
                if folder.is_dir():
                    for child in folder.iterdir():
                        _remove(child)
                continue
            if base.startswith(WHITEOUT):
                _remove(_safe_target(root, os.path.join(directory, base[len(WHITEOUT) :])))
                continue
            target = _safe_target(root, member.name)
            keeps_folder = member.isdir() and target.is_dir() and not target.is_symlink()
            if (target.exists() or target.is_symlink()) and not keeps_folder:
                _remove(target)
            archive.extract(member, root, filter="fully_trusted", set_attrs=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def unpack_saved_image(save_stream: Iterable[bytes], rootfs: Path, work: Path) -> None:
    """Apply the layers of a `docker save` stream (one image) onto `rootfs`."""
    layers: dict[str, Path] = {}
    manifest: list[dict[str, object]] = []
    with tarfile.open(fileobj=reader(save_stream), mode="r|") as archive:
        for index, member in enumerate(archive):
            if member.name == "manifest.json":
                handle = archive.extractfile(member)
                assert handle is not None
                manifest = json.loads(handle.read())
            elif member.isfile() and (member.name.endswith("layer.tar") or member.name.startswith("blobs/")):
                handle = archive.extractfile(member)
                assert handle is not None
                stored = work / f"layer-{index}"
                with stored.open("wb") as out:
                    shutil.copyfileobj(handle, out, 1 << 20)
                layers[member.name] = stored
    if not manifest:
        raise RuntimeFailure("the saved image has no manifest.json")
    rootfs.mkdir(parents=True, exist_ok=True)
    layer_names = manifest[0].get("Layers")
    if not isinstance(layer_names, list):
        raise RuntimeFailure("the saved image's manifest lists no layers")
    for name in layer_names:
        apply_layer(layers[str(name)], rootfs)


def write_output(rootfs: Path, output_type: str, dest: Path) -> None:
    """Move the exported filesystem into place (`local`: the folder's contents; `tar`: one tar file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if output_type == "tar":
        fd, temporary = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.close(fd)
        try:
            with tarfile.open(temporary, mode="w", format=tarfile.PAX_FORMAT) as archive:
                for child in sorted(rootfs.iterdir()):
                    archive.add(child, arcname=child.name)
            os.replace(temporary, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return
    staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for child in rootfs.iterdir():
            os.replace(child, staged / child.name)
        old = None
        if dest.exists() or dest.is_symlink():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(staged, dest)
        if old is not None:
            _remove(old)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def export_image(save_stream: Iterable[bytes], output_type: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory(
        prefix=".planner-export-", dir=dest.parent if dest.parent.exists() else None
    ) as tmp:
        work = Path(tmp)
        rootfs = work / "rootfs"
        unpack_saved_image(save_stream, rootfs, work)
        write_output(rootfs, output_type, dest)
