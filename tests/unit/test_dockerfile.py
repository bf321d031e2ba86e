"""Dockerfile analysis: stages, ARG substitution in FROM, and every reference to an image outside the file."""

from __future__ import annotations

import string
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.build.dockerfile import DockerfileInfo, buildkit_only, expand, instructions, parse_dockerfile


def parse(text: str, args: dict[str, str] | None = None) -> DockerfileInfo:
    return parse_dockerfile(dedent(text).lstrip("\n"), args or {})


def refs(info: DockerfileInfo) -> list[tuple[str, str]]:
    return [(r.ref, r.via) for r in info.image_refs]


# --- stages ------------------------------------------------------------------------------------------


def test_stages_have_index_name_base_and_line() -> None:
    info = parse(
        """
        FROM golang:1.22 AS build
        RUN go build

        FROM scratch
        COPY --from=build /out /out
        FROM build AS test
        """
    )
    assert [(s.index, s.name, s.base, s.line) for s in info.stages] == [
        (0, "build", "golang:1.22", 1),
        (1, None, "scratch", 4),
        (2, "test", "build", 6),
    ]
    assert info.stage_names() == ["build", "test"]
    assert refs(info) == [("golang:1.22", "FROM")]  # scratch and the `build` stage are not images
    assert info.image_refs[0].stage == "build"


def test_unnamed_stage_refers_by_index() -> None:
    info = parse("FROM alpine\nFROM debian\n")
    assert [(r.ref, r.stage) for r in info.image_refs] == [("alpine", "0"), ("debian", "1")]


def test_stage_names_are_case_insensitive() -> None:
    info = parse(
        """
        FROM alpine AS Builder
        FROM BUILDER AS second
        COPY --from=builder /a /a
        COPY --from=BuIlDeR /b /b
        RUN --mount=type=bind,from=SECOND,target=/s true
        """
    )
    assert info.stage_names() == ["builder", "second"]
    assert refs(info) == [("alpine", "FROM")]


def test_a_stage_named_like_an_image_is_not_the_image_before_it_is_declared() -> None:
    # `FROM api AS api`: the base is the image `api` (the stage does not exist yet); later references are the stage.
    info = parse(
        """
        FROM api AS api
        FROM scratch
        COPY --from=api /x /x
        """
    )
    assert refs(info) == [("api", "FROM")]


def test_copy_from_a_stage_declared_later_is_still_the_stage() -> None:
    # BuildKit registers every stage before resolving --from (a FROM only sees the stages above it).
    info = parse(
        """
        FROM scratch AS first
        COPY --from=later /x /x
        COPY --from=2 /y /y
        FROM later AS middle
        FROM scratch AS later
        """
    )
    assert refs(info) == [("later", "FROM")]


def test_scratch_is_not_an_image_in_any_case() -> None:
    info = parse("FROM SCRATCH\nCOPY --from=Scratch /a /a\n")
    assert info.image_refs == []
    assert info.stages[0].base == "SCRATCH"


# --- ARG before FROM ----------------------------------------------------------------------------------


def test_global_args_defaults_are_substituted_into_from() -> None:
    info = parse(
        """
        ARG REGISTRY=registry.local:5000
        ARG NAME=base
        ARG TAG=1.0
        FROM ${REGISTRY}/$NAME:${TAG}
        """
    )
    assert refs(info) == [("registry.local:5000/base:1.0", "FROM")]


def test_build_args_override_defaults_only_for_declared_args() -> None:
    text = """
        ARG TAG=1.0
        FROM app:${TAG}
        FROM other:${UNDECLARED}
        """
    info = parse(text, {"TAG": "2.0", "UNDECLARED": "x"})
    assert refs(info) == [("app:2.0", "FROM"), ("other:", "FROM")]


def test_arg_without_default_takes_the_build_arg_or_stays_empty() -> None:
    text = "ARG IMAGE\nFROM ${IMAGE:-fallback}\n"
    assert refs(parse(text)) == [("fallback", "FROM")]
    assert refs(parse(text, {"IMAGE": "chosen"})) == [("chosen", "FROM")]


def test_default_can_refer_to_an_earlier_arg() -> None:
    info = parse("ARG A=one\nARG B=${A}-two\nFROM img:$B\n")
    assert refs(info) == [("img:one-two", "FROM")]


def test_from_uses_only_global_args_not_stage_args() -> None:
    info = parse(
        """
        ARG V=global
        FROM a:$V
        ARG V=stage
        FROM b:$V
        """
    )
    assert refs(info) == [("a:global", "FROM"), ("b:global", "FROM")]


def test_platform_args_are_predefined_in_the_global_scope() -> None:
    info = parse("FROM --platform=$BUILDPLATFORM tool-$TARGETARCH AS t\n")
    assert refs(info) == [("tool-amd64", "FROM")]


def test_expand_forms() -> None:
    variables = {"SET": "v", "EMPTY": ""}
    cases = {
        "$SET": "v",
        "${SET}": "v",
        "${UNSET}": "",
        "${SET:-d}": "v",
        "${EMPTY:-d}": "d",
        "${UNSET:-d}": "d",
        "${EMPTY-d}": "",
        "${UNSET-d}": "d",
        "${SET:+alt}": "alt",
        "${EMPTY:+alt}": "",
        "${EMPTY+alt}": "alt",
        "${UNSET+alt}": "",
        "${UNSET:-${SET}x}": "vx",
        "a\\$SET": "a$SET",
        "cost$": "cost$",
    }
    for word, expected in cases.items():
        assert expand(word, variables) == expected, word


# --- references outside the file -------------------------------------------------------------------


def test_copy_from_image_stage_and_index() -> None:
    info = parse(
        """
        FROM scratch AS base
        COPY --from=base /a /a
        COPY --from=0 /b /b
        COPY --from=tools:1.2 /c /c
        COPY --chown=1:1 --from=registry.local/lib /d /d
        COPY --from=7 /f /f
        """
    )
    # index 7 is no stage of this file: BuildKit would reject it; we keep it as a (useless) image reference
    assert refs(info) == [
        ("tools:1.2", "COPY --from"),
        ("registry.local/lib", "COPY --from"),
        ("7", "COPY --from"),
    ]
    assert [r.line for r in info.image_refs] == [4, 5, 6]
    assert {r.stage for r in info.image_refs} == {"base"}


def test_copy_from_expands_args() -> None:
    info = parse("ARG LIB=lib:3\nFROM scratch\nARG LIB\nCOPY --from=$LIB /a /a\n")
    assert refs(info) == [("lib:3", "COPY --from")]


def test_run_mount_from() -> None:
    info = parse(
        """
        FROM scratch AS src
        FROM scratch
        RUN --mount=type=bind,from=src,target=/src \\
            --mount=type=cache,target=/root/.cache \\
            --mount=type=bind,source=/x,FROM=cache-image:2,target=/y \\
            --network=none true
        RUN --mount=from=plain true
        """
    )
    assert refs(info) == [("cache-image:2", "RUN --mount"), ("plain", "RUN --mount")]
    assert [r.line for r in info.image_refs] == [3, 7]


def test_copy_without_from_and_other_instructions_add_nothing() -> None:
    info = parse(
        """
        FROM scratch
        COPY a b
        ENV FROM=x
        LABEL from=label
        RUN echo --from=x
        """
    )
    assert info.image_refs == []


# --- the lexer: heredocs, escape directive, continuations, case ------------------------------------


def test_heredoc_bodies_are_not_instructions() -> None:
    info = parse(
        """
        FROM scratch
        RUN <<EOF
        FROM evil
        COPY --from=evil2 / /
        EOF
        COPY <<-"END" /etc/x
        \tFROM evil3
        \tEND
        RUN cat <<A <<'B'
        FROM evil4
        A
        FROM evil5
        B
        FROM good
        """
    )
    assert len(info.stages) == 2
    assert refs(info) == [("good", "FROM")]
    assert info.image_refs[0].line == 14


def test_escape_directive_backtick() -> None:
    info = parse(
        """
        # escape=`
        FROM scratch
        COPY --from=a:1 `
          C:\\src C:\\dst
        RUN --mount=from=b:2,target=/x `
            echo \\
        FROM c:3
        """
    )
    assert refs(info) == [("a:1", "COPY --from"), ("b:2", "RUN --mount"), ("c:3", "FROM")]


def test_directives_end_at_the_first_non_directive_line() -> None:
    # `escape` after a comment, a blank line or an unknown directive is an ordinary comment (BuildKit).
    for prefix in ("# a comment\n", "\n", "# unknown=1\n"):
        steps = list(instructions(prefix + "# escape=`\nFROM a `\n  AS b\n"))
        assert [s.keyword for s in steps] == ["FROM", "AS"], prefix
    steps = list(
        instructions("# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM a `\n  AS b\n")
    )
    assert [(s.keyword, s.args) for s in steps] == [("FROM", "a AS b")]


def test_line_continuations_skip_comment_and_blank_lines() -> None:
    text = "FROM scratch\nCOPY \\\n  # a comment inside\n\n  --from=img:1 \\\n    # another\n  /a /b\nFROM next\n"
    steps = list(instructions(text))
    assert [(s.keyword, s.args, s.line) for s in steps] == [
        ("FROM", "scratch", 1),
        ("COPY", "--from=img:1 /a /b", 2),
        ("FROM", "next", 8),
    ]
    assert refs(parse_dockerfile(text, {})) == [("img:1", "COPY --from"), ("next", "FROM")]


def test_a_continuation_at_the_end_of_the_file() -> None:
    assert [(s.keyword, s.args) for s in instructions("FROM a \\\n")] == [("FROM", "a")]


def test_lower_case_instructions_and_flags() -> None:
    info = parse(
        """
        from alpine as one
        copy --FROM=lib:1 /a /a
        run --MOUNT=type=bind,from=lib:2,target=/x true
        from ONE
        """
    )
    assert info.stage_names() == ["one"]
    assert refs(info) == [("alpine", "FROM"), ("lib:1", "COPY --from"), ("lib:2", "RUN --mount")]


def test_comments_and_blank_lines_are_skipped_with_correct_line_numbers() -> None:
    text = "\n# c\n   # indented comment\nFROM a\n\n\nFROM b\n"
    assert [(s.keyword, s.line) for s in instructions(text)] == [("FROM", 4), ("FROM", 7)]


# --- properties ------------------------------------------------------------------------------------

_name = st.text(string.ascii_lowercase, min_size=1, max_size=6).filter(lambda n: n not in {"as", "scratch"})


def _cased(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flags: "".join(c.upper() if f else c for c, f in zip(name, flags, strict=True))
    )


@st.composite
def _dockerfiles(draw: st.DrawFn) -> tuple[str, set[str]]:
    """A Dockerfile whose stages all have names; references use any casing of stage names or image names."""
    stage_names = draw(st.lists(_name, min_size=1, max_size=5, unique=True))
    images = draw(st.lists(_name.map(lambda n: "img-" + n), max_size=4, unique=True))
    lines: list[str] = []
    for index, stage in enumerate(stage_names):
        earlier = stage_names[:index]
        base = draw(
            st.sampled_from(["scratch", *images, *earlier]) if images or earlier else st.just("scratch")
        )
        if base in earlier:
            base = draw(_cased(base))
        lines.append(f"FROM {base} AS {draw(_cased(stage))}")
        for _ in range(draw(st.integers(0, 3))):
            target = draw(
                st.sampled_from([*stage_names, *images]) if images else st.sampled_from(stage_names)
            )
            if target in stage_names:
                target = draw(_cased(target))
            if draw(st.booleans()):
                lines.append(f"COPY --from={target} /src /dst")
            else:
                lines.append(f"RUN --mount=type=bind,from={target},target=/m true")
    return "\n".join(lines) + "\n", set(stage_names)


@given(_dockerfiles())
def test_stage_names_never_appear_in_image_refs(case: tuple[str, set[str]]) -> None:
    text, stage_names = case
    info = parse_dockerfile(text, {})
    assert set(info.stage_names()) == stage_names
    assert not {r.ref.lower() for r in info.image_refs} & stage_names
    assert all(r.ref.startswith("img-") for r in info.image_refs)


@given(
    st.lists(st.sampled_from(["FROM x", "COPY --from=y a b", "ARG A=1", "# c", "", "RUN true"]), max_size=8),
    st.sampled_from(["\\", "`"]),
)
def test_continuations_join_exactly_the_lines_they_should(parts: list[str], escape: str) -> None:
    """Splitting every instruction over lines with the escape character gives the same instructions."""
    directive = "# escape=`\n" if escape == "`" else ""
    flat = directive + "\n".join(parts) + "\nFROM end\n"
    split_lines = []
    for part in parts:
        words = part.split(" ")
        if part.startswith("#") or not part or len(words) == 1:
            split_lines.append(part)
        else:
            split_lines.append(f" {escape}\n   # comment\n\n  ".join(words))
    split = directive + "\n".join(split_lines) + "\nFROM end\n"
    assert [(s.keyword, s.args) for s in instructions(flat)] == [
        (s.keyword, s.args) for s in instructions(split)
    ]
    assert refs(parse_dockerfile(flat, {})) == refs(parse_dockerfile(split, {}))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("FROM scratch\nCOPY . /ctx/\n", None),
        ("FROM a AS b\nCOPY --from=b --chown=1:1 x y\nADD --chown=2 u v\nRUN echo $HOME\n", None),
        ("FROM --platform=linux/amd64 a\nARG V=1\nLABEL v=$V\n", None),
        (
            "# syntax=docker/dockerfile:1\nFROM a\n",
            "line 1: `# syntax=docker/dockerfile:1` (another frontend)",
        ),
        ("FROM a\nRUN --mount=type=cache,target=/c true\n", "line 2: RUN --mount"),
        ("FROM a\nRUN --network=none true\n", "line 2: RUN --network"),
        ("FROM a\nCOPY --chmod=755 x y\n", "line 2: COPY --chmod"),
        ("FROM a\nCOPY --link x y\n", "line 2: COPY --link"),
        ("FROM a\nADD --checksum=sha256:0 u v\n", "line 2: ADD --checksum"),
        ("FROM a\nRUN <<EOF\necho hi\nEOF\n", "line 2: a heredoc in RUN"),
        ("FROM a\nARG TARGETARCH\n", "line 2: the platform ARG TARGETARCH"),
        ("FROM --platform=$BUILDPLATFORM a\n", "line 1: the platform ARG BUILDPLATFORM"),
        ("FROM a\nONBUILD RUN --mount=type=bind true\n", "line 2: RUN --mount"),
    ],
)
def test_buildkit_only_names_what_the_classic_builder_would_build_otherwise(
    text: str, found: str | None
) -> None:
    assert buildkit_only(text) == found
