"""Checks Compose makes on service fields planner does not print, so a stack `docker compose config` refuses is
refused here too, with file:line (messages in Compose's words, measured on v2.40.3).

- explicit nulls where the schema wants a mapping, list or string (every file, every service);
- empty volume and port specs (every service);
- for enabled services: `env_file` entries that do not exist (unless `required: false`), references to
  undefined networks, volumes, secrets, configs and build secrets;
- the implicit dependencies Compose adds to `depends_on`: `links`, `volumes_from`, and `service:NAME` in
  `network_mode`, `ipc` and `pid`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from planner.base import inputs
from planner.base.errors import ComposeFileError, Location
from planner.compose.yamltree import YMap, location_in

# What the schema wants where a null is refused ("must be a array": Compose's words).
NULL_REFUSED = {
    "environment": "mapping", "labels": "mapping", "extra_hosts": "mapping", "healthcheck": "mapping",
    "sysctls": "mapping", "annotations": "mapping", "volumes": "array", "ports": "array", "networks": "array",
    "depends_on": "array", "secrets": "array", "configs": "array", "cap_add": "array", "env_file": "string",
    "dns": "string",
}  # fmt: skip


_RAM = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def parse_size(text: str) -> int | None:
    """docker/go-units RAMInBytes: `1g`, `512m`, `1.5gb`... in binary units."""
    match = _RAM.match(text)
    if not match:
        return None
    number = float(match.group(1)) if match.group(1).count(".") <= 1 else None
    if number is None:
        return None
    unit = (match.group(2) or "").lower()
    multiplier = 1024 ** " kmgtp".index(unit) if unit else 1
    return int(number * multiplier)


def _error(
    message: str, container: Any, key: str | int, key_path: str, default: Location
) -> ComposeFileError:
    return ComposeFileError(message, (location_in(container, key) or default).at(key_path))


def check_fields(name: str, raw: Any) -> None:
    """Nulls, empty volume and port specs: Compose refuses them while parsing, enabled service or not."""
    path = f"services.{name}"
    default = getattr(raw, "loc", Location("<unknown>"))
    for key, kind in NULL_REFUSED.items():
        if key in raw and raw[key] is None:
            raise _error(f"{path}.{key} must be a {kind}", raw, key, f"{path}.{key}", default)
    volumes = raw.get("volumes")
    if isinstance(volumes, list):
        for index, item in enumerate(volumes):
            if isinstance(item, str) and not item.strip():
                raise _error("invalid empty volume spec", volumes, index, f"{path}.volumes[{index}]", default)
    ports = raw.get("ports")
    if isinstance(ports, list):
        for index, item in enumerate(ports):
            if isinstance(item, str) and not item.strip():
                raise _error("invalid proto: ", ports, index, f"{path}.ports[{index}]", default)


def check_specs(name: str, raw: Any) -> None:
    """What Compose refuses when it parses the final model's short volume and port specs and a service's
    `shm_size` (an unset variable leaves `:/app`, `:` or ``): its messages, at the entry's file and line."""
    path = f"services.{name}"
    default = getattr(raw, "loc", Location("<unknown>"))
    volumes = raw.get("volumes")
    for index, item in enumerate(volumes if isinstance(volumes, list) else []):
        problem = volume_spec_problem(item) if isinstance(item, str) and item else None
        if problem is not None:
            raise _error(problem, volumes, index, f"{path}.volumes[{index}]", default)
    ports = raw.get("ports")
    for index, item in enumerate(ports if isinstance(ports, list) else []):
        problem = port_spec_problem(item) if isinstance(item, str) and item.strip() else None
        if problem is not None:
            raise _error(problem, ports, index, f"{path}.ports[{index}]", default)
    size = raw.get("shm_size")
    if isinstance(size, str) and parse_size(size) is None:
        raise _error(f"'services[{name}].shm_size' invalid size: '{size}'", raw, "shm_size", f"{path}.shm_size",
                     default)  # fmt: skip


def volume_spec_problem(spec: str) -> str | None:
    """compose-go's ParseVolume, for its errors only: the spec split at colons (a Windows drive letter kept),
    every section non-empty, at most source, target and options."""
    if len(spec) <= 2:
        return None  # a target of one or two characters
    sections: list[str] = []
    buffer = ""
    for char in spec:
        if char == ":" and len(buffer) == 1 and buffer.isalpha():
            buffer += char  # `c:`: a Windows drive
        elif char == ":":
            if not buffer:
                return f"invalid spec: {spec}: empty section between colons"
            if len(sections) >= 2:
                return f"invalid spec: {spec}: too many colons"
            sections.append(buffer)
            buffer = ""
        else:
            buffer += char
    if not buffer:
        return f"invalid spec: {spec}: empty section between colons"
    return None


def port_spec_problem(spec: str) -> str | None:
    """go-connections' ParsePortSpec, for the protocol only: the container part (after the last colon) must
    name a port, with `/tcp`, `/udp` or `/sctp` if any (`:` or `8080:` leaves none: `invalid proto: `)."""
    container = spec.rsplit(":", 1)[-1]
    port, slash, proto = container.partition("/")
    if not container or not port:
        return "invalid proto: "
    if slash and proto.lower() not in ("tcp", "udp", "sctp"):
        return f"invalid proto: {proto}"
    return None


def implicit_dependencies(raw: Any) -> list[str]:
    """Services Compose adds to `depends_on`: link targets, `volumes_from` services, `service:NAME` modes."""
    found: list[str] = []
    for link in raw.get("links") or []:
        if isinstance(link, str):
            found.append(link.partition(":")[0])
    for source in raw.get("volumes_from") or []:
        if isinstance(source, str) and not source.startswith("container:"):
            found.append(source.partition(":")[0])
    for key in ("network_mode", "ipc", "pid"):
        value = raw.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            found.append(value.removeprefix("service:"))
    return found


def _parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if isinstance(value, str) and value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def check_env_files(name: str, raw: Any, working_dir: Path, default: Location) -> None:
    value = raw.get("env_file")
    entries = [value] if isinstance(value, str | dict) else value if isinstance(value, list) else []
    for entry in entries:
        file, required = entry, True
        if isinstance(entry, dict):
            file = entry.get("path")
            required = _parse_bool(entry.get("required", True)) is not False
        if not isinstance(file, str) or not required:
            continue
        full = file if os.path.isabs(file) else os.path.normpath(os.path.join(working_dir, file))
        if not inputs.exists(full):
            raise _error(
                f"env file {full} not found: stat {full}: no such file or directory",
                raw, "env_file", f"services.{name}.env_file", default,
            )  # fmt: skip


def _named_volume(item: Any) -> str | None:
    if isinstance(item, dict):
        source = item.get("source")
        kind = item.get("type", "volume")
        return source if kind == "volume" and isinstance(source, str) and source else None
    if not isinstance(item, str) or ":" not in item:
        return None
    source = item.split(":", 1)[0]
    if not source or source.startswith((".", "/", "~", "$")) or (len(source) == 1 and source.isalpha()):
        return None
    return source


def check_references(name: str, raw: Any, model: YMap, default: Location) -> None:
    """Networks, volumes, secrets, configs and build secrets a service names must be declared at the top."""
    path = f"services.{name}"

    def declared(section: str) -> Any:
        value = model.get(section)
        return value if isinstance(value, dict) else {}

    networks = raw.get("networks")
    names = list(networks) if isinstance(networks, dict) else networks if isinstance(networks, list) else []
    for network in names:
        if isinstance(network, str) and network != "default" and network not in declared("networks"):
            raise _error(f'service "{name}" refers to undefined network {network}', raw, "networks",
                         f"{path}.networks", default)  # fmt: skip
    for item in raw.get("volumes") or [] if isinstance(raw.get("volumes"), list) else []:
        volume = _named_volume(item)
        if volume is not None and volume not in declared("volumes"):
            raise _error(f'service "{name}" refers to undefined volume {volume}', raw, "volumes",
                         f"{path}.volumes", default)  # fmt: skip
    build = raw.get("build")
    sections = [("secrets", raw, "secret", "secrets"), ("configs", raw, "config", "configs")]
    if isinstance(build, dict):
        sections.append(("secrets", build, "build secret", "build.secrets"))
    for section, holder, what, key_path in sections:
        items = holder.get(section)
        for item in items if isinstance(items, list) else []:
            source = item.get("source") if isinstance(item, dict) else item
            if isinstance(source, str) and source not in declared(section):
                raise _error(f'service "{name}" refers to undefined {what} {source}', holder, section,
                             f"{path}.{key_path}", default)  # fmt: skip
