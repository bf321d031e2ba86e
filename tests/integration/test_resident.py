"""The resident server (planner/resident/): a run forked from it is the run a one-shot process would make.

Each test runs real `planner` processes against a real server, and counts the runs the server forked, so that a
client that quietly ran in-process instead cannot pass for the server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.commands.shim import install
from tests.helpers import write_tree

REPO = Path(__file__).resolve().parents[2]
COMPOSE = """\
services:
  api:
    build:
      context: ./api
      args:
        FLAVOUR: ${FLAVOUR:-plain}
  web:
    build:
      context: .
      dockerfile: web/Dockerfile
"""
PLAN = ["plan", "--offline", "--format", "json"]


def planner(
    args: list[str], cwd: Path, cache: Path, server: bool = True, **environ: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLANNER_CACHE_DIR": str(cache), **environ}
    if not server:
        env["PLANNER_SERVER"] = "off"
    return subprocess.run(
        [sys.executable, "-m", "planner", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start(
    args: list[str], cwd: Path, cache: Path, server: bool = True, sigint: object = signal.SIG_DFL
) -> subprocess.Popen[str]:
    """`planner args` started, its output piped (as text), with SIGINT as `sigint` says when it starts (the
    test runner may itself be a background job, whose children start with SIGINT ignored)."""
    env = {**os.environ, "PLANNER_CACHE_DIR": str(cache), **({} if server else {"PLANNER_SERVER": "off"})}
    return subprocess.Popen(
        [sys.executable, "-m", "planner", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),  # type: ignore[arg-type]  # noqa: PLW1509
    )


def served(cache: Path) -> int:
    """The runs the cache folder's server forked so far."""
    out = planner(["server", "status"], Path("/"), cache)
    assert out.returncode == 0, out.stdout + out.stderr
    return int(out.stdout.split(", ")[1].split()[0])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "project",
        {
            "compose.yaml": COMPOSE,
            "api/Dockerfile": "FROM scratch\nCOPY . /app\n",
            "api/main.go": "package main\n",
            "web/Dockerfile": "FROM scratch\nCOPY web/ /web\n",
            "web/src/app.js": "console.log(1)\n",
            "docs/readme.md": "not read by any build\n",
        },
    )


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    """A cache folder with a running server (stopped, or killed, at the end)."""
    folder = tmp_path / "cache"
    started = planner(["server", "start", "--idle-timeout", "600"], Path("/"), folder)
    assert started.returncode == 0, started.stdout + started.stderr
    pid = int(started.stdout.split("pid ")[1].rstrip(")\n"))
    yield folder
    planner(["server", "stop"], Path("/"), folder)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def reading(fifo: Path) -> Iterator[None]:
    """Wait until a process opened `fifo` to read (a non-blocking open to write then succeeds), and hold the
    writing end open, writing nothing, so that the reader stays blocked until the end of the block."""
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: no reader yet
            assert time.monotonic() < deadline, "no process reads the FIFO"
            time.sleep(0.02)
    try:
        yield
    finally:
        os.close(fd)


def outcome(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def test_runs_through_the_server_are_one_shot_runs(project: Path, cache: Path, tmp_path: Path) -> None:
    """Each step's exit code, output and errors through the server equal a one-shot process's on its own cache;
    and each plan's keys equal keys computed from scratch (a fresh cache), edits included."""
    alone = tmp_path / "alone"
    steps: list[tuple[str, list[str], dict[str, str]]] = [
        ("plan", PLAN, {}),
        ("again (memo)", PLAN, {}),
        ("table", ["plan", "--offline"], {}),
        ("environment", PLAN, {"FLAVOUR": "spicy"}),
        ("bad option value", ["plan", "--offline", "--format", "yaml"], {}),
        ("unknown node", ["plan", "--offline", "nosuch"], {}),
        ("typer path", ["plan", "--offline", "--format=json", "--", "api"], {}),
        ("help", ["plan", "--help"], {"COLUMNS": "100"}),
        ("version", ["--version"], {}),
    ]
    before = served(cache)
    for name, args, environ in steps:
        through = planner(args, project, cache, **environ)
        one_shot = planner(args, project, alone, server=False, **environ)
        assert outcome(through) == outcome(one_shot), name
    assert served(cache) - before == len(steps)
    # once the project is older than the racy window a plan writes its memo; once the server holds it, the same
    # command is answered from it
    time.sleep(2.1)
    assert outcome(planner(PLAN, project, cache)) == outcome(planner(PLAN, project, alone, server=False))
    before += 1
    deadline = time.monotonic() + 30
    while " 0 memo(s) held" in planner(["server", "status"], Path("/"), cache).stdout:
        assert time.monotonic() < deadline, "the server holds no memo"
        time.sleep(0.05)
    assert outcome(planner(PLAN, project, cache)) == outcome(planner(PLAN, project, alone, server=False))
    before += 1

    edits = [
        ("append", lambda: (project / "api/main.go").open("a").write("// edit\n")),
        ("file added", lambda: (project / "web/src/new.js").write_text("new\n")),
        ("unread file added", lambda: (project / "docs/more.md").write_text("more\n")),
        ("folder renamed", lambda: (project / "web/src").rename(project / "web/lib")),
        ("folder removed", lambda: shutil.rmtree(project / "web/lib")),
        ("compose edited", lambda: (project / "compose.yaml").write_text(COMPOSE.replace("plain", "mild"))),
    ]
    for number, (name, change) in enumerate(edits):
        change()
        through = planner(PLAN, project, cache)
        scratch = planner(PLAN, project, tmp_path / f"scratch{number}", server=False)
        assert through.returncode == 0, through.stderr
        assert through.stdout == scratch.stdout, name
    assert served(cache) - before == len(steps) + len(edits)


def test_a_pipe_reader_sees_the_end_before_the_cache_writes(project: Path, cache: Path) -> None:
    """The child lets go of the client's streams once it has answered (its cache writes come after): a reader
    of its output sees end-of-file, and the client exits with the run's code."""
    process = start(PLAN, project, cache)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert '"nodes"' in out
    assert served(cache) == 1


def test_ctrl_c_reaches_the_run(project: Path, cache: Path, tmp_path: Path) -> None:
    """SIGINT to the client interrupts the forked run as it would interrupt a one-shot process (here blocked
    reading an env file that is a FIFO): exit 130, the same message."""
    fifo = project / "blocking.env"
    os.mkfifo(fifo)
    results = []
    for where, server in ((cache, True), (tmp_path / "alone", False)):
        process = start([*PLAN, "--env-file", str(fifo)], project, where, server)
        with reading(fifo):  # the run is blocked reading the FIFO
            time.sleep(0.3)  # well inside the read, past the open
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        results.append((process.returncode, out, err))
    assert results[0] == results[1]
    assert results[0][0] == 130
    assert served(cache) == 1


def test_an_ignored_ctrl_c_stays_ignored(project: Path, cache: Path, tmp_path: Path) -> None:
    """A client whose interpreter started with SIGINT ignored (nohup, a background job) keeps ignoring it, as a
    one-shot process does: the run goes on (then its client is killed, and so is the run)."""
    fifo = project / "blocking.env"
    os.mkfifo(fifo)
    for where, server in ((cache, True), (tmp_path / "alone", False)):
        process = start([*PLAN, "--env-file", str(fifo)], project, where, server, sigint=signal.SIG_IGN)
        with reading(fifo):
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)
            assert process.poll() is None, "an ignored SIGINT ended the run"
            process.kill()
            process.communicate(timeout=60)
            deadline = time.monotonic() + 30
            while "0 running" not in planner(["server", "status"], Path("/"), cache).stdout:
                assert time.monotonic() < deadline, "the run of a killed client goes on"
                time.sleep(0.1)
    assert served(cache) == 1


def test_a_killed_client_interrupts_its_run(project: Path, cache: Path) -> None:
    fifo = project / "blocking.env"
    os.mkfifo(fifo)
    process = start([*PLAN, "--env-file", str(fifo)], project, cache)
    with reading(fifo):
        process.kill()
        process.wait()
        deadline = time.monotonic() + 30
        while "0 running" not in planner(["server", "status"], Path("/"), cache).stdout:
            assert time.monotonic() < deadline, "the run of a killed client goes on"
            time.sleep(0.1)


def test_runs_at_once(project: Path, cache: Path, tmp_path: Path) -> None:
    processes = [start(PLAN, project, cache) for _ in range(4)]
    expected = planner(PLAN, project, tmp_path / "alone", server=False)
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert (process.returncode, out) == (0, expected.stdout), err
    assert served(cache) == 4


def server_of_a_copy(tmp_path: Path) -> tuple[Path, dict[str, str], subprocess.CompletedProcess[str]]:
    """A server started from a copy of planner's code (which a test may then change): its cache folder, the
    environment that runs the copy, and the start command's outcome."""
    copy = tmp_path / "code"
    shutil.copytree(REPO / "planner", copy / "planner", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    env = {"PYTHONPATH": str(copy)}
    started = planner(["server", "start"], Path("/"), cache, **env)
    assert started.returncode == 0, started.stderr
    return cache, env, started


def change_the_copy(tmp_path: Path) -> None:
    version = tmp_path / "code/planner/__init__.py"
    version.write_text(version.read_text().replace('"0.1.0"', '"0.1.0+changed"'))


def test_a_changed_planner_is_not_served(project: Path, tmp_path: Path) -> None:
    """Planner's code changed since the server started: the server declines and stops, and the run goes on in
    the client's process with the code as it now is."""
    cache, env, _ = server_of_a_copy(tmp_path)
    first = planner(PLAN, project, cache, **env)
    assert first.returncode == 0
    assert served(cache) == 1
    change_the_copy(tmp_path)
    changed = planner(["--version"], project, cache, **env)
    assert (changed.returncode, changed.stdout) == (0, "planner 0.1.0+changed\n")
    deadline = time.monotonic() + 30
    while (cache / "server.sock").exists():
        assert time.monotonic() < deadline, "the server of old code goes on"
        time.sleep(0.05)
    assert planner(["server", "status"], Path("/"), cache).returncode == 1


def test_start_replaces_a_server_of_changed_code(tmp_path: Path) -> None:
    """After an upgrade, `server status` says the old server is stopping (exit 1) and `server start` starts a
    new one in its place, instead of answering that the old one runs."""
    cache, env, started = server_of_a_copy(tmp_path)
    old = int(started.stdout.split("pid ")[1].rstrip(")\n"))
    change_the_copy(tmp_path)
    status = planner(["server", "status", "--format", "json"], Path("/"), cache, **env)
    assert status.returncode == 1, status.stdout + status.stderr
    answer = json.loads(status.stdout)
    assert (answer["serving"], answer["server"]["pid"]) == (False, old)
    assert answer["server"]["stopping"] == "planner's code changed"
    restarted = planner(["server", "start"], Path("/"), cache, **env)
    assert restarted.returncode == 0, restarted.stderr
    new = int(restarted.stdout.split("pid ")[1].rstrip(")\n"))
    try:
        assert new != old
        status = planner(["server", "status", "--format", "json"], Path("/"), cache, **env)
        assert status.returncode == 0 and json.loads(status.stdout)["serving"] is True
        assert served(cache) == 0
    finally:
        planner(["server", "stop"], Path("/"), cache, **env)


def test_the_docker_shim_runs_planner_through_the_server(cache: Path, tmp_path: Path) -> None:
    """A build the docker shim hands to planner is forked from the server too, with the one-shot outcome."""
    project = write_tree(tmp_path / "shimmed", {"compose.yaml": "services:\n  s:\n    build: ./missing\n"})
    shim = install(tmp_path / "bin")

    def build(server: bool) -> tuple[int, str, str]:
        env = {**os.environ, "PLANNER_CACHE_DIR": str(cache), "PLANNER_SERVER": "" if server else "off"}
        done = subprocess.run(
            [str(shim), "compose", "build"], cwd=project, env=env, capture_output=True, text=True, check=False
        )
        return done.returncode, done.stdout, done.stderr

    before = served(cache)
    through = build(server=True)
    assert served(cache) == before + 1
    assert through == build(server=False)
    assert through[0] == 2 and through[2].startswith("planner: ")  # planner's bad-input exit: planner ran


def test_a_dead_servers_socket_is_run_past(project: Path, cache: Path, tmp_path: Path) -> None:
    pid = int(planner(["server", "status"], Path("/"), cache).stdout.split("pid ")[1].split(",")[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert (cache / "server.sock").exists()
    through = planner(PLAN, project, cache)
    assert outcome(through) == outcome(planner(PLAN, project, tmp_path / "alone", server=False))
    restarted = planner(["server", "start"], Path("/"), cache)
    assert restarted.returncode == 0, restarted.stderr
    assert served(cache) == 0


def test_an_idle_server_stops(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    started = planner(["server", "start", "--idle-timeout", "0.5"], Path("/"), cache)
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 30
    while (cache / "server.sock").exists():
        assert time.monotonic() < deadline, "an idle server goes on"
        time.sleep(0.05)
    assert "stopped: idle" in (cache / "server.log").read_text()


def test_bad_options_of_the_server_command(tmp_path: Path) -> None:
    zero = planner(["server", "start", "--idle-timeout", "0"], Path("/"), tmp_path / "cache")
    assert zero.returncode == 2
    assert zero.stderr.strip().splitlines() == ["planner: --idle-timeout must be more than 0 seconds"]
    long = planner(["server", "start"], Path("/"), tmp_path / ("c" * 120))
    assert long.returncode == 2
    assert "longer than 107 bytes" in long.stderr
    assert not (tmp_path / ("c" * 120)).exists()


def test_a_client_of_another_protocol_stops_the_server(cache: Path) -> None:
    """After an upgrade, a client speaking another protocol version reaches the old server: it hangs up and
    stops (the client runs in-process), so that `planner server start` can start one of the new version."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(cache / "server.sock"))
        sock.sendall(b"planner-resident-0\n" + bytes(64))
        with contextlib.suppress(ConnectionResetError):  # hung up with the message unread
            assert sock.recv(16) == b""
    deadline = time.monotonic() + 30
    while (cache / "server.sock").exists():
        assert time.monotonic() < deadline, "the server goes on"
        time.sleep(0.05)
    assert "stopped: a client of another planner version" in (cache / "server.log").read_text()


def test_auto_starts_a_server_for_the_next_runs(project: Path, tmp_path: Path) -> None:
    """PLANNER_SERVER=auto: a run that finds no server runs in-process and starts one in the background; the
    runs after it are served. A value that is not a mode is bad input."""
    cache = tmp_path / "cache"
    first = planner(PLAN, project, cache, PLANNER_SERVER="auto")
    assert first.returncode == 0, first.stderr
    try:
        deadline = time.monotonic() + 60
        while planner(["server", "status"], Path("/"), cache).returncode != 0:
            assert time.monotonic() < deadline, "no server started"
            time.sleep(0.1)
        assert served(cache) == 0
        second = planner(PLAN, project, cache, PLANNER_SERVER="auto")
        assert (second.returncode, second.stdout) == (0, first.stdout)
        assert served(cache) == 1
    finally:
        planner(["server", "stop"], Path("/"), cache)
    bad = planner(PLAN, project, cache, PLANNER_SERVER="yes")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == ["planner: PLANNER_SERVER='yes': expected off, auto or nothing"]


def test_another_locale_runs_in_process(project: Path, cache: Path, tmp_path: Path) -> None:
    """The interpreter reads the locale variables as it starts: a client with other values than the server's
    is declined and runs in-process (same answer, not served)."""
    other = "C" if os.environ.get("LC_ALL") != "C" else "C.UTF-8"
    through = planner(PLAN, project, cache, LC_ALL=other)
    assert outcome(through) == outcome(planner(PLAN, project, tmp_path / "alone", server=False, LC_ALL=other))
    assert served(cache) == 0
    assert (
        "declined: the client runs with another locale than the server" in (cache / "server.log").read_text()
    )


EDITS = st.lists(
    st.tuples(
        st.sampled_from(
            ["append", "new file", "delete", "chmod", "link", "new folder", "rename folder", "age"]
        ),
        st.integers(0, 1000),
    ),
    min_size=3,
    max_size=8,
)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_keys_through_the_server_equal_keys_from_scratch(
    cache: Path, tmp_path: Path, edits: list[tuple[str, int]]
) -> None:
    """Random edits, some within the racy window of the last run and some after it: after each, a plan through
    the server (its held snapshots and memos the starting point) gives the keys a one-shot plan on an empty
    cache gives."""
    import tempfile

    root = Path(tempfile.mkdtemp(dir=tmp_path))
    project = write_tree(
        root / "project",
        {
            "compose.yaml": COMPOSE,
            "api/Dockerfile": "FROM scratch\nCOPY . /app\n",
            "api/a/one.go": "1\n",
            "api/a/two.go": "2\n",
            "api/b/three.go": "3\n",
            "web/Dockerfile": "FROM scratch\nCOPY web/ /web\n",
            "web/src/app.js": "1\n",
            "web/src/lib/x.js": "x\n",
        },
    )
    before = served(cache)
    planner(PLAN, project, cache)
    for number, (kind, pick) in enumerate(edits):
        files = sorted(
            p for p in project.rglob("*") if p.is_file() and p.name not in ("Dockerfile", "compose.yaml")
        )
        folders = sorted(p for p in project.rglob("*") if p.is_dir())
        target = files[pick % len(files)] if files else None
        if kind == "append" and target is not None:
            with target.open("a") as handle:
                handle.write(f"edit {number}\n")
        elif kind == "new file":
            (folders[pick % len(folders)] / f"new{number}.txt").write_text(f"{number}\n")
        elif kind == "delete" and target is not None:
            target.unlink()
        elif kind == "chmod" and target is not None:
            target.chmod(target.stat().st_mode ^ 0o111)
        elif kind == "link" and target is not None:
            target.unlink()
            target.symlink_to("elsewhere")
        elif kind == "new folder":
            made = folders[pick % len(folders)] / f"folder{number}"
            made.mkdir()
            (made / "inside.txt").write_text("inside\n")
        elif kind == "rename folder":
            movable = [f for f in folders if f.parent != project.parent and f != project]
            if movable:
                moved = movable[pick % len(movable)]
                moved.rename(moved.with_name(f"{moved.name}-moved{number}"))
        elif kind == "age":
            time.sleep(2.1)  # past the racy window: the next run keeps settled snapshots and a memo
        through = planner(PLAN, project, cache)
        scratch = planner(PLAN, project, root / f"scratch{number}", server=False)
        assert (through.returncode, through.stdout) == (scratch.returncode, scratch.stdout), (kind, number)
    assert served(cache) - before == len(edits) + 1


def test_a_closed_standard_stream_runs_in_process(project: Path, cache: Path, tmp_path: Path) -> None:
    """A standard stream that is closed cannot be handed over: the run goes on in the client's process."""
    closed = subprocess.run(
        [sys.executable, "-m", "planner", *PLAN],
        check=False,
        cwd=project,
        env={**os.environ, "PLANNER_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(0),
    )
    assert outcome(closed) == outcome(planner(PLAN, project, tmp_path / "alone", server=False))
    assert served(cache) == 0
