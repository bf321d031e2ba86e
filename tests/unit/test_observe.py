"""Which earlier build `explain` and the rebuild reasons compare with: the one carrying the node's name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from planner.build.graph import build_graph
from planner.build.stack import load_stack
from planner.compose.options import ProjectOptions
from planner.engine.labels import LABEL_KEY, LABEL_NODE, LABEL_PROJECT
from planner.engine.observation import DaemonView, KeyedImage
from planner.keys.manifest import Manifest
from planner.plan.observe import previous_keys
from tests.helpers import write_tree


def image(key: str, created: int, tags: tuple[str, ...] = (), project: str = "p") -> KeyedImage:
    labels = {LABEL_KEY: key, LABEL_NODE: "app", LABEL_PROJECT: project}
    return KeyedImage(f"sha256:{key}", key, tags, created, labels)


def test_the_named_image_wins_over_a_newer_unnamed_one(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"compose.yaml": "name: p\nservices:\n  app:\n    build: .\n", "Dockerfile": "FROM scratch\n"},
    )
    graph = build_graph(
        load_stack(ProjectOptions(environ={"PATH": "/usr/bin", "HOME": str(tmp_path)}, cwd=str(tmp_path)))
    )
    current = {"app": Manifest("app", "current")}
    # BuildKit stamps images with the start of their build: an older build can look newer.
    view = DaemonView("local", images={
        "named": image("named", created=100, tags=("p-app:latest",)),
        "stale": image("stale", created=200),
        "current": image("current", created=300),
    })  # fmt: skip
    assert previous_keys(graph, view, current) == {"app": "named"}
    unnamed = DaemonView("local", images={"old": image("old", 100), "newer": image("newer", 200)})
    assert previous_keys(graph, unnamed, current) == {"app": "newer"}
    other_project = DaemonView("local", images={"x": image("x", 100, project="other")})
    assert previous_keys(graph, other_project, current) == {}


class PlatformDaemon:
    """A daemon double for the platform check: two images carry key k (the newer one built for arm64)."""

    where = "unix:///double.sock"
    name = "local"

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.platforms = {"sha256:new": "linux/arm64", "sha256:old": "linux/amd64"}

    def images_by_key(self) -> dict[str, list[KeyedImage]]:
        return {
            "k": [
                replace(image("k", 2), image_id="sha256:new"),
                replace(image("k", 1), image_id="sha256:old"),
            ]
        }

    def platform(self) -> str:
        return "linux/amd64"

    def image_platform(self, image_id: str) -> str | None:
        self.asked.append(image_id)
        return self.platforms.get(image_id)


def test_an_image_platform_seen_before_is_not_asked_again() -> None:
    from planner.plan.observe import _daemon_view

    daemon = PlatformDaemon()
    first = _daemon_view(daemon, {"k": None}, lambda where, image_id: None)  # type: ignore[arg-type]
    assert first.images["k"].image_id == "sha256:old" and first.wrong_platform == {}
    assert daemon.asked == ["sha256:new", "sha256:old"]
    assert first.inspected == {"sha256:new": "linux/arm64", "sha256:old": "linux/amd64"}

    seen = {(daemon.where, i): p for i, p in first.inspected.items()}
    daemon.asked.clear()
    again = _daemon_view(daemon, {"k": None}, lambda where, image_id: seen.get((where, image_id)))  # type: ignore[arg-type]
    assert daemon.asked == [] and again.inspected == {}
    assert again.images["k"].image_id == "sha256:old"  # the same answer, from what was seen
    wrong = _daemon_view(daemon, {"k": "linux/s390x"}, lambda where, image_id: seen.get((where, image_id)))  # type: ignore[arg-type]
    assert "k" not in wrong.images and wrong.wrong_platform == {"k": "linux/arm64"}
