"""Unit tests for the dotenv reader (planner.compose.envfile).

Every expectation here was checked against docker compose v2.40.3 (tests/conformance has the live oracle),
except the error line numbers, where we deliberately report the true line (see the module docstring).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.base.errors import EnvFileError, InputError, Location
from planner.compose.envfile import parse_env_text, resolve_environment


def parse(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    return parse_env_text(text, ".env", (env or {}).get)


def parse_error(text: str, env: dict[str, str] | None = None) -> EnvFileError:
    with pytest.raises(EnvFileError) as info:
        parse(text, env)
    return info.value


# --- statements ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("K=v", {"K": "v"}),
        ("K=v\n", {"K": "v"}),
        ("K=", {"K": ""}),
        ("K=a=b", {"K": "a=b"}),
        ("K==v", {"K": "=v"}),
        ("K=1\nK=2\n", {"K": "2"}),
        # yaml-style separator; the first `=` or `:` ends the key
        ("K: v", {"K": "v"}),
        ("K:v", {"K": "v"}),
        ("K : v", {"K": "v"}),
        ("K:a=b", {"K": "a=b"}),
        ("URL=http://host:1/p", {"URL": "http://host:1/p"}),
        # export prefix needs whitespace after it
        ("export K=v", {"K": "v"}),
        ("export\tK=v", {"K": "v"}),
        ("export   K : v", {"K": "v"}),
        ("exportK=v", {"exportK": "v"}),
        ("export=v", {"export": "v"}),
        ("export =v", {"": "v"}),
        # whitespace around keys and values
        ("  K  =  v  ", {"K": "v"}),
        ("\tK\t=\tv w\t", {"K": "v w"}),
        ("K=v\r\nL='w'\r\n", {"K": "v", "L": "w"}),
        ("\u3000K=v", {"K": "v"}),
        ("K\xa0=\xa0v\xa0", {"K": "v"}),
        # blank lines and comments
        ("\n\n# comment\n   # indented\nK=v\n\n#K=x", {"K": "v"}),
        ("#only a comment", {}),
        ("", {}),
        # key characters: letters, digits, _ . - [ ] (Unicode letters too); a tab survives inside a key
        ("a.b=1\na-b=2\na[0]=3\n_x=4\n1A=5", {"a.b": "1", "a-b": "2", "a[0]": "3", "_x": "4", "1A": "5"}),
        ("Émile=1", {"Émile": "1"}),
        ("A\tB=1", {"A\tB": "1"}),
        ("=v", {"": "v"}),
        # a last line without separator or newline is the value of the empty key
        ("A=1\nB", {"A": "1", "": "B"}),
        ("A=1\nB C", {"A": "1", "": "B C"}),
    ],
)
def test_statements(text: str, expected: dict[str, str]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # only " #" (space, hash) starts an inline comment on an unquoted value
        ("K=v # c", "v"),
        ("K=v   #c # d", "v"),
        ("K=v#c", "v#c"),
        ("K=v\t#c", "v\t#c"),
        ("K=v\xa0#c", "v\xa0#c"),
        ("K=#c", "#c"),
        ("K= # c", "# c"),
        ("K=a b  c  ", "a b  c"),
        # after a closing quote the rest of the line is a new statement, so a comment is fine there
        ("K='v' # c", "v"),
        ('K="v"#c', "v"),
        ("K='a # b'", "a # b"),
        # quotes only count at the start of a value; backticks never do
        ("K=it's", "it's"),
        ('K=a"b"', 'a"b"'),
        ("K=`cmd`", "`cmd`"),
        # single quotes are literal, except that \' is a quote
        ("K='a $X ${Y} \\n'", "a $X ${Y} \\n"),
        ("K='it\\'s'", "it's"),
        ("K='a\\\\b'", "a\\\\b"),
        ("K='  padded  '", "  padded  "),
        ("K=''", ""),
        # double quotes: \" then the escape table, unknown escapes kept
        ('K="a\\"b"', 'a"b'),
        ('K="\\n\\t\\r\\a\\b\\f\\v"', "\n\t\r\a\b\f\v"),
        ('K="a\\\\b"', "a\\b"),
        ('K="a\\\\"', "a\\"),
        ('K="\\q\\x41\\u0041\\\'"', "\\q\\x41\\u0041\\'"),
        # \0NNN is octal up to 0377; otherwise the \0 is rewritten to \ and kept
        ('K="\\0101\\0377"', "Aÿ"),
        ('K="\\01|\\0|\\0999|\\0400"', "\\1|\\|\\999|\\400"),
        ('K=""', ""),
        # quoted values may span lines
        ('K="a\nb"', "a\nb"),
        ("K='a\n\nb'", "a\n\nb"),
        ('K="a\\nb"', "a\nb"),
    ],
)
def test_values(text: str, expected: str) -> None:
    assert parse(text) == {"K": expected}


def test_text_after_closing_quote_is_a_new_statement() -> None:
    assert parse('A="x" B=2\nC=3') == {"A": "x", "B": "2", "C": "3"}
    assert parse('A="x"y\n', {"y": "from-env"}) == {"A": "x", "y": "from-env"}
    assert parse('A="x"=3') == {"A": "x", "": "3"}
    assert parse('A="a\nb" C=5\nB=1') == {"A": "a\nb", "C": "5", "B": "1"}


def test_bare_key_is_inherited_from_lookup_or_dropped() -> None:
    assert parse("K\nexport L\nM  \n", {"K": "k", "L": "l", "M": "m"}) == {"K": "k", "L": "l", "M": "m"}
    assert parse("K\n", {"K": ""}) == {"K": ""}
    assert parse("K\n") == {}
    # the bare key consults only the lookup, so it does not undo an earlier definition
    assert parse("K=1\nK\n") == {"K": "1"}


# --- interpolation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("x${A}y", "xay"),
        ("$A.$B", "a.b"),
        ("${U:-dflt}", "dflt"),
        ("${E:-dflt}", "dflt"),
        ("${E-dflt}", ""),
        ("${U-dflt}", "dflt"),
        ("${A:+alt}", "alt"),
        ("${U+alt}", ""),
        ("$U", ""),
        ("$$A", "$A"),
        ("a $ b", "a $ b"),
    ],
)
def test_unquoted_and_double_quoted_values_are_interpolated(value: str, expected: str) -> None:
    env = {"A": "a", "B": "b", "E": ""}
    assert parse(f"K={value}", env) == {"K": expected}
    assert parse(f'K="{value}"', env) == {"K": expected}
    assert parse(f"K='{value}'", env) == {"K": value}


def test_dollar_escapes() -> None:
    env = {"X": "x"}
    assert parse('K="\\$X"', env) == {"K": "$X"}
    assert parse('K="\\\\$X"', env) == {"K": "\\x"}
    # no escape processing outside double quotes
    assert parse("K=\\$X", env) == {"K": "\\x"}
    # lookup values are never re-interpolated
    assert parse("K=$X", {"X": "$HOME ${Y}"}) == {"K": "$HOME ${Y}"}


def test_inline_comment_is_cut_before_interpolation() -> None:
    assert parse("K=${U:-a#b}") == {"K": "a#b"}
    error = parse_error("K=${U:-a #b}")
    assert "invalid interpolation format" in error.message


# --- precedence ------------------------------------------------------------------------------------------


def test_lookup_wins_over_earlier_keys_in_the_same_text() -> None:
    # compose-go consults its lookup function first: a process variable shadows the file's own definition
    # in later references, while the key itself keeps the file's value.
    assert parse("P=file\nX=$P\nY=${P:-d}", {"P": "proc"}) == {"P": "file", "X": "proc", "Y": "proc"}
    assert parse("P=file\nX=${P:-d}", {"P": ""}) == {"P": "file", "X": "d"}


def test_earlier_keys_are_used_when_lookup_misses() -> None:
    assert parse("A=1\nX=$A\nA=2\nY=$A") == {"A": "2", "X": "1", "Y": "2"}
    assert parse("X=$A\nA=1") == {"X": "", "A": "1"}
    assert parse("A=\nX=${A-unset}\nY=${A:-empty}") == {"A": "", "X": "", "Y": "empty"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_resolve_environment_process_env_always_wins(tmp_path: Path) -> None:
    env_file = write(tmp_path, ".env", "P=file\nQ=file\nX=$P\n")
    result = resolve_environment([env_file], {"P": "proc", "OTHER": "o"})
    assert result == {"P": "proc", "Q": "file", "X": "proc", "OTHER": "o"}


def test_resolve_environment_later_files_override_and_see_earlier_ones(tmp_path: Path) -> None:
    first = write(tmp_path, "a.env", "A=1\nB=1\nP=first\n")
    second = write(tmp_path, "b.env", "X=$A\nA=2\nY=$A\nZ=$P$B\n")
    assert resolve_environment([first, second], {"P": "proc"}) == {
        "A": "2",
        "B": "1",
        "P": "proc",
        "X": "1",
        "Y": "2",
        "Z": "proc1",
    }
    # order matters
    assert resolve_environment([second, first], {})["A"] == "1"


def test_resolve_environment_bare_key_in_later_file(tmp_path: Path) -> None:
    first = write(tmp_path, "a.env", "A=1\nB=1\n")
    second = write(tmp_path, "b.env", "A=2\nA\nB\nX=$A$B\n")
    assert resolve_environment([first, second], {}) == {"A": "2", "B": "1", "X": "21"}


def test_resolve_environment_without_files_is_the_process_env() -> None:
    assert resolve_environment([], {"A": "1"}) == {"A": "1"}


def test_resolve_environment_skips_bom_and_keeps_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bom.env"
    path.write_bytes(b"\xef\xbb\xbfA=1\nB=\xff\n")
    result = resolve_environment([path], {})
    assert result["A"] == "1"
    assert result["B"].encode("utf-8", "surrogateescape") == b"\xff"


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("A B=1", 1, 'key cannot contain a space: "A B"'),
        ("A=1\n\n  A B=1", 3, 'key cannot contain a space: "A B"'),
        ("A B\n", 1, 'key cannot contain a space: "A B"'),
        ('A="x" B C\n', 1, 'key cannot contain a space: "B C"'),
        ("export export A=1", 1, 'key cannot contain a space: "export A"'),
        ("A$=1", 1, 'unexpected character "$" in variable name "A$=1"'),
        ("# c\nA=1\nK€=1\nB=2", 3, 'unexpected character "€" in variable name "K€=1"'),
        ("A=\"x\ny\"\nB\nC='\n'\nD!=1", 6, 'unexpected character "!" in variable name "D!=1"'),
        ("A=1 #c\nB #c", 2, 'unexpected character "#" in variable name "B #c"'),
        ('"A"=1', 1, 'unexpected character "\\"" in variable name "\\"A\\"=1"'),
        ('A=1\nB="abc\nC=2\n', 2, 'unterminated quoted value "abc'),
        ("A='abc", 1, "unterminated quoted value 'abc"),
        ('A="abc\\"', 1, 'unterminated quoted value "abc\\"'),
        ("A=1\nexport ", 2, "zero length string (nothing after 'export')"),
        ("A=1\nB=${U:?need it}", 2, "required variable U is missing a value: need it"),
        ('A=1\nB="x\n${U:?}"', 2, "required variable U is missing a value"),
        ("B=${U", 1, 'invalid interpolation format: "${U"'),
        # compose-go says line 1 here (its counter skips a bare key followed by a space); we say 2
        ("A \nB$=1", 2, 'unexpected character "$" in variable name "B$=1"'),
    ],
)
def test_errors_carry_file_and_line(text: str, line: int, message: str) -> None:
    error = parse_error(text)
    assert error.message == message
    assert error.location == Location(".env", line)
    assert str(error) == f".env:{line}: {message}"
    assert isinstance(error, InputError)
    assert error.exit_code == 2


def test_single_quoted_values_are_not_interpolated_so_cannot_fail() -> None:
    assert parse("A='${U:?x} ${'") == {"A": "${U:?x} ${"}


def test_resolve_environment_names_the_failing_file(tmp_path: Path) -> None:
    good = write(tmp_path, "good.env", "A=1\n")
    bad = write(tmp_path, "bad.env", "A=1\nB C=2\n")
    with pytest.raises(EnvFileError) as info:
        resolve_environment([good, bad], {})
    assert info.value.location == Location(str(bad), 2)


def test_resolve_environment_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    with pytest.raises(EnvFileError) as info:
        resolve_environment([write(tmp_path, "a.env", "A=1"), missing], {})
    assert info.value.message == f"couldn't find env file: {missing}"
    assert info.value.location == Location(str(missing))


def test_resolve_environment_directory(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError) as info:
        resolve_environment([tmp_path], {})
    assert info.value.message == f"{tmp_path} is a directory"


def test_resolve_environment_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "a.env", "A=1")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(EnvFileError) as info:
        resolve_environment([path], {})
    assert info.value.message == f"couldn't read env file: {path}: Permission denied"
    assert info.value.location == Location(str(path))
