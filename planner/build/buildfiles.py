"""What each node's build reads besides its context's files, read once: the Dockerfile (text and analysis) and
the `.dockerignore` matcher of each local context.

The graph (edges from FROM / COPY --from, artifacts seen through the ignore rules), the keys (which files are
sent, the Dockerfile's hash) and apply's build request (what is sent, the Dockerfile to inject) all consume
this one value, so they cannot disagree about a file that changed between two reads.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from planner.base import inputs
from planner.base.errors import InputError, Location, exception_text
from planner.base.paths import inside
from planner.build.dockerfile import (
    DockerfileInfo,
    DockerfileSyntaxError,
    Reads,
    buildkit_only,
    check_dockerfile,
    context_reads,
    parse_dockerfile,
)
from planner.build.dockerignore import PatternMatcher, load_matcher
from planner.build.stack import Node

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


def _related(a: str, b: str) -> bool:
    return inside(a, b) or inside(b, a)


def _check_folder(node: Node, folder: str, what: str, produced: Collection[str]) -> None:
    """A local context must be an existing folder, said at the line of the node's build (or context); unless
    an artifact writes it (or into it, or it lies in one's output): apply makes it before this node builds."""
    if any(_related(folder, dest) for dest in produced):
        return
    if not inputs.is_dir(folder):
        problem = "is not a folder" if inputs.exists(folder) else "does not exist"
        raise BuildFileError(f"{node.name}: {what} {folder} {problem}", node.location)


def _dockerfile_text(node: Node, produced: Collection[str]) -> str | None:
    build = node.build
    if os.path.isabs(build.context):
        _check_folder(node, build.context, "build context folder", produced)
    if build.dockerfile_inline is not None:
        return build.dockerfile_inline
    if is_remote(build.context):
        return None
    path = Path(build.context) / (build.dockerfile or "Dockerfile")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BuildFileError(f"{node.name}: Dockerfile not found: {path}", node.location) from None
    except IsADirectoryError:
        raise BuildFileError(f"{node.name}: Dockerfile {path} is a directory", node.location) from None
    except OSError as exc:
        raise BuildFileError(
            f"{node.name}: cannot read Dockerfile {path}: {exception_text(exc)}", node.location
        ) from None


def _check_syntax(node: Node, text: str) -> None:
    """What BuildKit would refuse to parse is bad input: said at the Dockerfile's line (inline: the compose
    or rules line, plus the line inside the text)."""
    try:
        check_dockerfile(text)
    except DockerfileSyntaxError as exc:
        path = dockerfile_path(node)
        if path is not None:
            raise BuildFileError(exc.message, Location(str(path), exc.line)) from None
        raise BuildFileError(
            f"{node.name}: dockerfile_inline line {exc.line}: {exc.message}", node.location
        ) from None


@dataclass(frozen=True)
class BuildFiles:
    node: str
    dockerfile_path: Path | None
    dockerfile_text: str | None  # None: a remote context (its Dockerfile is not ours to read)
    info: DockerfileInfo | None
    # context label ("." or the additional context's name) -> (absolute root, its ignore matcher)
    contexts: dict[str, tuple[str, PatternMatcher]] = field(default_factory=dict)
    # what the target's build reads from the main context (None: no Dockerfile of ours to read)
    reads: Reads | None = None
    # main-context-relative paths that are always in the key when sent: the Dockerfile and the ignore files
    always: tuple[str, ...] = ()
    # the first construct only BuildKit builds (`line N: what`), None when the classic builder builds it alike
    needs_buildkit: str | None = None

    def injected_dockerfile(self) -> str | None:
        """Why the Dockerfile is not among the main context's sent entries (inline, outside the context, excluded
        by the ignore file), so the builder must get it apart or injected into the context (as apply's
        `dockerfile_source` does, from the walk); None when it is sent like any file."""
        if self.dockerfile_text is None or MAIN not in self.contexts:
            return None  # a remote context: its Dockerfile is not ours
        if self.dockerfile_path is None:
            return "dockerfile_inline"
        folder, matcher = self.contexts[MAIN]
        relative = os.path.relpath(self.dockerfile_path, folder).replace(os.sep, "/")
        if relative.startswith("../"):
            return "it lies outside the context"
        return None if matcher.would_send(relative) else "the ignore file excludes it"

    def sees(self, path: str) -> bool:
        """Whether `path` would be sent in one of the node's local contexts (ignore rules applied); an excluded
        folder with re-included entries under it counts as seen."""
        for folder, matcher in self.contexts.values():
            if not inside(path, folder):
                continue
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            if relative == "." or matcher.would_send(relative) or matcher.descend_into(relative):
                return True
        return False


def read_build_files(node: Node, produced: Collection[str] = ()) -> BuildFiles:
    """`produced`: the output paths of the stack's artifacts (folders that may not exist before apply)."""
    text = _dockerfile_text(node, produced)
    if text is not None:
        _check_syntax(node, text)
    info = parse_dockerfile(text, node.build.args) if text is not None else None
    reads = context_reads(text, node.build.args, node.build.target) if text is not None else None
    contexts: dict[str, tuple[str, PatternMatcher]] = {}
    main = node.build.context
    if os.path.isabs(main):
        contexts[MAIN] = (main, load_matcher(Path(main), dockerfile_path(node), node.rules.exclude))
    for name, value in node.build.additional_contexts.items():
        if os.path.isabs(value):
            contexts[name] = (value, load_matcher(Path(value), None))
    return BuildFiles(
        node.name, dockerfile_path(node), text, info, contexts, reads, _always(node.build.context, node),
        buildkit_only(text) if text is not None else None,
    )  # fmt: skip


def _always(context: str, node: Node) -> tuple[str, ...]:
    """The Dockerfile and the ignore files, relative to the main context when they lie in it."""
    path = dockerfile_path(node)
    found = [".dockerignore"]
    if path is not None:
        relative = os.path.relpath(path, context).replace(os.sep, "/")
        if not relative.startswith("../"):
            found += [relative, f"{relative}.dockerignore"]
    return tuple(found)


def read_all(nodes: Mapping[str, Node]) -> dict[str, BuildFiles]:
    produced = [node.output_dest for node in nodes.values() if node.output_dest]
    return {name: read_build_files(node, produced) for name, node in nodes.items()}
