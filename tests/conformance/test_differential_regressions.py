"""Minimal reproductions of the disagreements test_differential.py found between planner and Docker Compose v2.

Each test loads one small project with planner and with the real `docker compose config` (v2.40.3, the oracle),
first pins what the binary does (so a test cannot pass because both sides changed), then asserts that planner
agrees: same success or failure and, on success, the same name, services, images and build fields.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conformance.test_differential import ROOT, Outcome, Scenario, assert_agree, compare
from tests.oracle import require_compose_v2

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module", autouse=True)
def _binary() -> str:
    return require_compose_v2()


def project(
    files: dict[str, str],
    env: dict[str, str] | None = None,
    compose_files: tuple[str, ...] = ("compose.yaml",),
    profiles: tuple[str, ...] = (),
) -> Scenario:
    """A project in ROOT/proj, run from there with `-f` for each of `compose_files`."""
    return Scenario(
        folder="proj",
        files={f"proj/{path}": text for path, text in files.items()},
        env=dict(env or {}),
        cwd="proj",
        compose_files=list(compose_files),
        profiles=list(profiles),
    )


def binary_fails_with(message: str) -> Callable[[Outcome, Outcome, str], None]:
    def check(theirs: Outcome, mine: Outcome, report: str) -> None:
        assert not theirs["ok"] and message in theirs["error"], "the binary changed its mind" + report
        assert_agree(theirs, mine, report)

    return check


def binary_builds(service: str, **fields: object) -> Callable[[Outcome, Outcome, str], None]:
    def check(theirs: Outcome, mine: Outcome, report: str) -> None:
        assert theirs["ok"], "the binary changed its mind" + report
        build = theirs["services"][service]["build"]
        for key, value in fields.items():
            assert build[key] == value, f"the binary changed its mind about {key}" + report
        assert_agree(theirs, mine, report)

    return check


# --- validation the binary does after loading, planner does not -------------------------------------------


@pytest.mark.parametrize(
    "service",
    [
        pytest.param("db: {}", id="empty-service"),
        pytest.param('db:\n    image: ""', id="empty-image"),
        pytest.param("db:\n    image: ${IMAGE}", id="image-interpolated-to-empty"),
    ],
)
def test_service_without_image_or_build_is_rejected(service: str) -> None:
    """Binary: `service "db" has neither an image nor a build context specified`. Planner: accepts."""
    scenario = project({"compose.yaml": f"services:\n  web:\n    build: .\n  {service}\n"})
    compare(scenario, binary_fails_with('service "db" has neither an image nor a build context specified'))


def test_build_reset_by_override_leaves_service_without_image_or_build() -> None:
    scenario = project(
        {
            "compose.yaml": "services:\n  web:\n    build: .\n",
            "override.yaml": "services:\n  web:\n    build: !reset null\n",
        },
        compose_files=("compose.yaml", "override.yaml"),
    )
    compare(scenario, binary_fails_with('service "web" has neither an image nor a build context specified'))


def test_disabled_service_without_image_or_build_is_accepted() -> None:
    """Companion (planner agrees today): the check only covers services enabled by the profiles."""
    scenario = project({"compose.yaml": "services:\n  web:\n    build: .\n  db:\n    profiles: [debug]\n"})
    compare(scenario, binary_builds("web", context=f"{ROOT}/proj"))


def test_dockerfile_and_dockerfile_inline_are_mutually_exclusive() -> None:
    """Binary: `service "web" declares mutualy exclusive dockerfile and dockerfile_inline`. Planner: accepts."""
    scenario = project(
        {
            "compose.yaml": "services:\n  web:\n    build:\n      dockerfile: Dockerfile\n      dockerfile_inline: FROM alpine\n"
        }
    )
    compare(scenario, binary_fails_with("mutualy exclusive dockerfile and dockerfile_inline"))


def test_dockerfile_and_dockerfile_inline_from_different_files_are_mutually_exclusive() -> None:
    scenario = project(
        {
            "compose.yaml": "services:\n  web:\n    build:\n      dockerfile: Dockerfile.dev\n",
            "override.yaml": "services:\n  web:\n    build:\n      dockerfile_inline: FROM alpine\n",
        },
        compose_files=("compose.yaml", "override.yaml"),
    )
    compare(scenario, binary_fails_with("mutualy exclusive dockerfile and dockerfile_inline"))


def test_additional_context_naming_a_service_without_build_is_rejected() -> None:
    """Binary: `service "web" declares non-buildable service "db" as additional contexts base`. Planner: accepts
    (it already rejects unknown and profile-disabled services)."""
    scenario = project(
        {
            "compose.yaml": (
                "services:\n  web:\n    build:\n      context: .\n      additional_contexts:\n"
                "        base: service:db\n  db:\n    image: alpine\n"
            )
        }
    )
    compare(scenario, binary_fails_with('declares non-buildable service "db" as additional contexts base'))


def test_project_name_normalising_to_empty_is_rejected() -> None:
    """Binary: `project name must not be empty` when `name:` is set but normalises to nothing. Planner: falls
    back to the folder name."""
    scenario = project({"compose.yaml": 'name: "_"\nservices:\n  web:\n    image: alpine\n'})
    compare(scenario, binary_fails_with("project name must not be empty"))


def test_project_name_interpolated_to_empty_is_rejected() -> None:
    scenario = project({"compose.yaml": "name: ${NAME}\nservices:\n  web:\n    image: alpine\n"})
    compare(scenario, binary_fails_with("project name must not be empty"))


def test_project_name_written_empty_falls_back_to_the_folder() -> None:
    """Companion (planner agrees today): a literally empty `name:` counts as no name at all."""
    scenario = project({"compose.yaml": 'name: ""\nservices:\n  web:\n    image: alpine\n'})

    def check(theirs: Outcome, mine: Outcome, report: str) -> None:
        assert theirs["ok"] and theirs["name"] == "proj", "the binary changed its mind" + report
        assert_agree(theirs, mine, report)

    compare(scenario, check)


# --- schema validation: per file, before merging; nulls are not "absent" -----------------------------------

NULLABLE_KEYS = [
    "image", "profiles", "build.context", "build.dockerfile", "build.dockerfile_inline", "build.target",
    "build.network", "build.shm_size", "build.no_cache", "build.pull", "build.args", "build.labels", "build.tags",
    "build.platforms", "build.cache_from", "build.cache_to", "build.additional_contexts",
]  # fmt: skip


@pytest.mark.parametrize("key", NULLABLE_KEYS)
def test_explicit_null_is_rejected(key: str) -> None:
    """Binary: `validating compose.yaml: services.web.<key> must be a ...`. Planner: treats null as absent."""
    if key.startswith("build."):
        text = f"services:\n  web:\n    image: alpine\n    build:\n      context: .\n      {key[6:]}: null\n"
        if key == "build.context":
            text = "services:\n  web:\n    image: alpine\n    build:\n      context: null\n"
    else:
        text = f"services:\n  web:\n    build: .\n    {key}: null\n"
    compare(project({"compose.yaml": text}), binary_fails_with(f"services.web.{key} must be a"))


@pytest.mark.parametrize(
    ("invalid", "fix"),
    [
        pytest.param("pull: 0", "pull: true", id="overridden"),
        pytest.param("target: 1", "target: !reset null", id="reset"),
    ],
)
def test_each_file_is_validated_before_merging(invalid: str, fix: str) -> None:
    """Binary: a value of the wrong type is rejected in its own file even when a later file replaces or resets
    it. Planner: validates only the merged result, and accepts."""
    scenario = project(
        {
            "compose.yaml": f"services:\n  web:\n    build:\n      context: .\n      {invalid}\n",
            "override.yaml": f"services:\n  web:\n    build:\n      {fix}\n",
        },
        compose_files=("compose.yaml", "override.yaml"),
    )
    compare(scenario, binary_fails_with("validating"))


@pytest.mark.parametrize("fix", ["shm_size: 1g", "shm_size: !reset null"])
def test_size_units_are_parsed_on_the_merged_project(fix: str) -> None:
    """Binary: `shm_size: 12x` is a string, as the schema each file is checked against allows; its unit is read
    once, on the merged model, so a later file may replace it. Planner: refused the first file."""
    scenario = project(
        {
            "compose.yaml": "services:\n  web:\n    build:\n      context: .\n      shm_size: 12x\n",
            "override.yaml": f"services:\n  web:\n    build:\n      {fix}\n",
        },
        compose_files=("compose.yaml", "override.yaml"),
    )
    compare(scenario, binary_builds("web"))
    alone = project(
        {"compose.yaml": "services:\n  web:\n    build:\n      context: .\n      shm_size: 12x\n"}
    )
    compare(alone, binary_fails_with("invalid suffix: 'x'"))


def test_invalid_service_name_is_rejected() -> None:
    """Binary: `services additional properties 'bad name' not allowed` (names match ^[a-zA-Z0-9._-]+$). Planner:
    accepts."""
    scenario = project({"compose.yaml": 'services:\n  "bad name":\n    image: alpine\n'})
    compare(scenario, binary_fails_with("additional properties 'bad name' not allowed"))


# --- path and default handling ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param('""', id="literal"),
        pytest.param("${CTX}", id="short-form-interpolated"),
        pytest.param("\n      context: ${CTX}\n      target: dev", id="long-form-interpolated"),
    ],
)
def test_empty_context_stays_empty(build: str) -> None:
    """Binary: an empty context (written, or interpolated from an unset variable) stays "" (only a *missing*
    context defaults to "."). Planner: resolves it to the project directory."""
    scenario = project({"compose.yaml": f"services:\n  web:\n    image: alpine\n    build: {build}\n"})
    compare(scenario, binary_builds("web", context=None))


def test_absolute_paths_are_kept_as_written() -> None:
    """Binary: absolute context / additional_contexts paths are not cleaned (trailing `/` and `..` kept; relative
    ones are joined and cleaned). Planner: normalises them."""
    scenario = project(
        {
            "compose.yaml": (
                f"services:\n  web:\n    build:\n      context: {ROOT}/abs/../shared/\n"
                f"      additional_contexts:\n        tools: {ROOT}/abs/\n        src: ./ctx/../src/\n"
            )
        }
    )
    check = binary_builds(
        "web",
        context=f"{ROOT}/abs/../shared/",
        additional_contexts={"tools": f"{ROOT}/abs/", "src": f"{ROOT}/proj/src"},
    )
    compare(scenario, check)


@pytest.mark.parametrize("inline", ['""', "${INLINE}"])
def test_empty_dockerfile_inline_suppresses_the_default_dockerfile(inline: str) -> None:
    """Binary: with `dockerfile_inline` present, even empty, no default `dockerfile: Dockerfile` is added.
    Planner: adds it."""
    scenario = project(
        {
            "compose.yaml": f"services:\n  web:\n    build:\n      context: .\n      dockerfile_inline: {inline}\n"
        }
    )
    compare(scenario, binary_builds("web", dockerfile=None, dockerfile_inline=None))


def test_a_link_inherited_through_extends_that_names_the_service_itself_is_a_cycle() -> None:
    """api extends web, whose `links: [api]` api inherits: api depends on itself, which Compose refuses
    (found by the differential once it generated links)."""
    text = 'services:\n  web:\n    build: "."\n    links: ["api"]\n  api:\n    extends: "web"\n'
    compare(project({"compose.yaml": text}), binary_fails_with("dependency cycle detected: api -> api"))
