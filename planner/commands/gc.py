"""`planner gc`: remove this project's content-addressed refs from the registry, keeping the newest N keys per
image (and always the current one). Dry run unless asked.

The current keys are the ones `apply` computes: gc takes them from the same plan (`make_plan`, online), so a
base image named by tag resolves through the local daemon exactly as it does for `apply`. Offline keys would
say `unresolved` for such a base, name no ref in the registry, and let the current one be deleted.

Deleting a manifest only unlinks it: the registry frees the blobs when its own garbage collector runs
(`docker-registry garbage-collect /etc/docker/registry/config.yml`, best with the registry read-only or stopped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from planner.base.errors import RuntimeFailure, UsageError
from planner.build.stack import load_stack
from planner.compose.options import ProjectOptions
from planner.engine.connect import open_engines
from planner.engine.registry import RegistryError
from planner.keys.compute import UNRESOLVED
from planner.plan.pipeline import make_plan

KEY_TAG = re.compile(r"^[0-9a-f]{32}$")
NO_REGISTRY = "no registry in the rules file: nothing to collect"


@dataclass
class RepositoryGc:
    repository: str
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def collect(options: ProjectOptions, rules: str | None, keep: int, delete: bool) -> list[RepositoryGc]:
    if keep < 1:
        raise UsageError("--keep must be at least 1")
    stack = load_stack(options, rules)
    if stack.rules.registry is None:
        raise UsageError(NO_REGISTRY)
    # The current keys are the ones apply would build now (bases resolved by the local daemon): the same plan.
    planned = make_plan(options, rules, [], offline=False, stack=stack)
    graph, manifests = planned.graph, planned.manifests
    for name in sorted(graph.nodes):
        unresolved = [ref for ref, identity in manifests[name].bases.items() if identity == UNRESOLVED]
        if unresolved:  # the local daemon did not answer: the current key is unknown, nothing is safe to drop
            raise RuntimeFailure(
                f"cannot tell the current key of {name}: base image {', '.join(unresolved)} does not resolve "
                "(is the local Docker daemon reachable?)"
            )
    registry = open_engines(stack.rules, []).registry
    if registry is None:
        raise UsageError(NO_REGISTRY)
    results = []
    try:
        registry.ping()
        for name, node in sorted(graph.nodes.items()):
            if node.kind != "image" or not node.image:
                continue
            repository = registry.repository(node.image)
            result = RepositoryGc(repository)
            dated = []
            for tag in registry.tags(repository):
                if not KEY_TAG.match(tag):
                    continue  # not a content-addressed ref of planner's: never touched
                digest, created = registry.created(repository, tag)
                dated.append((created, tag, digest))
            dated.sort(reverse=True)
            current = manifests[name].key
            keep_tags = {current} | {tag for _, tag, _ in dated[:keep]}
            for _, tag, digest in dated:
                if tag in keep_tags:
                    result.kept.append(tag)
                    continue
                result.removed.append(tag)
                if delete:
                    try:
                        registry.delete_manifest(repository, digest)
                    except RegistryError as exc:
                        result.errors.append(f"{tag}: {exc.message}")
            results.append(result)
    finally:
        registry.close()
    return results
