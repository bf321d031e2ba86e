"""The stack: the compose project plus the rules file, as one set of buildable nodes with resolved rules.

Every check that needs both (unknown node names, destinations, paths outside the project) happens here, with
the file:line of the rules value at fault.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from planner.base.errors import InputError, Location, UsageError
from planner.base.names import LOCAL
from planner.base.refs import image_name_problem
from planner.build.dockerignore import PatternMatcher, read_dockerignore_lines
from planner.compose.loader import load_project
from planner.compose.model import BuildConfig, ComposeProject, Service
from planner.compose.normalize import resolve_path
from planner.compose.options import ProjectOptions
from planner.compose.yamltree import YMap
from planner.rules.load import RulesError, load_rules, locate, rules_path, validate
from planner.rules.model import (
    ArtifactTarget,
    BuildTarget,
    EffectiveRules,
    ImageTarget,
    NodeRules,
    Rules,
    layer,
)


@dataclass(frozen=True)
class Node:
    """Something planner can build: a compose service with `build:`, or a rules image or artifact."""

    name: str
    kind: Literal["image", "artifact"]
    build: BuildConfig
    image: str | None
    rules: EffectiveRules
    output_type: Literal["local", "tar"] | None = None
    output_dest: str | None = None  # absolute
    location: Location | None = None

    def image_names(self) -> list[str]:
        """The names compose and users know the image by: `image:` (or `<project>-<service>`) and build tags,
        each with an explicit tag (`:latest` when none)."""
        names = [self.image] if self.image else []
        names += [t for t in self.build.tags if t not in names]
        return [n if ":" in n.rsplit("/", 1)[-1] or "@" in n else f"{n}:latest" for n in names]


@dataclass(frozen=True)
class StampSpec:
    """A file planner writes with a node's identity (its key), so that another build can carry it."""

    name: str
    path: str  # absolute
    source: str
    template: str
    location: Location | None = None

    def text(self, key: str, source: Node) -> str:
        return self.template.format(key=key, short_key=key[:12], image=source.image or "", name=source.name)


@dataclass(frozen=True)
class Stack:
    compose: ComposeProject
    rules: Rules
    rules_file: Path | None
    nodes: dict[str, Node] = field(default_factory=dict)
    stamps: dict[str, StampSpec] = field(default_factory=dict)

    @property
    def project_dir(self) -> Path:
        return Path(self.compose.working_dir)


def _cleaned(build: BuildConfig) -> BuildConfig:
    """Compose keeps absolute paths as written (`/a/../b/`); planner compares paths, so it cleans them."""

    def clean(path: str) -> str:
        return os.path.normpath(path) if os.path.isabs(path) else path

    return build.model_copy(
        update={
            "context": clean(build.context),
            "additional_contexts": {k: clean(v) for k, v in build.additional_contexts.items()},
        }
    )


def _check_image_name(name: str, where: Location) -> None:
    """Refuse a name the Docker daemon would refuse to tag a build with, at the line that gives it."""
    problem = image_name_problem(name)
    if problem is not None:
        raise RulesError(f"image name {name!r}: {problem}", where)


@dataclass(frozen=True)
class StackOptions(ProjectOptions):
    """Project options plus this run's overrides: `--build-arg KEY=VALUE` (or `KEY`: from the environment, and
    unset when the environment has none, as Compose does) for the compose services named in
    `build_arg_services` (all of them when empty). The overrides are the services' build args, so they are in
    the keys."""

    build_args: tuple[tuple[str, str | None], ...] = ()
    build_arg_services: tuple[str, ...] = ()


def parse_build_args(
    values: Sequence[str], option: str = "--build-arg"
) -> tuple[tuple[str, str | None], ...]:
    """`KEY=VALUE` or `KEY` each; anything else is a usage error naming the option (exit 2)."""
    parsed = []
    for value in values:
        key, has_value, text = value.partition("=")
        if not key or any(c.isspace() for c in key):
            raise UsageError(
                f"{option} {value!r}: expected KEY=VALUE (or KEY to take it from the environment)"
            )
        parsed.append((key, text if has_value else None))
    return tuple(parsed)


def load_stack(options: ProjectOptions, rules_option: str | None = None) -> Stack:
    compose = load_project(options)
    if isinstance(options, StackOptions) and options.build_args:
        compose = _with_build_args(compose, options.build_args, options.build_arg_services)
    project_dir = Path(compose.working_dir)
    path = rules_path(project_dir, rules_option, options.environ, Path(options.cwd))
    rules, tree = load_rules(path, compose.environment)
    return _Assembler(compose, rules, path, tree).assemble()


def _with_build_args(
    compose: ComposeProject, overrides: tuple[tuple[str, str | None], ...], services: Sequence[str]
) -> ComposeProject:
    changed = dict(compose.services)
    for name, service in compose.services.items():
        if service.build is None or (services and name not in services):
            continue
        args = dict(service.build.args)
        for key, given in overrides:
            value = compose.environment.get(key) if given is None else given
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        changed[name] = service.model_copy(update={"build": service.build.model_copy(update={"args": args})})
    return compose.model_copy(update={"services": changed})


def with_dependencies(options: ProjectOptions, services: Sequence[str]) -> list[str]:
    """`--with-dependencies`: the named services and, transitively, the buildable services they depend on."""
    if not services:
        return []
    compose = load_project(options)
    found: list[str] = []
    todo = list(services)
    while todo:
        name = todo.pop(0)
        if name in found:
            continue
        found.append(name)
        service = compose.services.get(name)
        todo += service.depends_on if service is not None else []
    return [n for n in found if n in services or compose.services[n].build is not None]


def image_stack(
    build: BuildConfig, tags: Sequence[str], cwd: str, environ: dict[str, str], name: str = "image"
) -> Stack:
    """A stack of one image node, for `docker build -t` through the shim (`planner build-image`): the first tag
    is its image name, the others its build tags; no compose file, no rules file."""
    service = Service(name=name, image=tags[0], build=build.model_copy(update={"tags": list(tags[1:])}))
    compose = ComposeProject(
        name="docker-build", working_dir=cwd, config_files=[os.path.join(cwd, "(docker build)")],
        services={name: service}, environment=dict(environ),
    )  # fmt: skip
    return _Assembler(compose, Rules(), None, None).assemble()


class _Assembler:
    def __init__(self, compose: ComposeProject, rules: Rules, path: Path | None, tree: YMap | None) -> None:
        self.compose = compose
        self.rules = rules
        self.path = path
        self.tree = tree
        self.project_dir = Path(compose.working_dir)
        self.home = compose.environment.get("HOME")
        # each node's own rules layer: x-planner (with its location), or its images/artifacts entry (with its keys)
        self.own_rules: dict[str, tuple[NodeRules, Location | tuple[str, str]]] = {}

    def where(self, *keys: str | int) -> Location:
        fallback = Location(str(self.path)) if self.path else Location(self.compose.working_dir)
        return (locate(self.tree, keys) if self.tree is not None else None) or fallback

    def assemble(self) -> Stack:
        nodes: dict[str, Node] = {}
        for name, service in self.compose.services.items():
            if service.build is None:
                continue
            inline = self._inline_rules(
                name, service.extensions.get("x-planner"), service.extension_locations
            )
            inline_site = service.extension_locations.get("x-planner", Location(self.compose.config_files[0]))
            self.own_rules[name] = (inline, inline_site.at(f"services.{name}.x-planner"))
            sites = service.locations
            fallback = Location(self.compose.config_files[0])
            if service.image is not None:
                _check_image_name(service.image, sites.get("image", fallback).at(f"services.{name}.image"))
            for index, tag in enumerate(service.build.tags):
                where = sites.get(f"build.tags.{index}", sites.get("build", fallback))
                _check_image_name(tag, where.at(f"services.{name}.build.tags[{index}]"))
            nodes[name] = Node(
                name=name,
                kind="image",
                build=_cleaned(service.build),
                image=self.compose.image_name(name),
                rules=self._effective(name, inline),
                location=sites.get("build.context", sites.get("build", fallback)).at(
                    f"services.{name}.build"
                ),
            )
        for section, targets in (("images", self.rules.images), ("artifacts", self.rules.artifacts)):
            for name, target in targets.items():
                where = self.where(section, name)
                if name in nodes:
                    raise RulesError(f"{section}.{name}: a compose service already has this name", where)
                nodes[name] = self._rules_node(section, name, target, where)
                self.own_rules[name] = (target, (section, name))
        self._check_references(nodes)
        stamps = self._stamps(nodes)
        return Stack(self.compose, self.rules, self.path, nodes, stamps)

    def _inline_rules(self, name: str, raw: Any, locations: dict[str, Location]) -> NodeRules:
        if raw is None:
            return NodeRules()
        loc = locations.get("x-planner", Location(self.compose.config_files[0])).at(
            f"services.{name}.x-planner"
        )
        return validate(NodeRules, raw, loc, prefix=f"services.{name}.x-planner")

    def _effective(self, name: str, inline: NodeRules) -> EffectiveRules:
        effective = EffectiveRules()
        for selector in self.rules.rules:
            patterns = [selector.match] if isinstance(selector.match, str) else selector.match
            if any(fnmatchcase(name, p) for p in patterns):
                effective = layer(effective, selector)
        return layer(effective, inline)

    def _rules_node(self, section: str, name: str, target: BuildTarget, where: Location) -> Node:
        build = self._build_config(target)
        if isinstance(target, ArtifactTarget):
            dest_site = self.where(section, name, "output", "dest")
            dest = self._inside_project(target.output.dest, dest_site.at(f"{section}.{name}.output.dest"))
            return Node(name, "artifact", build, None, self._effective(name, target),
                        target.output.type, dest, where)  # fmt: skip
        assert isinstance(target, ImageTarget)
        image = target.image or f"{self.compose.name}-{name}"
        image_site = self.where(section, name, "image") if target.image else where
        _check_image_name(image, image_site.at(f"{section}.{name}.image"))
        for index, tag in enumerate(target.tags):
            _check_image_name(
                tag, self.where(section, name, "tags", index).at(f"{section}.{name}.tags[{index}]")
            )
        if target.tags:
            build = build.model_copy(update={"tags": list(target.tags)})
        return Node(name, "image", build, image, self._effective(name, target), location=where)

    def _build_config(self, target: BuildTarget) -> BuildConfig:
        args = {}
        for key, value in target.args.items():
            if value is not None:
                args[key] = value
            elif key in self.compose.environment:
                args[key] = self.compose.environment[key]
        return BuildConfig(
            context=resolve_path(target.context, self.project_dir, self.home),
            dockerfile=target.dockerfile or (None if target.dockerfile_inline else "Dockerfile"),
            dockerfile_inline=target.dockerfile_inline,
            args=args,
            target=target.target,
            additional_contexts={k: self._context_value(v) for k, v in target.additional_contexts.items()},
            platforms=list(target.platforms),
        )

    def _context_value(self, value: str) -> str:
        """An additional context: `target:NODE` (a rules-file form) and remote forms as written, else a path."""
        return value if value.startswith("target:") else resolve_path(value, self.project_dir, self.home)

    def _inside_project(self, relative: str, where: Location) -> str:
        """The written path, refused when it leaves the project: by its text, or through a symlink among the
        parts that exist (`out -> /elsewhere`; realpath resolves those and keeps the rest as written)."""
        path = os.path.normpath(self.project_dir / relative)
        root = str(self.project_dir)
        real_root = os.path.realpath(root)
        for candidate, base in ((path, root), (os.path.realpath(path), real_root)):
            if candidate != base and not candidate.startswith(base.rstrip(os.sep) + os.sep):
                how = "" if candidate is path else f" (through a symlink: {candidate})"
                raise RulesError(f"{where.key_path}: {relative} is outside the project directory{how}", where)
        return path

    def _check_references(self, nodes: dict[str, Node]) -> None:
        destinations = {LOCAL, *self.rules.destinations}
        for name, node in nodes.items():
            if node.rules.ignore:  # compiled now, so a bad one stops the run before anything is cached
                try:
                    PatternMatcher.from_lines(node.rules.ignore, "hash.ignore")
                except InputError as exc:
                    raise RulesError(
                        f"{name}: hash.ignore: {exc.message}", self._rule_site(name, "hash")
                    ) from None
            if node.rules.exclude:
                try:
                    PatternMatcher.from_lines(
                        [p for _, p in read_dockerignore_lines("\n".join(node.rules.exclude))], "exclude"
                    )
                except InputError as exc:
                    raise RulesError(
                        f"{name}: exclude: {exc.message}", self._rule_site(name, "exclude")
                    ) from None
            for dep in node.rules.depends_on:
                if dep not in nodes:
                    where = self._rule_site(name, "depends_on")
                    raise RulesError(f"{name}: depends_on names unknown node {dep!r}", where)
            for dest in node.rules.destinations:
                if dest not in destinations:
                    where = self._rule_site(name, "destinations")
                    raise RulesError(
                        f"{name}: unknown destination {dest!r} (known: {', '.join(sorted(destinations))})",
                        where,
                    )

    def _rule_site(self, name: str, field_name: str) -> Location:
        """Where the layer that set a node's `field_name` is: its own rules (x-planner, or its images/artifacts
        entry) win, then the last matching selector that sets the field."""
        own, site = self.own_rules[name]
        own_site = site if isinstance(site, Location) else self.where(*site, field_name)
        if getattr(own, field_name) is not None:
            return own_site
        for index in reversed(range(len(self.rules.rules))):
            selector = self.rules.rules[index]
            patterns = [selector.match] if isinstance(selector.match, str) else selector.match
            if getattr(selector, field_name) is not None and any(fnmatchcase(name, p) for p in patterns):
                return self.where("rules", index, field_name)
        return own_site

    def _stamps(self, nodes: dict[str, Node]) -> dict[str, StampSpec]:
        stamps = {}
        for name, stamp in self.rules.stamps.items():
            where = self.where("stamps", name)
            if stamp.source not in nodes:
                raise RulesError(
                    f"stamps.{name}.from: unknown node {stamp.source!r}", self.where("stamps", name, "from")
                )
            try:
                stamp.template.format(key="k", short_key="k", image="i", name="n")
            except (KeyError, IndexError, ValueError) as exc:
                raise RulesError(
                    f"stamps.{name}.template: bad field {exc}", self.where("stamps", name, "template")
                ) from None
            path = self._inside_project(
                stamp.path, self.where("stamps", name, "path").at(f"stamps.{name}.path")
            )
            stamps[name] = StampSpec(name, path, stamp.source, stamp.template, where)
        return stamps
