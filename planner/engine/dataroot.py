"""A Docker data root read as files, with no daemon: its storage driver and its image store (names, image IDs,
labels), and whether a running daemon still uses it.

dockerd 20.10 keeps, per storage driver, `image/<driver>/repositories.json` (names -> image IDs) and
`image/<driver>/imagedb/content/sha256/<id>` (the image config JSON, `config.Labels` among it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.base.errors import InputError
from planner.engine.labels import LABEL_KEY, LABEL_NODE, LABEL_PROJECT


@dataclass(frozen=True)
class StoredImage:
    id: str  # sha256:...
    names: tuple[str, ...] = ()
    key: str | None = None  # the io.planner.key label (None: not built by planner)
    node: str | None = None
    project: str | None = None
    created: str = ""
    platform: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "names": list(self.names),
            "key": self.key,
            "node": self.node,
            "project": self.project,
            "created": self.created,
            "platform": self.platform,
        }


def storage_driver(data_root: Path) -> str:
    """The driver whose image store holds images (a data root used by one driver has one such folder)."""
    image = data_root / "image"
    drivers = (
        sorted(p.name for p in image.iterdir() if (p / "repositories.json").is_file())
        if image.is_dir()
        else []
    )
    if not drivers:
        raise InputError(f"{data_root} is not a Docker data root: no image/<driver>/repositories.json")
    with_layers = [d for d in drivers if (data_root / d).is_dir()]
    return (with_layers or drivers)[0]


def read_images(data_root: Path, driver: str | None = None) -> tuple[str, list[StoredImage]]:
    """The storage driver and every image in the data root's image store (tagged or not), sorted by ID."""
    driver = driver or storage_driver(data_root)
    store = data_root / "image" / driver
    try:
        repositories = json.loads((store / "repositories.json").read_text()).get("Repositories") or {}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {store / 'repositories.json'}: {exc}") from None
    names: dict[str, list[str]] = {}
    for refs in repositories.values():
        for name, image_id in refs.items():
            if "@" not in name:  # digests are not names a daemon lists as tags
                names.setdefault(image_id, []).append(name)
    content = store / "imagedb/content/sha256"
    images = []
    for path in sorted(content.iterdir()) if content.is_dir() else []:
        try:
            config = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # a half-written entry: dockerd ignores it as well
        image_id = f"sha256:{path.name}"
        labels = (config.get("config") or {}).get("Labels") or {}
        platform = "/".join(
            p for p in (config.get("os"), config.get("architecture"), config.get("variant")) if p
        )
        images.append(
            StoredImage(
                image_id,
                tuple(sorted(names.get(image_id, ()))),
                labels.get(LABEL_KEY),
                labels.get(LABEL_NODE),
                labels.get(LABEL_PROJECT),
                str(config.get("created") or ""),
                platform,
                dict(labels),
            )
        )
    return driver, images


def _same(path: str, target: Path) -> bool:
    try:
        return os.path.realpath(path) == str(target)
    except OSError:
        return False


def _data_root_of(argv: list[str]) -> str:
    """The data root a dockerd command line uses: `--data-root`/`-g`, else its config file's, else the default."""
    config = "/etc/docker/daemon.json"
    root: str | None = None
    for index, arg in enumerate(argv):
        value = argv[index + 1] if index + 1 < len(argv) else ""
        for flag in ("--data-root", "--graph", "-g"):
            if arg == flag:
                root = value
            elif arg.startswith(flag + "="):
                root = arg.split("=", 1)[1]
        if arg == "--config-file":
            config = value
        elif arg.startswith("--config-file="):
            config = arg.split("=", 1)[1]
    if root is None:
        try:
            root = str(json.loads(Path(config).read_text()).get("data-root") or "")
        except (OSError, ValueError, AttributeError):
            root = ""
    return root or "/var/lib/docker"


def user_of(data_root: Path) -> str | None:
    """Why the data root is in use (a running dockerd on it, or mounts below it), or None when it is not."""
    target = data_root.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [os.fsdecode(a) for a in argv if a]
        if args and os.path.basename(args[0]) == "dockerd" and _same(_data_root_of(args[1:]), target):
            return f"dockerd (pid {entry.name}) runs on it"
    prefix = str(target) + "/"
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        mounts = []
    for line in mounts:
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape") if len(fields) > 4 else ""
        if point.startswith(prefix):
            return f"{point} is mounted (a container or layer of a running daemon)"
    return None
