"""From a merged compose tree to the typed model: canonical forms, type checks, defaults, paths, args, profiles.

This is compose-go's canonical transform + normalization + path resolution for the build-relevant fields. Type
errors name the file, line and key path of the offending value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from planner.base.errors import ComposeFileError, Location
from planner.compose.merge import host_entries, key_value_pairs
from planner.compose.model import BuildConfig, BuildSecret, ComposeProject, Service
from planner.compose.validate import (
    check_env_files,
    check_fields,
    check_references,
    check_specs,
    implicit_dependencies,
    parse_size,
)
from planner.compose.yamltree import YList, YMap, location_in, plain

_STRING_LISTS = ("tags", "platforms", "cache_from", "cache_to")
_KEY_VALUE_MAPS = ("args", "labels", "additional_contexts")
# Build keys Compose accepts that planner carries through to the builder without modelling them further.
_PASSTHROUGH = ("extra_hosts", "isolation", "privileged", "ulimits", "entitlements", "no_cache_filter",
                "provenance", "sbom")  # fmt: skip
_KNOWN_BUILD_KEYS = {
    "context", "dockerfile", "dockerfile_inline", "target", "network", "shm_size", "secrets", "ssh",
    "no_cache", "pull", *_STRING_LISTS, *_KEY_VALUE_MAPS, *_PASSTHROUGH,
}  # fmt: skip
_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
_REMOTE_PREFIXES = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")


def is_remote_context(value: str) -> bool:
    """Contexts Compose leaves untouched: URLs, git remotes, `docker-image://`-style and `service:` references."""
    return "://" in value or value.startswith((*_REMOTE_PREFIXES, "service:"))


def go_string(value: Any) -> str:
    """A YAML scalar as Go's fmt.Sprint renders it (how Compose turns `1`, `true`, `1.5` into strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as fmt.Sprint prints a float64: shortest digits, exponent form when
    the decimal exponent is < -4 or >= 6 (so 1e6 is `1e+06` but 123456.0 is `123456`)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    exact = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exp = exact.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    exponent = len(digits) + exp - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + format(exact, "f")


def _type_error(message: str, container: Any, key: str | int, key_path: str) -> ComposeFileError:
    loc = location_in(container, key) or Location("<unknown>")
    return ComposeFileError(message, loc.at(key_path))


def _expect_str(container: Any, key: str | int, path: str) -> str:
    value = container[key]
    if not isinstance(value, str):
        raise _type_error(f"{path} must be a string", container, key, path)
    return value


def _expect_str_list(container: Any, key: str, path: str) -> list[str]:
    value = container[key]
    if not isinstance(value, list):
        raise _type_error(f"{path} must be a list of strings", container, key, path)
    return [_expect_str(value, i, f"{path}[{i}]") for i in range(len(value))]


def _expect_bool(container: Any, key: str, path: str) -> bool:
    value = container[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _TRUE:
        return True
    if isinstance(value, str) and value in _FALSE:
        return False
    raise _type_error(f"{path} must be a boolean", container, key, path)


def _key_value_map(container: Any, key: str, path: str) -> YMap:
    """A list-or-dict field in map form; every value a scalar (None = key without value)."""
    value = container[key]
    if not isinstance(value, dict | list):
        raise _type_error(f"{path} must be a mapping or a list", container, key, path)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str | int | float | bool):
                raise _type_error(f"{path}[{index}] must be a string", value, index, f"{path}[{index}]")
    pairs = key_value_pairs(value)
    for name, item in pairs.items():
        if isinstance(item, dict | list) or (isinstance(item, float) and not math.isfinite(item)):
            raise _type_error(f"{path}.{name} must be a string, number, boolean or null", pairs, name, path)
    return pairs


def resolve_path(value: str, base: Path | str, home: str | None) -> str:
    """Compose's absContextPath: remote references as written, `~` expanded, relative joined to `base`."""
    if is_remote_context(value):
        return value
    if value.startswith("~") and home is not None:
        return os.path.normpath(os.path.join(home, value[1:].lstrip("/")))  # Go's Join cleans
    if os.path.isabs(value):
        return value  # as written: Compose does not clean absolute paths (`/a/../b/` stays)
    return os.path.normpath(os.path.join(base, value)) if value else value


class ServiceNormalizer:
    """Turns merged service trees into `Service` models."""

    def __init__(
        self, working_dir: Path, environment: Mapping[str, str], home: str | None, final: bool = True
    ) -> None:
        self.working_dir = working_dir
        self.environment = environment
        self.home = home
        # False for the models merged before the last file: Compose checks them against its schema only, so
        # values it reads once, on the last model (size units, platform in build.platforms), are not checked.
        self.final = final

    def resolve_path(self, value: str) -> str:
        return resolve_path(value, self.working_dir, self.home)

    def service(self, name: str, services: YMap) -> Service:
        raw = services[name]
        path = f"services.{name}"
        if raw is None:
            raw = YMap(services.loc_of(name))
        if not isinstance(raw, dict):
            raise _type_error(f"{path} must be a mapping", services, name, path)
        if not _SERVICE_NAME.match(name):
            raise _type_error(f"services additional properties '{name}' not allowed", services, name, path)
        check_fields(name, raw)
        if self.final:
            check_specs(name, raw)
        image = _expect_str(raw, "image", f"{path}.image") if "image" in raw else None
        build = self.build(raw, f"{path}.build") if "build" in raw else None
        if build is not None:
            build = self._platforms(build, raw, path)
        return Service(
            name=name,
            image=image,
            build=build,
            depends_on=self._depends_on(raw, path),
            profiles=_unique(_expect_str_list(raw, "profiles", f"{path}.profiles"))
            if "profiles" in raw
            else [],
            extensions={k: plain(v) for k, v in raw.items() if k.startswith("x-")},
            extension_locations={k: raw.loc_of(k) for k in raw if k.startswith("x-")}
            if isinstance(raw, YMap)
            else {},
            locations=_service_locations(raw),
        )

    def _platforms(self, build: BuildConfig, raw: Any, path: str) -> BuildConfig:
        """What the build gets: `build.platforms`, else the service's `platform`, else DOCKER_DEFAULT_PLATFORM
        (as `docker compose build` does; `config` prints `build.platforms` as written, and so does planner)."""
        platform = raw.get("platform")
        if platform is not None and not isinstance(platform, str):
            raise _type_error(f"{path}.platform must be a string", raw, "platform", f"{path}.platform")
        if self.final and platform and build.platforms and platform not in build.platforms:
            raise _type_error(
                f'service.build.platforms MUST include service.platform "{platform}"',
                raw, "platform", f"{path}.platform",
            )  # fmt: skip
        if build.platforms:
            return build
        default = self.environment.get("DOCKER_DEFAULT_PLATFORM")
        effective = [platform] if platform else [default] if default else []
        if not effective:
            return build
        return build.model_copy(update={"platforms": effective, "declared_platforms": []})

    def _depends_on(self, raw: Any, path: str) -> list[str]:
        """Declared dependencies, then those Compose adds from links, volumes_from and `service:` modes."""
        value = raw.get("depends_on")
        if value is None:
            declared: list[str] = []
        elif isinstance(value, list):
            declared = [_expect_str(value, i, f"{path}.depends_on[{i}]") for i in range(len(value))]
        elif isinstance(value, dict):
            declared = list(value)
        else:
            raise _type_error(f"{path}.depends_on must be a list or a mapping", raw, "depends_on", path)
        return _unique([*declared, *implicit_dependencies(raw)])

    def build(self, service: Any, path: str) -> BuildConfig:
        raw = service["build"]
        if isinstance(raw, str):
            return BuildConfig(context=self.resolve_path(raw))
        if raw is None:
            raise _type_error(f"{path} must be a string or a mapping", service, "build", path)
        if not isinstance(raw, dict):
            raise _type_error(f"{path} must be a string or a mapping", service, "build", path)
        for key in raw:
            if key not in _KNOWN_BUILD_KEYS and not key.startswith("x-"):
                raise _type_error(
                    f"{path}: additional property {key} is not allowed", raw, key, f"{path}.{key}"
                )
        fields: dict[str, Any] = {}

        def optional_str(key: str) -> str | None:
            """Absent is None; a present key must hold a string (null included: Compose rejects it)."""
            return _expect_str(raw, key, f"{path}.{key}") if key in raw else None

        context = optional_str("context")
        fields["context"] = self.resolve_path("." if context is None else context)  # "" stays ""
        fields["dockerfile_inline"] = optional_str("dockerfile_inline")
        dockerfile = optional_str("dockerfile")
        neither = dockerfile is None and fields["dockerfile_inline"] is None
        fields["dockerfile"] = "Dockerfile" if neither else dockerfile
        fields["target"] = optional_str("target")
        fields["network"] = optional_str("network")
        for key in _STRING_LISTS:
            if key in raw:
                fields[key] = _expect_str_list(raw, key, f"{path}.{key}")
        if "tags" in fields:
            fields["tags"] = _unique(fields["tags"])
        if "args" in raw:
            fields["args"] = self._args(_key_value_map(raw, "args", f"{path}.args"))
        if "labels" in raw:
            labels = _key_value_map(raw, "labels", f"{path}.labels")
            fields["labels"] = {k: "" if v is None else go_string(v) for k, v in labels.items()}
        if "additional_contexts" in raw:
            contexts = _key_value_map(raw, "additional_contexts", f"{path}.additional_contexts")
            fields["additional_contexts"] = {
                k: self.resolve_path("" if v is None else go_string(v)) for k, v in contexts.items()
            }
        if "shm_size" in raw:
            fields["shm_size"] = self._shm_size(raw, path)
        for key in ("no_cache", "pull"):
            if key in raw:
                fields[key] = _expect_bool(raw, key, f"{path}.{key}")
        if raw.get("secrets") is not None:
            fields["secrets"] = self._secrets(raw, path)
        if raw.get("ssh") is not None:
            fields["ssh"] = self._ssh(raw, path)
        fields["extensions"] = {k: plain(raw[k]) for k in raw if k.startswith("x-") or k in _PASSTHROUGH}
        if isinstance(raw.get("extra_hosts"), dict | list):  # Compose prints `host=ip` entries, sorted
            fields["extensions"]["extra_hosts"] = sorted(host_entries(raw["extra_hosts"]))
        return BuildConfig(**fields)

    def _args(self, pairs: YMap) -> dict[str, str]:
        """Args in map form; a key without value takes the environment's value, or is dropped when unset."""
        args: dict[str, str] = {}
        for key, value in pairs.items():
            if value is None:
                if key in self.environment:
                    args[key] = self.environment[key]
            else:
                args[key] = go_string(value)
        return args

    def _shm_size(self, raw: Any, path: str) -> int:
        value = raw["shm_size"]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            parsed = parse_size(value)
            if parsed is not None:
                return parsed
            if not self.final:  # a string, as the schema allows; its unit is read on the last model
                return 0
        # Compose's wording: `'services[web].build.shm_size' invalid size: ''`
        shown = path.replace("services.", "services[", 1).replace(".build", "].build", 1)
        raise _type_error(f"'{shown}.shm_size' invalid size: '{value}'", raw, "shm_size", path)

    def _secrets(self, raw: Any, path: str) -> list[BuildSecret]:
        value = raw["secrets"]
        if not isinstance(value, list):
            raise _type_error(f"{path}.secrets must be a list", raw, "secrets", path)
        secrets = []
        for index, item in enumerate(value):
            where = f"{path}.secrets[{index}]"
            if isinstance(item, str):
                secrets.append(BuildSecret(source=item))
            elif isinstance(item, dict) and isinstance(item.get("source"), str):
                extra = set(item) - {"source", "target", "uid", "gid", "mode"}
                if extra:
                    raise _type_error(f"{where}: additional property {sorted(extra)[0]} is not allowed",
                                      value, index, where)  # fmt: skip
                secrets.append(BuildSecret(**{k: go_string(v) for k, v in item.items() if v is not None}))
            else:
                raise _type_error(
                    f"{where} must be a secret name or a mapping with source", value, index, where
                )
        return secrets

    def _ssh(self, raw: Any, path: str) -> list[str]:
        pairs = _key_value_map(raw, "ssh", f"{path}.ssh")
        keys = []
        for key, value in pairs.items():
            keys.append(key if value is None else f"{key}={self.resolve_path(go_string(value))}")
        return keys


def _unique(items: list[str]) -> list[str]:
    """Compose keeps one of each entry of some lists (tags, profiles), at its first position."""
    return list(dict.fromkeys(items))


def is_enabled(service: Service, profiles: tuple[str, ...]) -> bool:
    return not service.profiles or "*" in profiles or any(p in profiles for p in service.profiles)


def _services_of(model: YMap) -> YMap:
    raw_services = model.get("services")
    if raw_services is None:
        return YMap(model.loc)
    if not isinstance(raw_services, YMap):
        raise _type_error("services must be a mapping", model, "services", "services")
    return raw_services


def normalize_services(
    model: YMap, working_dir: Path, environment: Mapping[str, str], home: str | None, final: bool = True
) -> dict[str, Service]:
    """Every service of a (merged) model as typed models; type errors raise with file:line. Compose validates
    after each file is merged in, so the loader calls this per file as well (`final` false but for the last)."""
    raw_services = _services_of(model)
    normalizer = ServiceNormalizer(working_dir, environment, home, final)
    return {n: normalizer.service(n, raw_services) for n in raw_services}


def build_project(
    model: YMap,
    services: dict[str, Service],
    name: str,
    working_dir: Path,
    config_files: list[str],
    profiles: tuple[str, ...],
    environment: Mapping[str, str],
) -> ComposeProject:
    """The project from the merged model and its normalized services: profiles and consistency checks."""
    raw_services = _services_of(model)
    enabled = {n: s for n, s in services.items() if is_enabled(s, profiles)}
    for svc_name, svc in enabled.items():
        where = location_in(raw_services, svc_name) or model.loc
        if not svc.image and svc.build is None:
            raise ComposeFileError(
                f'service "{svc_name}" has neither an image nor a build context specified',
                where.at(f"services.{svc_name}"),
            )
        if svc.build is not None and svc.build.dockerfile and svc.build.dockerfile_inline:
            raise ComposeFileError(
                f'service "{svc_name}" declares mutualy exclusive dockerfile and dockerfile_inline',  # sic, Compose's
                _build_location(raw_services[svc_name], "dockerfile_inline", model.loc).at(
                    f"services.{svc_name}.build"
                ),
            )
    for svc_name in enabled:
        raw_service = raw_services[svc_name]
        if isinstance(raw_service, dict):
            where = location_in(raw_services, svc_name) or model.loc
            check_env_files(svc_name, raw_service, working_dir, where)
            check_references(svc_name, raw_service, model, where)
    for svc_name, svc in enabled.items():
        for dep in svc.depends_on:
            if dep in enabled or not _required_dependency(raw_services[svc_name], dep):
                continue
            field = _dependency_field(raw_services[svc_name], dep)
            loc = location_in(raw_services[svc_name], field) or model.loc
            if dep in services:
                message = (f'service "{svc_name}" depends on service "{dep}", which is disabled: enable one of '
                           f"its profiles {services[dep].profiles}")  # fmt: skip
            else:
                message = f'service "{svc_name}" depends on undefined service "{dep}"'
            raise ComposeFileError(message, loc.at(f"services.{svc_name}.{field}"))
    cycle = _dependency_cycle({name: svc.depends_on for name, svc in enabled.items()})
    if cycle is not None:
        first, second = cycle[0], cycle[1]
        field = _dependency_field(raw_services[first], second)
        loc = location_in(raw_services[first], field) or model.loc
        raise ComposeFileError(
            "dependency cycle detected: " + " -> ".join(cycle), loc.at(f"services.{first}.{field}")
        )
    for svc_name, svc in enabled.items():
        for context_name, value in (svc.build.additional_contexts if svc.build else {}).items():
            target = value.removeprefix("service:")
            if value.startswith("service:") and target in enabled and enabled[target].build is None:
                raise ComposeFileError(
                    f'service "{svc_name}" declares non-buildable service "{target}" as additional contexts '
                    f"{context_name}",
                    _build_location(raw_services[svc_name], "additional_contexts", model.loc).at(
                        f"services.{svc_name}.build.additional_contexts.{context_name}"
                    ),
                )
            if value.startswith("service:") and target not in enabled:
                raise ComposeFileError(
                    f'service "{svc_name}" declares unknown service "{target}" as additional context '
                    f"{context_name}" + (" (disabled by its profiles)" if target in services else ""),
                    _build_location(raw_services[svc_name], "additional_contexts", model.loc).at(
                        f"services.{svc_name}.build.additional_contexts.{context_name}"
                    ),
                )
    return ComposeProject(
        name=name,
        working_dir=str(working_dir),
        config_files=config_files,
        profiles=list(profiles),
        services=enabled,
        extensions={k: plain(v) for k, v in model.items() if k.startswith("x-")},
        environment=dict(environment),
    )


def _service_locations(raw: Any) -> dict[str, Location]:
    """Where a service's image, build, context and tags were written (for checks after loading)."""
    found: dict[str, Location] = {}
    if not isinstance(raw, YMap):
        return found
    for key in ("image", "build"):
        if key in raw:
            found[key] = raw.loc_of(key)
    build = raw.get("build")
    if isinstance(build, YMap):
        if "context" in build:
            found["build.context"] = build.loc_of("context")
        tags = build.get("tags")
        if isinstance(tags, YList):
            for index in range(len(tags)):
                found[f"build.tags.{index}"] = tags.loc_of(index)
    return found


def _build_location(raw_service: Any, key: str, default: Location) -> Location:
    build = raw_service.get("build") if isinstance(raw_service, dict) else None
    return location_in(build, key) or location_in(raw_service, "build") or default


def _dependency_field(raw_service: Any, dep: str) -> str:
    """The field that makes `dep` a dependency: `depends_on`, else the first implicit one naming it."""
    if not isinstance(raw_service, dict):
        return "depends_on"
    declared = raw_service.get("depends_on")
    if isinstance(declared, dict | list) and dep in declared:
        return "depends_on"
    for key in ("links", "volumes_from", "network_mode", "ipc", "pid"):
        if key in raw_service and dep in implicit_dependencies({key: raw_service[key]}):
            return key
    return "depends_on"


def _required_dependency(raw_service: Any, dep: str) -> bool:
    value = raw_service.get("depends_on") if isinstance(raw_service, dict) else None
    if isinstance(value, dict) and isinstance(value.get(dep), dict):
        return value[dep].get("required", True) is not False
    return True


def _dependency_cycle(depends: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle among the enabled services (`a -> b -> a`, a self-link `a -> a` too), as Compose
    refuses it; None when there is none. Services are visited in file order, so the one reported is stable."""
    done: set[str] = set()
    for start, first in depends.items():
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(first)]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
                finished = path.pop()
                done.add(finished)
                on_path.discard(finished)
                continue
            if dep in on_path:
                return [*path[path.index(dep) :], dep]
            if dep in done or dep not in depends:
                continue
            path.append(dep)
            on_path.add(dep)
            stack.append(iter(depends[dep]))
    return None
