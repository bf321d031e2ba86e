"""Names and text forms that both sides of the engine use: the plan's model and the engine adapters (a daemon's
name, a path in a message) import them from here, so neither imports the other for a constant."""

from __future__ import annotations

LOCAL = "local"  # the session daemon: where planner builds, and a destination by default


def printable(text: str) -> str:
    """`text` with the bytes of a non-UTF-8 file name (held as surrogates, os.fsdecode's surrogateescape)
    shown as Python's backslash escapes (`caf\\xe9.txt`): the form every output and JSON document uses."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text
