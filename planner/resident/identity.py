"""What must be the same in the client and the server for a forked run to be the run the client would make.

The client's own process: its user (checked by the socket's peer credentials), its groups (a user just added
to the `docker` group reaches the daemon only from a new login), its interpreter, where planner and the
packages it imports are found (sys.path, less the client's own first entry: its script's folder), the
filesystem encoding, and the locale variables the interpreter read as it started (a run that differs only in
those goes on in-process). The server's code: every planner source file and C extension, and every folder on
sys.path, by lstat signature (a changed source, a rebuilt extension, or a package installed or removed in
site-packages, changes one), taken when the server started and again for each request. Stdlib only: the client
imports it."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs 4 ms to import
if TYPE_CHECKING:
    from typing import Any


def of_this_process() -> dict[str, Any]:
    """This process, as the client and the server compare it."""
    import planner

    return {
        "executable": os.path.realpath(sys.executable),
        "package": os.path.dirname(os.path.abspath(planner.__file__)),
        "path": search_path(),
        "groups": sorted(os.getgroups()),
        "gid": os.getgid(),
        "fsencoding": sys.getfilesystemencoding(),
        # set at interpreter start from these (text files opened without an encoding, the C locale)
        "locale": [os.environ.get(name) for name in LOCALE_VARIABLES] + [sys.flags.utf8_mode],
    }


LOCALE_VARIABLES = ("LC_ALL", "LC_CTYPE", "LANG", "PYTHONUTF8", "PYTHONIOENCODING")


def search_path() -> list[str]:
    """sys.path without the entry the interpreter put first for the script or `-m` (unless `-P` kept it out)."""
    entries = list(sys.path)
    if entries and not sys.flags.safe_path:
        entries = entries[1:]
    return [os.path.abspath(entry) if entry else entry for entry in entries]


def mismatch(client: dict[str, Any], server: dict[str, Any]) -> str | None:
    """Why a client may not run in this server (None when it may)."""
    for field, what in (
        ("executable", "another interpreter"),
        ("package", "planner from another folder"),
        ("path", "another module search path"),
        ("groups", "other groups"),
        ("gid", "another group"),
        ("fsencoding", "another filesystem encoding"),
        ("locale", "another locale"),
    ):
        if client.get(field) != server.get(field):
            return f"the client runs with {what} than the server"
    return None


def code_stamp() -> tuple[tuple[str, int, int, int], ...]:
    """Signatures of planner's sources and of the folders modules are imported from."""
    import planner

    package = os.path.dirname(os.path.abspath(planner.__file__))
    seen: list[tuple[str, int, int, int]] = []
    for folder, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".py", ".so")):
                seen.append(_signature(os.path.join(folder, name)))
    seen.extend(_signature(entry) for entry in search_path() if entry)
    return tuple(seen)


def _signature(path: str) -> tuple[str, int, int, int]:
    try:
        found = os.stat(path)
    except OSError:
        return (path, -1, -1, -1)
    return (path, found.st_size, found.st_mtime_ns, found.st_ino)
