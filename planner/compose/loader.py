"""Loading a compose project, in compose-go's passes.

For each `-f` file in order: parse → interpolate (values only, before any merge) → canonical build forms →
resolve `extends` → import `include`d projects → merge into the project. Then name, profiles and normalization
(normalize.py). Relative paths resolve against the project directory for `-f` files, against the declaring file's
folder for `extends: {file: ...}`, and against the include's project directory for included files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.base import inputs
from planner.base.errors import ComposeFileError, EnvFileError, InterpolationError, Location
from planner.compose.envfile import resolve_environment
from planner.compose.interpolate import substitute
from planner.compose.merge import key_value_pairs, merge, strip_resets
from planner.compose.model import ComposeProject, Service
from planner.compose.normalize import build_project, normalize_services, resolve_path
from planner.compose.options import ProjectOptions, normalize_project_name, resolve_options
from planner.compose.yamltree import YList, YMap, deep_copy, load_yaml_file, location_in


def load_project(options: ProjectOptions) -> ComposeProject:
    """Load and resolve the compose project the options describe."""
    resolved = resolve_options(options)
    home = options.environ.get("HOME")
    loader = _FileLoader(resolved.environment, home, options.interpolate, [])
    model: Any = None
    services: dict[str, Service] = {}
    name_from_files: tuple[str, Location] | None = None
    for index, path in enumerate(resolved.config_files):
        tree = loader.load(path, resolved.working_dir, include_chain=(path,))
        model = merge(model, tree) if model is not None else strip_resets(tree)
        # Compose validates the merged model after each file: a wrong type fails even if a later file fixes it.
        # The last file's result is the project's services.
        final = index == len(resolved.config_files) - 1
        services = normalize_services(model, resolved.working_dir, resolved.environment, home, final)
        if tree.raw_name:  # decided on the text as written, before interpolation (compose-go's projectName)
            name_from_files = (str(tree.get("name") or ""), tree.loc_of("name"))
    if not model:  # Compose refuses a project whose files are all empty (or `{}`), naming no file
        raise ComposeFileError("empty compose file", Location(str(resolved.config_files[0]), 1))
    name = resolved.project_name
    if name is None and name_from_files is not None:
        name = normalize_project_name(name_from_files[0])
        if not name:
            raise ComposeFileError("project name must not be empty", name_from_files[1].at("name"))
    name = name or resolved.default_name
    if not name:
        raise ComposeFileError("project name must not be empty", Location(str(resolved.working_dir)))
    # each once: those about the files found, then those in the order the files gave them
    warnings = list(dict.fromkeys([*resolved.warnings, *loader.warnings]))
    for warning in warnings:
        sys.stderr.write(f"planner: warning: {warning}\n")
    project = build_project(
        model,
        services,
        name=name,
        working_dir=resolved.working_dir,
        config_files=[str(p) for p in resolved.config_files],
        profiles=resolved.profiles,
        environment=resolved.environment,
    )
    return project.model_copy(update={"warnings": warnings})


_VERSION_OBSOLETE = (
    "the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
)


@dataclass
class _FileLoader:
    environment: Mapping[str, str]
    home: str | None
    interpolate: bool = True
    warnings: list[str] = field(default_factory=list)  # Compose's load-time warnings, in its words

    def load(self, path: Path, base_dir: Path, include_chain: tuple[Path, ...]) -> YMap:
        """One compose file, interpolated, with its extends resolved and includes imported."""
        tree = self.read(path, self.environment)
        services = tree.get("services")
        if isinstance(services, YMap):
            _Extends(self, path, base_dir).apply_all(services)
        if "include" in tree:
            self.apply_include(tree, base_dir, include_chain)
        return tree

    def read(self, path: Path, environment: Mapping[str, str]) -> YMap:
        tree = load_yaml_file(path)
        if tree is None:
            return YMap(Location(str(path), 1, 1))
        if not isinstance(tree, YMap):
            raise ComposeFileError(
                "top-level object must be a mapping", getattr(tree, "loc", Location(str(path)))
            )
        raw_name = tree.get("name")
        if raw_name is not None and not isinstance(raw_name, str):
            raise ComposeFileError("name must be a string", location_in(tree, "name"))
        tree.raw_name = raw_name or ""
        if self.interpolate:
            interpolate_tree(tree, environment, "", self.unset_variable)
        if "version" in tree:
            self.warnings.append(f"{path}: {_VERSION_OBSOLETE}")
        canonical_builds(tree)
        return tree

    def unset_variable(self, name: str) -> None:
        self.warnings.append(f'The "{name}" variable is not set. Defaulting to a blank string.')

    def apply_include(self, tree: YMap, base_dir: Path, chain: tuple[Path, ...]) -> None:
        entries = tree.pop("include")
        if entries is None:
            return
        if not isinstance(entries, YList):
            raise ComposeFileError("include must be a list", location_in(tree, "include"))
        services = tree.get("services")
        if services is None:
            services = YMap(tree.loc_of("include"))
            tree.put("services", services)
        for index, entry in enumerate(entries):
            imported, resources = self.load_included(entry, entries.loc_of(index), base_dir, chain)
            for section, declared in resources.items():  # its networks, volumes, secrets and configs too
                own = tree.get(section)
                if own is None:
                    own = YMap(tree.loc_of("services"))
                    tree.put(section, own)
                if isinstance(own, YMap):
                    for key, value in declared.items():
                        if key not in own:
                            own.put(key, value, declared.loc_of(key))
            for name, service in imported.items():
                if name in services:
                    raise ComposeFileError(
                        f"services.{name} conflicts with imported resource", location_in(services, name)
                    )
                services.put(name, service, imported.loc_of(name))

    def load_included(
        self, entry: Any, loc: Location, base_dir: Path, chain: tuple[Path, ...]
    ) -> tuple[YMap, dict[str, YMap]]:
        """Services of one included project, paths made absolute against its own project directory, and its
        top-level networks, volumes, secrets and configs."""
        if isinstance(entry, str):
            entry_map: Any = {"path": entry}
        elif isinstance(entry, dict):
            entry_map = entry
        else:
            raise ComposeFileError("include entries must be a path or a mapping", loc.at("include"))
        paths = _string_list(entry_map.get("path"), loc, "include.path")
        if not paths:
            raise ComposeFileError("include entry has no path", loc.at("include"))
        files = [Path(os.path.normpath(base_dir / p)) for p in paths]
        for file in files:
            if not inputs.is_file(file):
                raise ComposeFileError(f"included file {file} not found", loc.at("include.path"))
        if files[0] in chain:
            cycle = " -> ".join(str(p) for p in (*chain, files[0]))
            raise ComposeFileError(f"include cycle detected: {cycle}", loc.at("include"))
        project_dir_value = entry_map.get("project_directory")
        project_dir = (
            Path(os.path.normpath(base_dir / project_dir_value)) if project_dir_value else files[0].parent
        )
        env_values = _string_list(entry_map.get("env_file"), loc, "include.env_file")
        if env_values:
            env_files = [Path(os.path.normpath(base_dir / f)) for f in env_values if f != "/dev/null"]
        else:
            default = project_dir / ".env"
            env_files = [default] if inputs.is_file(default) else []
        for env_file in env_files:
            if not inputs.is_file(env_file):
                raise EnvFileError("env file not found", loc.at("include.env_file"))
        # The including project's environment wins over the included project's .env.
        environment = resolve_environment(env_files, self.environment) if env_files else self.environment
        child = _FileLoader(environment, self.home, self.interpolate, self.warnings)
        model: Any = None
        for file in files:
            tree = child.load(file, project_dir, (*chain, file))
            model = merge(model, tree) if model is not None else strip_resets(tree)
        resources = {
            section: model[section]
            for section in ("networks", "volumes", "secrets", "configs")
            if isinstance(model, YMap) and isinstance(model.get(section), YMap)
        }
        services = model.get("services") if isinstance(model, YMap) else None
        if not isinstance(services, YMap):
            return YMap(loc), resources
        rebase_services(services, project_dir, self.home)
        return services, resources


class _Extends:
    """Resolves `extends` for the services of one file, recursively and with cycle detection."""

    def __init__(self, loader: _FileLoader, path: Path, base_dir: Path) -> None:
        self.loader = loader
        self.path = path
        self.base_dir = base_dir

    def apply_all(self, services: YMap) -> None:
        for name in list(services):
            self.resolve(name, services, ())

    def resolve(self, name: str, services: YMap, chain: tuple[tuple[str, str], ...]) -> Any:
        service = services.get(name)
        if not isinstance(service, YMap) or "extends" not in service:
            return service
        link = (str(self.path), name)
        if link in chain:
            cycle = " -> ".join(f"{f}:{s}" for f, s in (*chain, link))
            raise ComposeFileError(f"circular reference with extends: {cycle}", service.loc_of("extends"))
        ref, ref_file = self.reference(service, f"services.{name}.extends")
        if ref_file is None:
            if ref not in services:
                raise ComposeFileError(
                    f'cannot extend service "{name}" in {self.path}: service "{ref}" not found',
                    service.loc_of("extends").at(f"services.{name}.extends"),
                )
            base = self.resolve(ref, services, (*chain, link))
        else:
            other_path = Path(os.path.normpath(self.base_dir / ref_file))
            if not inputs.is_file(other_path):
                raise ComposeFileError(
                    f'cannot extend service "{name}": file {other_path} not found',
                    service.loc_of("extends").at(f"services.{name}.extends.file"),
                )
            other = self.loader.read(other_path, self.loader.environment)
            other_services = other.get("services")
            if not isinstance(other_services, YMap) or ref not in other_services:
                raise ComposeFileError(
                    f'cannot extend service "{name}": service "{ref}" not found in {other_path}',
                    service.loc_of("extends").at(f"services.{name}.extends"),
                )
            nested = _Extends(self.loader, other_path, other_path.parent)
            base = nested.resolve(ref, other_services, (*chain, link))
            base = deep_copy(base) if base is not None else None
            if isinstance(base, YMap):
                rebase_service(base, other_path.parent, self.loader.home)
        source = deep_copy(base) if base is not None else YMap(service.loc)
        if not isinstance(source, YMap):
            source = YMap(service.loc)
        source.pop("extends", None)
        merged = merge(source, service, ("services", name))
        merged.pop("extends", None)
        services.put(name, merged, services.loc_of(name))
        return merged

    def reference(self, service: YMap, path: str) -> tuple[str, str | None]:
        value = service["extends"]
        if isinstance(value, str):
            return value, None
        if isinstance(value, dict) and isinstance(value.get("service"), str):
            file = value.get("file")
            if file is not None and not isinstance(file, str):
                raise ComposeFileError(f"{path}.file must be a string", location_in(value, "file"))
            return value["service"], file
        raise ComposeFileError(
            f"{path} must be a service name or a mapping with service", service.loc_of("extends")
        )


def interpolate_tree(
    node: Any, environment: Mapping[str, str], path: str, on_unset: Callable[[str], None] | None = None
) -> None:
    """Substitute variables in every string value (never in keys), in place."""
    lookup = environment.get
    if isinstance(node, YMap):
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            if isinstance(value, str):
                node[key] = _substitute(value, lookup, node.loc_of(key), child, on_unset)
            else:
                interpolate_tree(value, environment, child, on_unset)
    elif isinstance(node, YList):
        for index, value in enumerate(node):
            child = f"{path}[{index}]"
            if isinstance(value, str):
                node[index] = _substitute(value, lookup, node.loc_of(index), child, on_unset)
            else:
                interpolate_tree(value, environment, child, on_unset)


def _substitute(
    value: str, lookup: Any, loc: Location, key_path: str, on_unset: Callable[[str], None] | None = None
) -> str:
    if "$" not in value:
        return value
    try:
        return substitute(value, lookup, on_unset)
    except InterpolationError as exc:
        exc.location = loc.at(key_path)
        raise


def canonical_builds(tree: YMap) -> None:
    """`build: PATH` → `{context: PATH}`; list-form args/labels/additional_contexts → maps (last key wins)."""
    services = tree.get("services")
    if not isinstance(services, YMap):
        return
    for name, service in services.items():
        if not isinstance(service, YMap) or "build" not in service:
            continue
        build = service["build"]
        if isinstance(build, str):
            mapping = YMap(service.loc_of("build"))
            mapping.put("context", build, service.loc_of("build"))
            service.put("build", mapping, service.loc_of("build"))
        elif isinstance(build, YMap):
            for key in ("args", "labels", "additional_contexts"):
                if isinstance(build.get(key), YList) and _all_scalars(build[key]):
                    tag = build.tags.get(key)
                    build.put(key, key_value_pairs(build[key]), build.loc_of(key))
                    if tag:
                        build.tags[key] = tag
        del name


def _all_scalars(items: list[Any]) -> bool:
    return all(isinstance(i, str | int | float | bool) for i in items)


def rebase_service(service: YMap, directory: Path, home: str | None, default_context: bool = False) -> None:
    """Make a service's relative build paths absolute against `directory` (its file's folder).

    Included projects get their default context (`.`) first, so it is their own directory; a service taken by
    `extends` keeps no context, which later means the main project's directory (as in Compose)."""
    _rebase_env_files(service, directory, home)
    build = service.get("build")
    if isinstance(build, str):
        service["build"] = resolve_path(build, directory, home)
        return
    if not isinstance(build, YMap):
        return
    if default_context and build.get("context") is None:
        build.put("context", ".")
    if isinstance(build.get("context"), str):
        build["context"] = resolve_path(build["context"], directory, home)
    contexts = build.get("additional_contexts")
    if isinstance(contexts, YMap):
        for key, value in contexts.items():
            if isinstance(value, str):
                contexts[key] = resolve_path(value, directory, home)


def _rebase_env_files(service: YMap, directory: Path, home: str | None) -> None:
    """`env_file` paths are relative to the file that declares them."""
    value = service.get("env_file")
    if isinstance(value, str):
        service["env_file"] = resolve_path(value, directory, home)
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, str):
                value[index] = resolve_path(entry, directory, home)
            elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
                entry["path"] = resolve_path(entry["path"], directory, home)


def rebase_services(services: YMap, directory: Path, home: str | None) -> None:
    for service in services.values():
        if isinstance(service, YMap):
            rebase_service(service, directory, home, default_context=True)


def _string_list(value: Any, loc: Location, key_path: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ComposeFileError(f"{key_path} must be a string or a list of strings", loc.at(key_path))
