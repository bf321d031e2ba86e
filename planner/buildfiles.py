"""What each node's build reads besides its context's files, read once: the Dockerfile (text and analysis) and
the `.dockerignore` matcher of each local context.

The graph (edges from FROM / COPY --from, artifacts seen through the ignore rules), the keys (which files are
sent, the Dockerfile's hash) and apply's build request (what is sent, the Dockerfile to inject) all consume
this one value, so they cannot disagree about a file that changed between two reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from planner.dockerfile import DockerfileInfo, parse_dockerfile
from planner.dockerignore import PatternMatcher, load_matcher
from planner.errors import InputError
from planner.stack import Node

MAIN = "."  # the main context's label among a node's contexts


class BuildFileError(InputError):
    """A Dockerfile or ignore file cannot be read."""


def is_remote(context: str) -> bool:
    return "://" in context or context.startswith(("git@", "github.com/"))


def dockerfile_path(node: Node) -> Path | None:
    """The Dockerfile on disk; None when inline or when the context is remote."""
    if node.build.dockerfile_inline is not None or not os.path.isabs(node.build.context):
        return None
    return Path(node.build.context) / (node.build.dockerfile or "Dockerfile")


def _dockerfile_text(node: Node) -> str | None:
    build = node.build
    if build.dockerfile_inline is not None:
        return build.dockerfile_inline
    if is_remote(build.context):
        return None
    path = Path(build.context) / (build.dockerfile or "Dockerfile")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BuildFileError(f"{node.name}: Dockerfile not found: {path}", node.location) from None
    except OSError as exc:
        raise BuildFileError(f"{node.name}: cannot read Dockerfile {path}: {exc}", node.location) from None


@dataclass(frozen=True)
class BuildFiles:
    node: str
    dockerfile_path: Path | None
    dockerfile_text: str | None  # None: a remote context (its Dockerfile is not ours to read)
    info: DockerfileInfo | None
    # context label ("." or the additional context's name) -> (absolute root, its ignore matcher)
    contexts: dict[str, tuple[str, PatternMatcher]] = field(default_factory=dict)

    def sees(self, path: str) -> bool:
        """Whether `path` would be sent in one of the node's local contexts (ignore rules applied); an excluded
        folder with re-included entries under it counts as seen."""
        for folder, matcher in self.contexts.values():
            if not (path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)):
                continue
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            if relative == "." or matcher.would_send(relative) or matcher.descend_into(relative):
                return True
        return False


def read_build_files(node: Node) -> BuildFiles:
    text = _dockerfile_text(node)
    info = parse_dockerfile(text, node.build.args) if text is not None else None
    contexts: dict[str, tuple[str, PatternMatcher]] = {}
    main = node.build.context
    if os.path.isabs(main):
        contexts[MAIN] = (main, load_matcher(Path(main), dockerfile_path(node)))
    for name, value in node.build.additional_contexts.items():
        if os.path.isabs(value):
            contexts[name] = (value, load_matcher(Path(value), None))
    return BuildFiles(node.name, dockerfile_path(node), text, info, contexts)


def read_all(nodes: Mapping[str, Node]) -> dict[str, BuildFiles]:
    return {name: read_build_files(node) for name, node in nodes.items()}
