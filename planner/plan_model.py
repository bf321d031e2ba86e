"""The plan as data: what `planner plan --format json` prints and `apply` executes (schemas/plan.schema.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LOCAL = "local"  # the session daemon: where planner builds, and a destination by default
SHARE = "registry"  # the pseudo-destination of a build pushed for other sessions and CI

Action = Literal["skip", "build", "pull", "unknown"]
TransferMode = Literal["none", "tag", "registry", "tarball", "unknown"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reason(Frozen):
    code: str = Field(description="Stable machine-readable reason, e.g. new, file-changed, upstream-changed")
    detail: str = Field("", description="Human-readable detail: paths, arg names, node names")


class Transfer(Frozen):
    destination: str
    mode: TransferMode
    reason: str = ""


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
    fallback: Literal["tarball", "build"] | None = Field(
        None,
        description="What a failure falls back to: a transfer or push through the registry streams save | load "
        "(rules: auto); a pull whose registry copy is broken builds (and pushes again)",
    )
    ref: str | None = Field(None, description="Registry ref pulled or pushed")
    image: str | None = Field(
        None, description="tag: the image ID that gets the node's names (the one observed)"
    )
    path: str | None = Field(None, description="File or folder written (stamp, artifact export)")
    detail: str = ""


class Plan(Frozen):
    version: Literal[1] = 1
    project: str
    offline: bool
    nodes: list[PlanNode]
    levels: list[list[str]] = Field(description="Nodes that can run together, in order")
    observed: dict[str, str] = Field(
        default_factory=dict,
        description="State of each daemon and of the registry as observed: ok, or the error",
    )
    summary: dict[str, int] = Field(default_factory=dict, description="Counts per action and transfer mode")
    steps: list[PlanStep] = Field(
        default_factory=list,
        description="Every step apply runs, in order, with what each needs first (empty offline)",
    )
