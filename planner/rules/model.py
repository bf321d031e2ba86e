"""Pydantic models of the rules file. The JSON Schema in schemas/rules.schema.json is generated from these.

Per-node rules (`NodeRules`) layer: built-in defaults, then every `rules:` entry whose `match` globs select the
node (in file order), then the node's own inline rules (`images:` / `artifacts:` entries, or `x-planner` in a
compose service). A field left unset (null) at a layer keeps the value from below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TransferMode = Literal["auto", "registry", "tarball"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RegistryRules(Strict):
    """The registry that moves images between daemons and caches builds across sessions."""

    url: str = Field(description="host:port of a Docker registry (HTTP API v2), e.g. 127.0.0.1:5000")
    namespace: str = Field("planner", description="Repository prefix for content-addressed refs")
    insecure: bool = Field(False, description="Plain HTTP (loopback registries are always allowed so)")
    username: str | None = Field(
        None, description="Basic auth user; use ${VAR} to read it from the environment"
    )
    password: str | None = Field(None, description="Basic auth password; use ${VAR}, never a literal")
    compression: Literal["none", "gzip"] | None = Field(
        None,
        description="How pushed layers are stored: gzip (dockerd's push: no export, and a rebuild moves only the "
        "layers dockerd has not pushed before) or none (planner uploads them uncompressed from the session "
        "daemon's export, teed into the deliveries: a faster first push on loopback, but on Engine 20.10 every "
        "push then costs a whole `docker save`, since dockerd never learns those layers); null: gzip",
    )
    share: bool = Field(
        True,
        description="Push every build so other sessions and CI pull it instead of building (content-addressed)",
    )

    def codec(self) -> Literal["none", "gzip"]:
        """The effective compression: as set, else gzip. Uncompressed uploads make a cold push about 1.5x faster
        on loopback, but every later push of a rebuilt image must then read its whole export, where dockerd's
        own push moves only the changed layers (bench/coldstart.py, desktop change: 21.8 s against 9.6 s for
        today's path); a rebuild is what a session does most."""
        return self.compression if self.compression is not None else "gzip"


class BuilderRules(Strict):
    kind: Literal["docker", "buildx"] = Field(
        "docker",
        description="docker: the Engine API builder (embedded default); buildx: `docker buildx build`",
    )
    name: str | None = Field(None, description="buildx builder name (a shared or remote BuildKit)")
    context: Literal["session", "tar"] = Field(
        "session",
        description="docker builder on a local socket: how BuildKit gets the context. session: a BuildKit session "
        "as the docker CLI uses (the Dockerfile apart, never visible to COPY); tar: a tar served on loopback HTTP "
        "(also the automatic fallback when the daemon opens no session); over a tar, a Dockerfile that is not sent "
        "(inline, outside the context, ignored) is built by the classic builder, or refused if it needs BuildKit",
    )


class Destination(Strict):
    host: str = Field(description="Docker host URL, as DOCKER_HOST: unix:///path.sock, tcp://host:port")
    registry: str | None = Field(
        None,
        description="host:port of the registry as this daemon reaches it, when it differs from `registry.url` "
        "(a nested daemon often sees it under another name, e.g. registry:5000)",
    )
    golden: str | None = Field(
        None,
        description="A golden data root (`planner golden promote`) this daemon starts on clones of: `plan` reports "
        "its age and which nodes it holds with the current key",
    )


class HashRules(Strict):
    inputs: list[str] | None = Field(
        None,
        description="Extra files or folders outside the context whose content feeds the key (project-relative)",
    )
    ignore: list[str] | None = Field(
        None, description="Extra .dockerignore-style patterns applied when hashing only (not to the build)"
    )
    env: list[str] | None = Field(None, description="Environment variables whose values feed the key")
    volatile_args: list[str] | None = Field(
        None, description="Build args left out of the key (e.g. a git sha that changes on every commit)"
    )
    narrow: bool | None = Field(
        None,
        description="true (default): the key covers only the context paths the Dockerfile reads (COPY/ADD "
        "sources, RUN --mount=type=bind sources of the stages the target needs); false: the whole context",
    )


class NodeRules(Strict):
    """Rules for one node; each field may be left unset to inherit."""

    hash: HashRules | None = None
    destinations: list[str] | None = Field(
        None, description="Daemons the image must reach; `local` is the session daemon"
    )
    transfer: TransferMode | None = Field(
        None,
        description="How images reach other destinations: `auto` pulls from the registry where it holds the "
        "key (or dockerd pushes there without an export), else streams the session daemon's export (only the "
        "layers the destination lacks), falling back to streaming when a registry step fails; `registry` or "
        "`tarball` only that way",
    )
    always: bool | None = Field(None, description="Never skip: build on every apply")
    skip: bool | None = Field(None, description="Never build (use what exists)")
    depends_on: list[str] | None = Field(
        None, description="Nodes that must be ready first (build-order edges)"
    )
    exclude: list[str] | None = Field(
        None,
        description=".dockerignore-style lines added after the main context's ignore file: what they exclude is "
        "neither sent to the builder nor in the key (a sibling repository built with a temporary ignore file, "
        "e.g. node_modules/, .git/, dist/); unlike hash.ignore, the build cannot read what they leave out",
    )


class RuleSelector(NodeRules):
    match: str | list[str] = Field(description="Node name glob(s) this entry applies to, e.g. 'api-*'")


class BuildTarget(NodeRules):
    """What to build: the fields of a compose `build:` section, paths relative to the project directory."""

    context: str = Field(".", description="Build context folder, relative to the project directory")
    dockerfile: str | None = Field(
        None, description="Dockerfile path relative to the context (default Dockerfile)"
    )
    dockerfile_inline: str | None = None
    args: dict[str, str | None] = Field(
        default_factory=dict, description="Build args; null takes the environment's"
    )
    target: str | None = None
    additional_contexts: dict[str, str] = Field(default_factory=dict)
    platforms: list[str] = Field(default_factory=list)


class ImageTarget(BuildTarget):
    image: str | None = Field(None, description="Image name (default <project>-<name>)")
    tags: list[str] = Field(default_factory=list)


class ArtifactOutput(Strict):
    type: Literal["local", "tar"] = Field(description="local: files into a folder; tar: one tar file")
    dest: str = Field(description="Output path relative to the project directory; must stay inside it")


class ArtifactTarget(BuildTarget):
    output: ArtifactOutput


class Stamp(Strict):
    """A small file written before its consumers build, carrying another node's identity."""

    path: str = Field(description="File to write, relative to the project directory")
    source: str = Field(alias="from", description="The node whose identity the file carries")
    template: str = Field("{key}\n", description="File content; fields: {key}, {short_key}, {image}, {name}")


class Rules(Strict):
    """planner.yaml: what compose does not say about a stack's builds and where its images go."""

    version: Literal[1] = 1
    registry: RegistryRules | None = None
    builder: BuilderRules = Field(default_factory=BuilderRules)
    destinations: dict[str, Destination] = Field(
        default_factory=dict, description="Named daemons besides `local` (the session daemon)"
    )
    images: dict[str, ImageTarget] = Field(default_factory=dict, description="Images not in compose")
    artifacts: dict[str, ArtifactTarget] = Field(default_factory=dict, description="Exported build outputs")
    stamps: dict[str, Stamp] = Field(default_factory=dict)
    rules: list[RuleSelector] = Field(
        default_factory=list, description="Per-node rules selected by name globs"
    )
    secret_args: list[str] = Field(
        default_factory=list, description="More build-arg name globs to mask in every output"
    )


class EffectiveRules(Strict):
    """The resolved per-node rules after layering."""

    inputs: list[str] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    volatile_args: list[str] = Field(default_factory=list)
    narrow: bool = True
    destinations: list[str] = Field(default_factory=lambda: ["local"])
    transfer: TransferMode = "auto"
    always: bool = False
    skip: bool = False
    depends_on: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


def layer(base: EffectiveRules, rules: NodeRules) -> EffectiveRules:
    """Apply one layer of node rules on top of `base`; unset fields keep the base value."""
    update: dict[str, object] = {}
    if rules.hash is not None:
        for name in ("inputs", "ignore", "env", "volatile_args"):
            value = getattr(rules.hash, name)
            if value is not None:
                update[name] = list(value)
        if rules.hash.narrow is not None:
            update["narrow"] = rules.hash.narrow
    for name in ("destinations", "transfer", "always", "skip", "depends_on", "exclude"):
        value = getattr(rules, name)
        if value is not None:
            update[name] = list(value) if isinstance(value, list) else value
    return base.model_copy(update=update)
