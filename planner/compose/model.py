"""The resolved, build-relevant compose model: what each builder call will receive.

Values are final: interpolated (`$$` already `$`), merged, paths absolute, args resolved from the environment.
`to_config()` renders the `planner config` contract (design.md), shaped like `docker compose config --format json`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planner.base.errors import Location


class BuildSecret(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: str | None = None


class BuildConfig(BaseModel):
    """A service's `build:` section in canonical form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    context: str
    dockerfile: str | None = "Dockerfile"
    dockerfile_inline: str | None = None
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    additional_contexts: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list)
    cache_from: list[str] = Field(default_factory=list)
    cache_to: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    shm_size: int | None = None
    secrets: list[BuildSecret] = Field(default_factory=list)
    ssh: list[str] = Field(default_factory=list)
    no_cache: bool = False
    pull: bool = False
    extensions: dict[str, Any] = Field(default_factory=dict)
    # `build.platforms` as written, when `platforms` holds what the build gets from the service's `platform` or
    # DOCKER_DEFAULT_PLATFORM (`config` prints the former, the build and the key use the latter).
    declared_platforms: list[str] | None = Field(default=None, exclude=True, repr=False)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"context": self.context} if self.context else {}
        )  # "" is omitted, as Compose does
        if self.dockerfile is not None:
            out["dockerfile"] = self.dockerfile
        if self.dockerfile_inline is not None:
            out["dockerfile_inline"] = self.dockerfile_inline
        out["args"] = dict(self.args)
        if self.target is not None:
            out["target"] = self.target
        out["additional_contexts"] = dict(self.additional_contexts)
        out["tags"] = list(self.tags)
        out["platforms"] = list(
            self.platforms if self.declared_platforms is None else self.declared_platforms
        )
        out["cache_from"] = list(self.cache_from)
        out["cache_to"] = list(self.cache_to)
        out["labels"] = dict(self.labels)
        if self.network is not None:
            out["network"] = self.network
        if self.shm_size is not None:
            out["shm_size"] = self.shm_size
        out["secrets"] = [s.model_dump(exclude_none=True) for s in self.secrets]
        out["ssh"] = list(self.ssh)
        out["no_cache"] = self.no_cache
        out["pull"] = self.pull
        out.update(self.extensions)
        return out


class Service(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    image: str | None = None
    build: BuildConfig | None = None
    depends_on: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    extensions: dict[str, Any] = Field(default_factory=dict)
    extension_locations: dict[str, Location] = Field(default_factory=dict, exclude=True, repr=False)
    # where values were written, for errors found after loading: "image", "build", "build.context", "build.tags.N"
    locations: dict[str, Location] = Field(default_factory=dict, exclude=True, repr=False)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.image is not None:
            out["image"] = self.image
        out["build"] = self.build.to_config() if self.build is not None else None
        out["depends_on"] = list(self.depends_on)
        out["profiles"] = list(self.profiles)
        out.update(self.extensions)
        return out


class ComposeProject(BaseModel):
    """Enabled services (after profiles) of one compose project."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    working_dir: str
    config_files: list[str]
    profiles: list[str] = Field(default_factory=list)
    services: dict[str, Service] = Field(default_factory=dict)
    extensions: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)
    warnings: list[str] = Field(
        default_factory=list, exclude=True, repr=False
    )  # printed on stderr when loaded

    def image_name(self, service: str) -> str:
        """The image a service's build produces: `image:` or Compose's default `<project>-<service>`."""
        svc = self.services[service]
        return svc.image if svc.image else f"{self.name}-{service}"

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "services": {name: svc.to_config() for name, svc in sorted(self.services.items())},
        }
        out.update(self.extensions)
        return out
