"""What observe saw, as data: which keys each daemon holds (and under which names), what the registry holds,
which artifact outputs and stamps are current. decide reads only this; engine adapters produce its parts."""

from __future__ import annotations

from dataclasses import dataclass, field


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
class Observation:
    daemons: dict[str, DaemonView]
    registry: RegistryView | None
    artifacts: dict[str, bool] = field(default_factory=dict)  # node -> output on disk holds its key
    previous_keys: dict[str, str] = field(default_factory=dict)  # node -> newest other key held locally
    stamps: dict[str, bool] = field(default_factory=dict)  # stamp -> the file holds the current text
    shared: frozenset[str] = frozenset()  # registry refs this machine pushed or saw in the registry before
    offline: bool = False  # nothing was queried: every action and transfer is unknown

    @classmethod
    def nothing(cls) -> Observation:
        """An offline plan's observation: no daemon, registry or output was looked at."""
        return cls(daemons={}, registry=None, offline=True)
