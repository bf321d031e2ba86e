"""Artifact outputs from an image built by the Engine-API builder: the image's filesystem, exactly as
`buildx --output type=local|tar` would write it (layers applied in order, whiteouts honoured; no container
is created, so nothing like /etc/hosts or /.dockerenv leaks in). Written beside the destination and moved into
place, so an interrupted export never leaves a half-written output.

Outputs get the modes the image's layers hold for them (the folder of a `local` output: the mode of the image's
root, or 0777 less the umask when no layer sets it; a `tar` output: 0666 less the umask), never the private
modes of temporary files. The destination's folder is opened once, checked to lie inside the project after
resolving symlinks, and written through that open folder: a parent that became a symlink out of the project
after planning is refused, and one that is swapped while exporting is not followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from planner.base.errors import RuntimeFailure
from planner.base.paths import inside
from planner.base.streams import reader

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
    rootfs.chmod(0o777 & ~_umask())  # the layers may set the root's mode; else the default of a new folder
    layer_names = manifest[0].get("Layers")
    if not isinstance(layer_names, list):
        raise RuntimeFailure("the saved image's manifest lists no layers")
    for name in layer_names:
        apply_layer(layers[str(name)], rootfs)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def folder_inside(dest: Path, root: Path) -> Iterator[Path]:
    """`dest`'s folder (made if missing), opened and proven to lie inside `root` once symlinks are resolved; yields
    a path that names the open folder itself (/proc/self/fd/N), so a later swap of a parent is not followed."""
    real_root = os.path.realpath(root)
    parent = dest.parent
    if not inside(os.path.realpath(parent), real_root):  # before mkdir: never make folders out of the project
        raise RuntimeFailure(f"refusing to write {dest}: {parent} leads out of the project through a symlink")
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
        if not inside(opened, real_root):
            raise RuntimeFailure(f"refusing to write {dest}: {parent} leads out of the project ({opened})")
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def write_output(rootfs: Path, output_type: str, dest: Path) -> None:
    """Move the exported filesystem into place (`local`: the folder's contents; `tar`: one tar file). `dest`'s
    folder must exist (folder_inside)."""
    if output_type == "tar":
        fd, temporary = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.close(fd)
        os.chmod(temporary, 0o666 & ~_umask())
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
        os.chmod(staged, os.stat(rootfs).st_mode & 0o7777)  # the image root's mode, not mkdtemp's 0700
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


def export_image(
    save_stream: Iterable[bytes], output_type: str, dest: Path, root: Path | None = None
) -> None:
    """Write the image's filesystem to `dest`, which must stay inside `root` (the project folder; default: the
    folder `dest` is in) through any symlink."""
    with (
        folder_inside(dest, root or dest.parent) as folder,
        tempfile.TemporaryDirectory(prefix=".planner-export-", dir=folder) as tmp,
    ):
        work = Path(tmp)
        rootfs = work / "rootfs"
        unpack_saved_image(save_stream, rootfs, work)
        write_output(rootfs, output_type, folder / dest.name)
