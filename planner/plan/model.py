"""The plan as data: what `planner plan --format json` prints and `apply` executes (schemas/plan.schema.json)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from planner.base.names import printable

SHARE = "registry"  # the pseudo-destination of a build pushed for other sessions and CI
SAME_IMAGE = (
    "same-image"  # summary: nodes whose image an earlier node's steps make (same key and image names)
)

Action = Literal["skip", "build", "pull", "unknown"]
TransferMode = Literal["none", "tag", "registry", "tarball", "unknown"]


# A string that may hold a path: escaped when built, so a plan always serializes (and round-trips).
Text = Annotated[str, AfterValidator(printable)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reason(Frozen):
    code: str = Field(description="Stable machine-readable reason, e.g. new, file-changed, upstream-changed")
    detail: Text = Field("", description="Human-readable detail: paths, arg names, node names")


class Transfer(Frozen):
    destination: str
    mode: TransferMode
    reason: Text = ""
    layers: int | None = Field(
        None,
        description="A delivery of an image the session daemon holds: how many of its layers the destination "
        "lacks (what moves); null when not known before the build",
    )
    size: int | None = Field(
        None,
        description="Bytes of those layers (uncompressed, as the daemon counts them); null when not known",
    )


class PlanNode(Frozen):
    name: str
    kind: Literal["image", "artifact"]
    image: str | None = Field(None, description="Image name the node produces (null for artifacts)")
    key: str = Field(description="Content key (xxh3-128 hex) of the node's inputs")
    action: Action
    needs: list[str] = Field(default_factory=list, description="Nodes that must be ready first")
    reasons: list[Reason] = Field(default_factory=list)
    transfers: list[Transfer] = Field(default_factory=list)


StepKind = Literal["build", "export", "pull", "tag", "stamp", "push", "transfer"]


class PlanStep(Frozen):
    """One instruction `apply` carries out as it is written (the executor's step with the same id)."""

    id: str = Field(description="Unique: `<kind>:<node>` or `<kind>:<node>:<destination>`, `stamp:<name>`")
    node: str = Field(description="The node the step serves (a stamp: the node whose identity it carries)")
    kind: StepKind
    needs: list[str] = Field(default_factory=list, description="Step ids that must succeed first")
    destination: str | None = Field(
        None, description="Where the step acts: a daemon name, or `registry` for a push"
    )
    mode: TransferMode | None = Field(
        None, description="transfer: how the image moves (`unknown`: the step fails with `detail`)"
    )
    fallback: Literal["tarball", "build", "classic"] | None = Field(
        None,
        description="What a failure falls back to: a transfer or push through the registry streams save | load "
        "(rules: auto); a pull whose registry copy is broken builds (and pushes again); a build or export takes "
        "the classic builder when the daemon opens no BuildKit session and a context tar will not do (`classic`: "
        "a Dockerfile that is not sent, which COPY would see over a tar; a daemon reached over TCP, which cannot "
        "fetch a tar from this host), where it builds alike; without it such a build is refused, not sent",
    )
    ref: str | None = Field(None, description="Registry ref pulled or pushed")
    method: Literal["layers", "engine", "partial", "classic"] | None = Field(
        None,
        description="push: `layers` (planner uploads the export's layers uncompressed, blob digest = diffID) or "
        "`engine` (dockerd's own push, gzip); tarball transfer: `partial` (the load stream leaves out the layers "
        "the destination holds, the whole stream if its engine rejects that); build or export: `classic` (the "
        "engine's classic builder, `version=1`, where neither a BuildKit session nor a context tar will do: rules "
        "`builder.context: tar` with a Dockerfile that is not sent or a daemon reached over TCP; a daemon reached "
        "over TLS or ssh)",
    )
    serves: list[str] = Field(
        default_factory=list, description="Other nodes this step also makes (same key and image)"
    )
    export_with: list[str] = Field(
        default_factory=list,
        description="Steps that read the same export of the session daemon's image at the same time: one "
        "`docker save` feeds the uncompressed push and the streamed deliveries (a step that starts after the "
        "others began reads its own)",
    )
    image: str | None = Field(
        None, description="tag: the image ID that gets the node's names (the one observed)"
    )
    path: Text | None = Field(None, description="File or folder written (stamp, artifact export)")
    check_bases: list[str] = Field(
        default_factory=list,
        description="build, export, pull (its fallback build): external base images whose ONBUILD triggers were "
        "unknown when planned, so the key assumes they read nothing from the context; apply reads them (pulling "
        "the base if need be) before it builds, and fails the step, building nothing, when one reads the context "
        "(the next plan keys what it reads)",
    )
    detail: Text = ""


GoldenState = Literal["present", "stale", "absent"]


class GoldenChange(Frozen):
    change: Literal["added", "removed", "changed"]
    input: str = Field(description="What kind of input: file, arg, dockerfile, upstream, ...")
    name: Text


class GoldenNode(Frozen):
    name: str
    state: GoldenState = Field(
        description="present: the golden holds the current key; stale: it holds this node with another key; "
        "absent: neither (the first apply of a session started from the golden delivers stale and absent nodes)"
    )
    image: str | None = None
    key: str = Field(description="The node's current key")
    golden_key: str | None = Field(None, description="The key of the node's image in the golden (labelled)")
    changes: list[GoldenChange] = Field(
        default_factory=list, description="stale: the inputs that differ, as `explain` gives them"
    )
    note: Text = ""


class GoldenReport(Frozen):
    destination: str = Field(description="The destination whose daemon starts on clones of this golden")
    path: Text
    version: str = ""
    created: str = Field("", description="When the current version was promoted (ISO 8601, UTC)")
    error: Text | None = None
    nodes: list[GoldenNode] = Field(default_factory=list)


class Plan(Frozen):
    version: Literal[1] = 1
    project: str
    offline: bool
    nodes: list[PlanNode]
    levels: list[list[str]] = Field(description="Nodes that can run together, in order")
    observed: dict[str, Text] = Field(
        default_factory=dict,
        description="State of each daemon and of the registry as observed: ok, or the error",
    )
    summary: dict[str, int] = Field(
        default_factory=dict,
        description="Counts per action and transfer mode, as apply runs them: a node with the same key and image "
        "names as an earlier one counts as `same-image` (the earlier node's steps make its image)",
    )
    steps: list[PlanStep] = Field(
        default_factory=list,
        description="Every step apply runs, in order, with what each needs first (empty offline)",
    )
    goldens: list[GoldenReport] = Field(
        default_factory=list,
        description="Per destination that names a golden data root (rules: destinations.NAME.golden): its age "
        "and which nodes it holds with the current key",
    )
