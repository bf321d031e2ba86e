"""The plan is the whole instruction set: decide makes every step, apply runs exactly those, warm runs the
subset that only pulls, and each build file is read once per plan. No Docker: observations are doubles; the
executor is replaced by one that records what it was handed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planner.apply import run
from planner.compose.options import ProjectOptions
from planner.engine.observation import DaemonView, KeyedImage, Observation, RegistryView
from planner.keys.store import Store
from planner.plan.decide import Forcing
from planner.plan.model import Plan
from planner.plan.pipeline import Planned, _decided, make_plan
from tests.helpers import write_tree

REGISTRY = "127.0.0.1:5999"

FILES = {
    "compose.yaml": """\
        services:
          api:
            build: ./api
            image: stack/api
          web:
            build: ./web
            image: stack/web
        """,
    "api/Dockerfile": "FROM scratch\nCOPY . /api\n",
    "api/main.txt": "api\n",
    "api/.dockerignore": "*.md\n",
    "web/Dockerfile": "FROM stack/api\nCOPY . /web\n",
    "web/index.txt": "web\n",
    "tool/Dockerfile": "FROM scratch\nCOPY . /tool\n",
    "tool/t.txt": "t\n",
    "planner.yaml": f"""\
        registry: {{url: "{REGISTRY}"}}
        destinations:
          sandbox: {{host: "unix:///nonexistent/sandbox.sock"}}
        artifacts:
          tool:
            context: tool
            output: {{type: local, dest: web/generated}}
        stamps:
          version:
            from: api
            path: web/version.txt
            template: "{{key}}"
        rules:
          - match: web
            destinations: [local, sandbox]
        """,
}


def options(root: Path) -> ProjectOptions:
    return ProjectOptions(environ={"PATH": "/usr/bin", "HOME": str(root)}, cwd=str(root))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "p", FILES)


def planned_with(
    root: Path,
    local: dict[str, str],
    sandbox: dict[str, str],
    registry: set[str],
    shared: set[str] | None = None,
    registry_error: str | None = None,
) -> Planned:
    """A plan for `root` as decide makes it, given what each daemon holds (node -> "present" | "unnamed"),
    which nodes the registry holds, and which this machine knows to be shared (default: all)."""
    offline = make_plan(options(root), None, [], offline=True, store=Store.memory())
    keys = {name: m.key for name, m in offline.manifests.items()}
    refs = {n: f"{REGISTRY}/planner/stack/{n}:{keys[n]}" for n in ("api", "web")}

    def view(name: str, held: dict[str, str]) -> DaemonView:
        images = {}
        for node, state in held.items():
            tags = (f"stack/{node}:latest",) if state == "present" else ()
            images[keys[node]] = KeyedImage(f"sha256:{node}", keys[node], tags)
        return DaemonView(name, images=images)

    observation = Observation(
        daemons={"local": view("local", local), "sandbox": view("sandbox", sandbox)},
        registry=RegistryView(REGISTRY, error=registry_error, present=frozenset(refs[n] for n in registry)),
        shared=frozenset(refs[n] for n in (shared if shared is not None else refs)),
    )
    return _decided(offline.graph, Store.memory(), offline.manifests, observation, refs, Forcing())


def steps_of(plan: Plan) -> dict[str, tuple[str, list[str]]]:
    return {step.id: (step.kind, step.needs) for step in plan.steps}


def images_steps(plan: Plan) -> dict[str, tuple[str, list[str]]]:
    """The steps about images (not the artifact export and the stamp, which these doubles leave stale)."""
    return {k: v for k, v in steps_of(plan).items() if v[0] not in ("export", "stamp")}


def test_a_cold_plan_lists_every_step_with_its_order(project: Path) -> None:
    plan = planned_with(project, {}, {}, set()).plan
    assert steps_of(plan) == {
        "export:tool": ("export", []),
        "build:api": ("build", []),
        "stamp:version": ("stamp", ["build:api"]),  # never names a key whose build failed
        "push:api": ("push", ["build:api"]),  # shared for other sessions
        "build:web": ("build", ["build:api", "export:tool", "stamp:version"]),
        "push:web": ("push", ["build:web"]),
        # dockerd pushes (gzip, by default: it pushes only layers it has not pushed before, without an export),
        # the sandbox pulls (only layers it has not pulled before)
        "transfer:web:sandbox": ("transfer", ["push:web"]),
    }
    transfer = next(s for s in plan.steps if s.id == "transfer:web:sandbox")
    assert (transfer.mode, transfer.fallback, transfer.destination) == ("registry", "tarball", "sandbox")
    assert transfer.ref is not None and transfer.ref.startswith(f"{REGISTRY}/planner/stack/web:")
    push = next(s for s in plan.steps if s.id == "push:web")
    assert (push.method, push.export_with, transfer.export_with) == ("engine", [], [])


def test_an_uncompressed_push_and_the_delivery_read_one_export(project: Path) -> None:
    """compression: none: planner's push reads the session daemon's export, so the new image streams straight
    into the sandbox from the same reading instead of a push then a pull."""
    rules = project / "planner.yaml"
    rules.write_text(rules.read_text().replace(f'url: "{REGISTRY}"', f'url: "{REGISTRY}", compression: none'))
    plan = planned_with(project, {}, {}, set()).plan
    push = next(s for s in plan.steps if s.id == "push:web")
    transfer = next(s for s in plan.steps if s.id == "transfer:web:sandbox")
    assert (transfer.mode, transfer.method, transfer.needs) == ("tarball", "partial", ["build:web"])
    assert (push.method, push.export_with, transfer.export_with) == (
        "layers",
        ["transfer:web:sandbox"],
        ["push:web"],
    )
    assert next(s for s in plan.steps if s.id == "push:api").export_with == []  # nothing else reads it


def test_a_key_the_registry_holds_is_pulled_not_pushed_and_waits_for_nothing(project: Path) -> None:
    plan = planned_with(project, {}, {}, {"api", "web"}).plan
    steps = steps_of(plan)
    assert steps["pull:api"] == ("pull", [])
    # after what its build would need: a broken registry copy falls back to building it
    assert steps["pull:web"] == ("pull", ["pull:api", "export:tool", "stamp:version"])
    assert {s.fallback for s in plan.steps if s.kind == "pull"} == {"build"}
    # the sandbox pulls from the registry while the session daemon does
    assert steps["transfer:web:sandbox"] == ("transfer", [])
    assert not [s for s in steps if s.startswith(("push:", "build:"))]


def test_a_present_image_goes_to_the_sandbox_without_a_push_when_the_registry_has_it(project: Path) -> None:
    plan = planned_with(project, {"api": "present", "web": "present"}, {}, {"web"}).plan
    steps = steps_of(plan)
    assert steps["transfer:web:sandbox"] == ("transfer", [])
    assert "push:web" not in steps and "tag:web" not in steps


def test_a_name_lost_at_home_or_in_the_sandbox_is_put_back_and_said(project: Path) -> None:
    planned = planned_with(project, {"api": "present", "web": "unnamed"}, {"web": "unnamed"}, set())
    steps = steps_of(planned.plan)
    assert steps["tag:web"] == ("tag", [])
    assert steps["tag:web:sandbox"] == ("tag", ["tag:web"])
    web = next(n for n in planned.plan.nodes if n.name == "web")
    assert {(t.destination, t.mode) for t in web.transfers} == {("local", "tag"), ("sandbox", "tag")}


def test_nothing_to_do_is_an_empty_step_list(project: Path) -> None:
    planned = planned_with(project, {"api": "present", "web": "present"}, {"web": "present"}, set())
    stamp = project / "web/version.txt"
    stamp.write_text(planned.manifests["api"].key)
    observation = Observation(
        daemons=planned.observation.daemons, registry=planned.observation.registry,
        artifacts={"tool": True}, stamps={"version": True}, shared=planned.observation.shared,
    )  # fmt: skip
    again = _decided(
        planned.graph, Store.memory(), planned.manifests, observation, planned.registry_refs, Forcing()
    )
    assert again.plan.steps == []


def test_an_image_built_here_and_never_shared_is_pushed_by_the_next_plan(project: Path) -> None:
    """A push that failed (registry down) leaves the image unshared: the next plan pushes it, and says so."""
    both = {"api": "present", "web": "present"}
    unshared = planned_with(project, both, {"web": "present"}, set(), shared={"web"})
    assert images_steps(unshared.plan) == {"push:api": ("push", [])}
    api = next(n for n in unshared.plan.nodes if n.name == "api")
    assert [(t.destination, t.mode) for t in api.transfers if t.destination == "registry"] == [
        ("registry", "registry")
    ]
    in_registry = planned_with(project, both, {"web": "present"}, {"api"}, shared={"web"})
    assert images_steps(in_registry.plan) == {}  # another session shared it meanwhile
    down = planned_with(project, both, {"web": "present"}, set(), shared={"web"}, registry_error="refused")
    assert images_steps(down.plan) == {}
    api = next(n for n in down.plan.nodes if n.name == "api")
    assert [(t.destination, t.mode) for t in api.transfers if t.destination == "registry"] == [
        ("registry", "unknown")
    ]


def test_an_unreachable_destination_is_a_step_that_fails_with_the_reason(project: Path) -> None:
    planned = planned_with(project, {"api": "present", "web": "present"}, {}, set())
    daemons = dict(planned.observation.daemons)
    daemons["sandbox"] = DaemonView("sandbox", error="unreachable at unix:///nonexistent/sandbox.sock")
    observation = Observation(daemons=daemons, registry=planned.observation.registry)
    plan = _decided(
        planned.graph, Store.memory(), planned.manifests, observation, planned.registry_refs, Forcing()
    ).plan
    failing = next(s for s in plan.steps if s.id == "transfer:web:sandbox")
    assert failing.mode == "unknown" and "unreachable" in failing.detail


def test_an_offline_plan_comes_from_the_same_decide_and_has_no_steps(project: Path) -> None:
    plan = make_plan(options(project), None, [], offline=True, store=Store.memory()).plan
    assert plan.offline and plan.steps == []
    assert {n.action for n in plan.nodes} == {"unknown"}
    assert all(n.reasons[0].code == "offline" for n in plan.nodes)


def test_apply_runs_exactly_the_plans_steps(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every executor step apply makes is a plan step (same id, phase and dependencies), and none is added."""
    handed: list[Any] = []

    class Recording:
        interrupted = False

        def __init__(self, steps: list[Any], *args: Any, **kwargs: Any) -> None:
            handed.extend(steps)

        def run(self) -> dict[str, Any]:
            return {}

    monkeypatch.setattr(run, "Executor", Recording)
    kinds: set[str] = set()
    several_needs = False
    for planned in (
        planned_with(project, {}, {}, set()),  # cold: builds with several needs, pushes, a delivery
        planned_with(project, {}, {}, {"api", "web"}),  # the registry holds both: pulls
        # api was built here and never shared: pushed; web lost its name: put back, then delivered
        planned_with(project, {"api": "present", "web": "unnamed"}, {}, set(), shared={"web"}),
    ):
        handed.clear()
        run.execute(planned, run.ApplyOptions(quiet=True), Store.memory())
        assert [(s.id, s.phase, s.deps) for s in handed] == [
            (s.id, s.kind, s.needs) for s in planned.plan.steps
        ]
        kinds |= {s.kind for s in planned.plan.steps}
        several_needs |= any(len(s.needs) > 1 for s in planned.plan.steps)
    assert kinds == {"stamp", "export", "build", "pull", "tag", "push", "transfer"}
    assert several_needs


def test_warm_runs_only_the_pulls_the_registry_can_serve(project: Path) -> None:
    from planner.commands.warm import warm_steps

    planned = planned_with(project, {}, {}, {"web"})  # api must be built; web is in the registry
    steps, result = warm_steps(planned, [])
    assert [s.id for s in steps] == ["pull:web", "transfer:web:sandbox"]
    assert sorted(result.pulled) == ["web -> local", "web -> sandbox"]
    assert result.unavailable == ["api -> local"]
    only_sandbox, result = warm_steps(planned, ["sandbox"])
    assert [(s.id, s.needs) for s in only_sandbox] == [("transfer:web:sandbox", [])]
    assert result.pulled == ["web -> sandbox"] and result.unavailable == []


def test_each_build_file_is_read_once_per_plan(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    original = Path.read_text

    def counted(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(str(self.relative_to(project)) if self.is_relative_to(project) else str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    make_plan(options(project), None, [], offline=True, store=Store.memory())
    build_files = sorted(r for r in reads if r.endswith(("Dockerfile", ".dockerignore")))
    assert build_files == ["api/.dockerignore", "api/Dockerfile", "tool/Dockerfile", "web/Dockerfile"]


def test_a_build_the_engine_builder_cannot_drive_is_refused_before_anything_runs(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "p",
        {
            "compose.yaml": """\
                services:
                  app:
                    build:
                      context: ./app
                      additional_contexts: {extra: ./extra}
                """,
            "app/Dockerfile": "FROM scratch\nCOPY --from=extra . /x\n",
            "extra/e.txt": "e\n",
        },
    )
    offline = make_plan(options(root), None, [], offline=True, store=Store.memory())
    observation = Observation(daemons={"local": DaemonView("local")}, registry=None)
    plan = _decided(offline.graph, Store.memory(), offline.manifests, observation, {}, Forcing()).plan
    (node,) = plan.nodes
    problem = [r for r in node.reasons if r.code == "builder-unsupported"]
    assert problem and "additional_contexts" in problem[0].detail
    from planner.base.errors import InputError

    with pytest.raises(InputError) as refused:
        run.refuse_unrunnable(plan)
    assert refused.value.exit_code == 2


def test_services_sharing_one_image_and_build_make_one_build(tmp_path: Path) -> None:
    """One project has 20 services on one locally built image: one build (and one push, one delivery)."""
    services = "\n".join(
        f"  worker{i}:\n    image: stack/app\n    build: ./app\n    command: [run, '{i}']" for i in range(5)
    )
    root = write_tree(
        tmp_path / "p",
        {
            "compose.yaml": f"services:\n{services}\n",
            "app/Dockerfile": "FROM scratch\nCOPY . /app\n",
            "app/a.txt": "a\n",
            "planner.yaml": f"""\
                registry: {{url: "{REGISTRY}"}}
                destinations:
                  sandbox: {{host: "unix:///nonexistent/sandbox.sock"}}
                rules:
                  - match: "*"
                    destinations: [local, sandbox]
                """,
        },
    )
    offline = make_plan(options(root), None, [], offline=True, store=Store.memory())
    keys = {m.key for m in offline.manifests.values()}
    assert len(keys) == 1  # the same inputs: the same key
    refs = {n: f"{REGISTRY}/planner/stack/app:{next(iter(keys))}" for n in offline.manifests}
    observation = Observation(
        daemons={"local": DaemonView("local"), "sandbox": DaemonView("sandbox")},
        registry=RegistryView(REGISTRY),
    )
    plan = _decided(offline.graph, Store.memory(), offline.manifests, observation, refs, Forcing()).plan
    assert steps_of(plan) == {
        "build:worker0": ("build", []),
        "push:worker0": ("push", ["build:worker0"]),
        "transfer:worker0:sandbox": ("transfer", ["push:worker0"]),
    }
    build = next(s for s in plan.steps if s.kind == "build")
    assert build.serves == ["worker1", "worker2", "worker3", "worker4"]


def test_the_summary_counts_one_build_for_services_sharing_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#13: three services on one image and build said "3 nodes: 3 build" while apply runs one build step."""
    from io import StringIO

    from planner.cli.render import apply_summary, print_plan_table

    services = "\n".join(f"  worker{i}:\n    image: stack/app\n    build: ./app" for i in range(3))
    files = {"compose.yaml": f"services:\n{services}\n  solo:\n    build: ./app\n"}
    root = write_tree(
        tmp_path / "p", {**files, "app/Dockerfile": "FROM scratch\nCOPY . /app\n", "app/a": "a\n"}
    )
    offline = make_plan(options(root), None, [], offline=True, store=Store.memory())
    observation = Observation(daemons={"local": DaemonView("local")}, registry=None)
    planned = _decided(offline.graph, Store.memory(), offline.manifests, observation, {}, Forcing())
    plan = planned.plan
    assert [s.id for s in plan.steps if s.kind == "build"] == ["build:solo", "build:worker0"]
    assert plan.summary == {"build": 2, "same-image": 2}  # solo has its own image name: a build of its own
    print_plan_table(plan)
    summary_line = next(line for line in capsys.readouterr().out.splitlines() if " nodes in " in line)
    assert summary_line == "4 nodes in 1 levels: 2 build, 2 on another node's image (made once)"
    out = StringIO()
    apply_summary(run.ApplyResult(planned, {}, interrupted=False, warnings=[]), out)
    assert out.getvalue().startswith("planner apply: p: 2 build, 2 on another node's image (made once);")


def test_the_plan_table_fits_120_columns_and_says_how_a_build_is_shared(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#12: the table was ~160 columns wide and showed the share push as `registry:registry`."""
    from planner.cli.render import print_plan_table

    print_plan_table(planned_with(project, {}, {}, set()).plan)  # not a terminal: the default width
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 120, printed
    table = printed.split("apply runs")[0]
    assert "shared by push" in table and "registry:" not in table.replace("sandbox: registry", ""), table


@pytest.mark.parametrize(
    ("context", "dockerfile", "ignore", "method", "fallback", "refused"),
    [
        ("tar", "FROM scratch\nCOPY . /ctx/\n", "**\n!hello.txt\n", "classic", None, False),
        ("tar", "FROM scratch\nCOPY . /ctx/\n", "Dockerfile\n", "classic", None, False),
        ("tar", "FROM scratch\nCOPY . /ctx/\n", "other.txt\n", None, None, False),  # the Dockerfile is sent
        ("tar", "FROM busybox\nRUN --mount=type=cache,target=/c true\nCOPY . /ctx/\n", "Dockerfile\n", None, None, True),
        ("tar", "FROM scratch\nARG TARGETARCH\nCOPY . /ctx/\n", "Dockerfile\n", None, None, True),
        ("session", "FROM scratch\nCOPY . /ctx/\n", "Dockerfile\n", None, "classic", False),
        ("session", "FROM busybox\nRUN --mount=type=cache,target=/c true\n", "Dockerfile\n", None, None, False),
        ("session", "FROM scratch\nCOPY . /ctx/\n", "other.txt\n", None, None, False),
    ],
)  # fmt: skip
def test_an_injected_dockerfile_over_a_tar_takes_the_classic_builder_or_is_refused(
    tmp_path: Path,
    context: str,
    dockerfile: str,
    ignore: str,
    method: str | None,
    fallback: str | None,
    refused: bool,
) -> None:
    """Issue #12 item 5: BuildKit over a context tar shows an injected Dockerfile to `COPY .`; `docker build`
    never does. The plan routes such a build to the classic builder (`method: classic` with `builder.context:
    tar`, `fallback: classic` for a session that the daemon may not open), or refuses it at plan time when the
    Dockerfile needs BuildKit; apply's build request follows the step."""
    root = write_tree(
        tmp_path / "p",
        {
            "compose.yaml": "services:\n  app:\n    build: ./app\n    image: stack/app\n",
            "app/Dockerfile": dockerfile,
            "app/.dockerignore": ignore,
            "app/hello.txt": "h\n",
            "app/other.txt": "o\n",
            "planner.yaml": f"builder: {{context: {context}}}\n",
        },
    )
    offline = make_plan(options(root), None, [], offline=True, store=Store.memory())
    observation = Observation(daemons={"local": DaemonView("local")}, registry=None)
    planned = _decided(offline.graph, Store.memory(), offline.manifests, observation, {}, Forcing())
    (node,) = planned.plan.nodes
    problems = [r.detail for r in node.reasons if r.code == "builder-unsupported"]
    (step,) = [s for s in planned.plan.steps if s.kind == "build"]
    assert (step.method, step.fallback) == (method, fallback)
    assert ("classic builder" in step.detail) == (method == "classic")
    assert bool(problems) == refused
    if refused:
        assert "would show it to COPY" in problems[0] and "context: session" in problems[0]
        from planner.base.errors import InputError

        with pytest.raises(InputError) as stopped:
            run.refuse_unrunnable(planned.plan)
        assert stopped.value.exit_code == 2 and stopped.value.hint is None
        return
    from planner.apply.steps import ApplyContext, _route, build_request

    ctx = ApplyContext(
        graph=planned.graph, manifests=planned.manifests, engines=None,  # type: ignore[arg-type]
        builder=None, store=Store.memory(),  # type: ignore[arg-type]
    )  # fmt: skip
    request = build_request(ctx, planned.graph.nodes["app"], ["stack/app"], {}, _route(step))
    assert (request.classic, request.classic_fallback) == (method == "classic", fallback == "classic")
    assert (request.dockerfile_text is not None) == (ignore != "other.txt\n")
