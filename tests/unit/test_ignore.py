""".dockerignore reading and matching, checked against moby/patternmatcher's rules and, differentially, docker-py.

moby/patternmatcher (with BuildKit's ignore-file reader) is the reference: it is what `docker build` applies.
docker-py's `docker.utils.build` is a Python port of an older moby; where the two differ, the cases are listed in
`KNOWN_DIFFERENCES` with the reason taken from patternmatcher.go, and the random generators stay clear of them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from docker.utils.build import PatternMatcher as DockerPyMatcher
from docker.utils.build import exclude_paths
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.base.errors import InputError
from planner.build.dockerignore import (
    PatternMatcher,
    go_clean,
    ignore_file_for,
    load_matcher,
    read_dockerignore,
)


def matcher(*lines: str) -> PatternMatcher:
    return PatternMatcher.from_lines(read_dockerignore("\n".join(lines)))


# --- reading ---------------------------------------------------------------------------------------


def test_comments_only_at_column_zero() -> None:
    assert read_dockerignore("# comment\n  # not a comment\n#also\nkeep\n") == ["# not a comment", "keep"]
    assert matcher("  # x").excluded("# x")


def test_lines_are_trimmed_and_blank_lines_dropped() -> None:
    assert read_dockerignore("  a  \n\n\t\nb\t\n   \n") == ["a", "b"]


def test_exceptions_keep_the_bang_and_are_trimmed_and_cleaned() -> None:
    assert read_dockerignore("! a \n!/b/./c/\n!  ./d//e") == ["!a", "!b/c", "!d/e"]


def test_leading_slash_is_dropped_but_not_a_lone_slash() -> None:
    assert read_dockerignore("/abs\n//two\n/\n") == ["abs", "two", "/"]


def test_patterns_are_cleaned_like_go_filepath_clean() -> None:
    assert read_dockerignore("a/../b\n./c/\nd/e/..\nx//y/./z\n../up\n.") == [
        "b",
        "c",
        "d",
        "x/y/z",
        "../up",
        ".",
    ]


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [("", "."), ("a/b/", "a/b"), ("/../a", "/a"), ("a/../..", ".."), ("//a//b", "/a/b"), ("./", ".")],
)
def test_go_clean(path: str, cleaned: str) -> None:
    assert go_clean(path) == cleaned


def test_utf8_bom_is_dropped_on_the_first_line_only() -> None:
    assert read_dockerignore("\ufeffa\n\ufeffb\n") == ["a", "\ufeffb"]
    assert read_dockerignore("\ufeff# comment\nc") == ["c"]


def test_lines_split_at_newline_only() -> None:
    # bufio.ScanLines drops a trailing \r, but a lone \r (or \f, \v ...) does not end a line.
    assert read_dockerignore("a\r\nb\r\nc\rd\n") == ["a", "b", "c\rd"]


@pytest.mark.parametrize("line", ["!", "! ", "!/", "!/."])
def test_a_lone_bang_is_an_error(line: str) -> None:
    # patternmatcher.New cleans "!/" to "!" before it looks at the bang (docker-py silently drops these)
    with pytest.raises(InputError, match='illegal exclusion pattern: "!"'):
        matcher("ok", line)


def test_a_malformed_class_is_an_error_naming_the_file() -> None:
    with pytest.raises(InputError, match=r"ctx/\.dockerignore: bad pattern"):
        PatternMatcher.from_lines(["[a"], "ctx/.dockerignore")


# --- matching --------------------------------------------------------------------------------------


def check(m: PatternMatcher, excluded: list[str], included: list[str]) -> None:
    assert [p for p in excluded if not m.excluded(p)] == [], "should be excluded"
    assert [p for p in included if m.excluded(p)] == [], "should be included"


def test_star_stays_within_one_segment() -> None:
    check(matcher("*.log"), ["a.log", ".log", "a.log/inner"], ["d/a.log", "a.log.txt"])
    check(matcher("*/a.log"), ["d/a.log", "d/a.log/x"], ["a.log", "d/e/a.log"])
    check(matcher("*"), ["a", "a/b/c", ".hidden"], [])


def test_question_mark_is_one_character_but_not_a_slash() -> None:
    check(matcher("?.txt"), ["a.txt", "b.txt/x"], ["ab.txt", ".txt", "d/a.txt"])
    check(matcher("a?b"), ["axb"], ["a/b", "ab"])


@pytest.mark.parametrize(
    ("pattern", "excluded", "included"),
    [
        ("**", ["a", "a/b/c"], []),
        ("**/*.log", ["a.log", "x/a.log", "x/y/a.log"], ["a.txt", "x/a.txt"]),
        ("**/cache", ["cache", "a/cache", "a/b/cache/file"], ["mycache", "cache2"]),
        ("x/**", ["x/a", "x/a/b"], ["x", "xy", "y/x/a"]),
        ("x/**/y", ["x/y", "x/a/y", "x/a/b/y", "x/a/y/z"], ["x", "y", "x/ay"]),
        ("x/**/*.go", ["x/a.go", "x/a/b.go"], ["a.go", "x/a.gox"]),
        ("a**", ["a", "abc", "a/b"], ["ba"]),
        # `**` first and not followed by `/` is patternmatcher's suffix fast path: a plain string suffix
        ("**foo", ["foo", "xfoo", "a/xfoo"], ["foox"]),
    ],
)
def test_double_star_in_every_position(pattern: str, excluded: list[str], included: list[str]) -> None:
    check(matcher(pattern), excluded, included)


def test_character_classes() -> None:
    check(matcher("[ab].txt"), ["a.txt", "b.txt"], ["c.txt", "ab.txt"])
    check(matcher("f[0-9]"), ["f0", "f9"], ["fa", "f10"])
    check(matcher("[^a]x"), ["bx", "cx"], ["ax"])  # Go regexp syntax: ^ negates
    check(matcher("[!a]x"), ["!x", "ax"], ["bx"])  # ... and ! does not (it is a member)


def test_escapes() -> None:
    check(matcher("\\*.txt"), ["*.txt"], ["a.txt"])
    check(matcher("a\\?"), ["a?"], ["ab"])
    check(matcher("\\[x\\]"), ["[x]"], ["x"])
    # an escape in a pattern without wildcards still compiles to a regexp (not an exact string compare)
    check(matcher("a\\_b"), ["a_b"], ["a\\_b"])
    # ... Go's regexp escapes then: `\a` is BEL and `\b` a word boundary, as in Python's re
    check(matcher("x\\a"), ["x\a"], ["xa"])


def test_regexp_specials_are_literal() -> None:
    check(matcher("a+b.(c)|{d}$"), ["a+b.(c)|{d}$"], ["aab.(c)|{d}$", "a+bx(c)|{d}$"])


def test_matches_of_parent_directories() -> None:
    check(matcher("build"), ["build", "build/a", "build/a/b"], ["builder", "x/build"])
    check(matcher("a/b"), ["a/b", "a/b/c/d"], ["a/bc", "x/a/b", "a"])


def test_last_match_wins_with_exceptions() -> None:
    check(matcher("*.md", "!README.md"), ["a.md", "x.md/y"], ["README.md", "docs/x.md"])
    check(matcher("*.md", "!README.md", "README*"), ["README.md", "README.txt"], ["x.txt"])
    check(matcher("docs", "!docs/keep.txt"), ["docs", "docs/other", "docs/sub/keep.txt"], ["docs/keep.txt"])
    # an exception re-includes through a parent match too
    check(matcher("*", "!src"), ["other", "other/x"], ["src", "src/a/b"])
    check(matcher("*", "!src", "src/tmp"), ["src/tmp", "src/tmp/x"], ["src/main"])
    # an exception before any exclusion has nothing to undo
    check(matcher("!keep", "*"), ["keep", "x"], [])


def test_newlines_in_names_follow_go_regexp() -> None:
    # Go's `$` only matches at the very end and its `.` does not match "\n"; `[^/]` does.
    check(matcher("a?"), ["a\n"], ["ab\n"])
    check(matcher("a*/**"), ["ab/cd"], ["ab/c\nd"])


# --- the context walk: descend_into / would_send ----------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "directory", "expected"),
    [
        (["a"], "a", False),  # no exception at all
        (["a", "!a/b/c"], "a", True),
        (["a", "!a/b/c"], "a/b", True),
        (["a", "!a/b/c"], "a/b/c", True),  # the exception names the folder itself
        (["a", "!a/b/c"], "a/x", False),
        (["a", "!a/b/c"], "b", False),
        (["a", "!ab/c"], "a", False),  # a prefix of the text, but not of its segments
        (["*", "!*/keep"], "anything", False),  # the text must start with the folder: wildcards do not count
        (["*", "!a/**"], "a", True),
        (["*", "!a/**"], "b", False),
        (["*", "!a"], "a", True),
    ],
)
def test_descend_into(lines: list[str], directory: str, expected: bool) -> None:
    assert matcher(*lines).descend_into(directory) is expected


def test_would_send_skips_folders_the_walk_does_not_enter() -> None:
    m = matcher("a", "!a/b/c", "x", "!*/keep")
    candidates = ["a/b/c", "a/b/c/d", "x/keep", "a/b/d", "a", "a/b"]
    assert [p for p in candidates if m.would_send(p)] == ["a/b/c", "a/b/c/d"]
    # x/keep matches an exception, but x is never entered
    assert m.excluded("a/b")
    assert not m.excluded("x/keep")
    m = matcher("*", "!src", "src/tmp")
    assert [p for p in ["src", "src/a", "src/tmp", "src/tmp/x", "other"] if m.would_send(p)] == [
        "src",
        "src/a",
    ]


# --- which ignore file ------------------------------------------------------------------------------


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    dockerfile = tmp_path / "sub" / "Dockerfile.web"
    assert ignore_file_for(tmp_path, dockerfile) is None
    (tmp_path / ".dockerignore").write_text("from-context\n")
    assert ignore_file_for(tmp_path, dockerfile) == tmp_path / ".dockerignore"
    assert ignore_file_for(tmp_path, None) == tmp_path / ".dockerignore"
    (tmp_path / "sub" / "Dockerfile.web.dockerignore").write_text("from-dockerfile\n")
    assert ignore_file_for(tmp_path, dockerfile) == tmp_path / "sub" / "Dockerfile.web.dockerignore"

    m = load_matcher(tmp_path, dockerfile, extra=["extra"])
    check(m, ["from-dockerfile", "extra"], ["from-context"])
    check(load_matcher(tmp_path, None), ["from-context"], ["from-dockerfile"])


def test_load_matcher_without_a_file_uses_only_the_extra_patterns(tmp_path: Path) -> None:
    check(load_matcher(tmp_path, None, ["*.tmp"]), ["a.tmp"], ["a.txt"])
    assert load_matcher(tmp_path, None).patterns == []


# --- docker-py, differentially ---------------------------------------------------------------------

# (patterns, path, moby's answer, docker-py's answer, why they differ)
KNOWN_DIFFERENCES = [
    (["**/b"], "a/x/b/c", True, False,
     "moby's MatchesOrParentMatches tries every parent; docker-py ports the deprecated Matches, which tries only "
     "the parent with as many segments as the pattern"),
    (["**foo"], "xfoo", True, False,
     "patternmatcher compiles a leading `**` to a plain suffix match; docker-py uses the regexp `(.*/)?foo`"),
    (["*.TXT"], "a.txt", False, True, "docker-py lower-cases pattern and path; moby is case-sensitive on Linux"),
    (["\\*"], "*", True, False, "moby treats `\\` as an escape; docker-py's fnmatch has no escapes"),
    (["[!a]x"], "bx", False, True, "moby passes `[...]` to Go's regexp (negation is `^`); docker-py maps `!` to `^`"),
    (["../a"], "a", False, True, "Go's filepath.Clean keeps a leading `..`; docker-py drops it"),
]  # fmt: skip


@pytest.mark.parametrize(("patterns", "path", "moby", "docker_py", "why"), KNOWN_DIFFERENCES)
def test_known_differences_from_docker_py(
    patterns: list[str], path: str, moby: bool, docker_py: bool, why: str
) -> None:
    assert matcher(*patterns).excluded(path) is moby, why
    # if docker-py ever agrees, the generators below may stop avoiding this case
    assert DockerPyMatcher(list(patterns)).matches(path) is docker_py, why


def test_the_walk_does_not_enter_a_folder_for_a_wildcard_exception(tmp_path: Path) -> None:
    """`a/b` is not excluded by the patterns, but the context walk never enters `a` (no exception's text starts
    with `a/`), so it is not sent: docker-py's walk and ours agree."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_text("")
    m = matcher("a", "!*/b")
    assert not m.excluded("a/b")
    assert not m.would_send("a/b")
    assert exclude_paths(str(tmp_path), ["a", "!*/b"]) == set()


def test_docker_py_enters_a_folder_on_a_bare_text_prefix(tmp_path: Path) -> None:
    """docker-py enters an excluded folder when an exception's text starts with the folder's path; the CLI walk
    (moby's TarWithOptions) compares `pattern + "/"` with `dir + "/"`, so `a*/x.txt` does not open `a`."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("")
    m = matcher("a", "!a*/x.txt")
    assert not m.excluded("a/x.txt")
    assert not m.would_send("a/x.txt")
    assert exclude_paths(str(tmp_path), ["a", "!a*/x.txt"]) == {"a/x.txt"}


_SEGMENTS = ["a", "b", "ab", "c", "x.txt", "y.log", "*", "?", "a*", "*.txt", "[ab]", "[a-c]*", "?b", "."]
_NAMES = ["a", "b", "ab", "c", "x.txt", "y.log", "bb"]
# For the walk with exceptions: no name is a text prefix of another, and no exception segment starts with a
# name unless it is that name (docker-py's bare-prefix check, above, would enter folders the CLI does not).
_PREFIX_FREE_NAMES = ["a", "b", "cd", "x.txt", "y.log"]
_EXCEPTION_SEGMENTS = ["a", "b", "cd", "x.txt", "*", "?", "[ab]", "*.txt", "?d"]


def _pattern(segments: list[str], exception_segments: list[str] | None = None) -> st.SearchStrategy[str]:
    """A pattern of 1-3 segments, sometimes with a leading `/` or `./` or a trailing `/`; with
    `exception_segments`, a third of them are exceptions made of those segments."""

    def decorated(pool: list[str]) -> st.SearchStrategy[str]:
        body = st.lists(st.sampled_from(pool), min_size=1, max_size=3).map("/".join)
        return st.tuples(st.sampled_from(["", "/", "./"]), body, st.sampled_from(["", "/"])).map("".join)

    if exception_segments is None:
        return decorated(segments)
    return st.one_of(decorated(segments), decorated(segments), decorated(exception_segments).map("!".__add__))


def _tree(names: list[str]) -> st.SearchStrategy[tuple[set[str], set[str]]]:
    """Files and folders of a random tree (a file that would be another's folder is dropped)."""

    def paths(files: list[tuple[str, ...]]) -> tuple[set[str], set[str]]:
        kept: list[tuple[str, ...]] = []
        for parts in sorted(set(files), key=len):
            if any(parts[: len(k)] == k for k in kept) or any(k[: len(parts)] == parts for k in kept):
                continue
            kept.append(parts)
        return {"/".join(p) for p in kept}, {"/".join(p[:i]) for p in kept for i in range(1, len(p))}

    one = st.lists(st.sampled_from(names), min_size=1, max_size=4).map(tuple)
    return st.lists(one, min_size=1, max_size=12).map(paths)


def _docker_py_sends(tree: tuple[set[str], set[str]], patterns: list[str]) -> set[str]:
    files, folders = tree
    with tempfile.TemporaryDirectory() as root:
        for folder in sorted(folders):
            os.makedirs(os.path.join(root, folder), exist_ok=True)
        for file in files:
            Path(root, file).write_text("")
        return set(exclude_paths(root, list(patterns)))


@settings(max_examples=150, deadline=None)
@given(_tree(_NAMES), st.lists(_pattern([*_SEGMENTS, "**"]), max_size=5))
def test_same_paths_sent_as_docker_py_without_exceptions(
    tree: tuple[set[str], set[str]], patterns: list[str]
) -> None:
    """On a real tree, docker-py's exclude_paths keeps what we send (`**` included: without exceptions its walk
    tests every folder on the way down, so its one-parent check does not matter)."""
    ours = matcher(*patterns)
    everything = tree[0] | tree[1]
    sent = {p for p in everything if ours.would_send(p)}
    assert sent == {p for p in everything if not ours.excluded(p)}
    assert sent == _docker_py_sends(tree, patterns)


@settings(max_examples=300, deadline=None)
@given(_tree(_NAMES), st.lists(_pattern(_SEGMENTS, [x for x in _SEGMENTS if x != "."]), max_size=6))
def test_same_decisions_as_docker_py_with_exceptions(
    tree: tuple[set[str], set[str]], patterns: list[str]
) -> None:
    """Path by path, with exceptions (no `**`: there docker-py checks only one parent, see KNOWN_DIFFERENCES)."""
    ours = matcher(*patterns)
    theirs = DockerPyMatcher(list(patterns))
    for path in sorted(tree[0] | tree[1]):
        assert ours.excluded(path) == theirs.matches(path), (patterns, path)


def test_exception_after_a_deeper_exclusion_does_not_reinclude_it() -> None:
    """Where docker-py's walk is not Docker's: the docker CLI matches with parent results
    (MatchesUsingParentResults), so with `a/a` then `!a` the folder `a` is sent but `a/a` is not (seen with the
    engine here: `DOCKER_BUILDKIT=0 docker build` of such a tree holds `ctx/a/` only); docker-py sends `a/a`.
    The walk with exceptions is therefore checked against the real engine, in
    tests/integration/test_context_differential.py, not against docker-py."""
    ours = matcher("a/a", "!a")
    assert ours.would_send("a")
    assert not ours.would_send("a/a")
    assert _docker_py_sends(({"a/a"}, {"a"}), ["a/a", "!a"]) == {"a", "a/a"}
