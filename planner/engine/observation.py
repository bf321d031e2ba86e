"""What observe saw, as data: which keys each daemon holds (and under which names), what the registry holds,
which artifact outputs and stamps are current. decide reads only this; engine adapters produce its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# How planner reaches the daemon that builds (engine.http.reach): a local socket, plain TCP, or TLS / ssh.
Reach = Literal["unix", "tcp", "other"]


@dataclass(frozen=True)
class KeyedImage:
    image_id: str
    key: str
    tags: tuple[str, ...] = ()
    created: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DaemonView:
    name: str
    error: str | None = None
    images: dict[str, KeyedImage] = field(default_factory=dict)  # key -> image
    wrong_platform: dict[str, str] = field(default_factory=dict)  # key -> platform of the image left out
    inspected: dict[str, str] = field(default_factory=dict)  # image ID -> platform, asked of the daemon now
    # chain IDs of every layer the daemon holds; read only where an image is to be delivered to it
    chains: frozenset[str] | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None

    def has(self, key: str) -> bool:
        return key in self.images


@dataclass(frozen=True)
class RegistryView:
    host: str
    error: str | None = None
    present: frozenset[str] = frozenset()
    checked: bool = True  # False: every destination held its keys, nothing needed the registry

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GoldenImage:
    id: str
    key: str | None  # the io.planner.key label; None: not made by planner (its names are not trusted)
    node: str | None = None
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class GoldenView:
    """The current version of a golden data root, read from its manifest (no daemon)."""

    destination: str
    path: str
    version: str = ""
    created: str = ""
    error: str | None = None
    images: tuple[GoldenImage, ...] = ()
    inputs: dict[str, object] = field(default_factory=dict)  # key -> input manifest kept with the golden


@dataclass(frozen=True)
class Observation:
    daemons: dict[str, DaemonView]
    registry: RegistryView | None
    artifacts: dict[str, bool] = field(default_factory=dict)  # node -> output on disk holds its key
    previous_keys: dict[str, str] = field(default_factory=dict)  # node -> newest other key held locally
    stamps: dict[str, bool] = field(default_factory=dict)  # stamp -> the file holds the current text
    shared: frozenset[str] = frozenset()  # registry refs this machine pushed or saw in the registry before
    offline: bool = False  # nothing was queried: every action and transfer is unknown
    goldens: tuple[
        GoldenView, ...
    ] = ()  # golden data roots of destinations (rules: destinations.NAME.golden)
    # key -> the session daemon's image's layers bottom-up (diffID, size or None), for images to deliver
    layers: dict[str, tuple[tuple[str, int | None], ...]] = field(default_factory=dict)

    @classmethod
    def nothing(cls) -> Observation:
        """An offline plan's observation: no daemon, registry or output was looked at."""
        return cls(daemons={}, registry=None, offline=True)
