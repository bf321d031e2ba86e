"""The README's tour, run as written: every `<!-- tested -->` shell block, in order, in one bash session, against
a real registry and a real sandbox daemon (the variables the README's demo set-up exports). Each command must
exit 0 and print its `# → text`; a README that drifts from planner fails here."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import remove_project_images
from tests.integration.services import DaemonProcess, RegistryProcess
from tests.readme import expected, shell_blocks

REPO = Path(__file__).resolve().parents[2]
# The tour runs under a project name of its own (the README's commands do not name one), so its clean-up removes
# only its own images.
PROJECT = f"tour{os.getpid()}"


def test_the_readme_tour_runs_as_written(
    tmp_path: Path, registry: RegistryProcess, sandbox: DaemonProcess
) -> None:
    commands = [c for block in shell_blocks() if block.tested for c in block.commands]
    bin_dir = tmp_path / "bin"  # `planner` = this tree's planner, as `.venv/bin/planner` is after the set-up
    bin_dir.mkdir()
    launcher = bin_dir / "planner"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m planner "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "out"
    out.mkdir()
    # The commands start in a clone's root; this one holds the example with a file of the test's own in every
    # context: an image ID follows from the content alone, so another test's clean-up of an identical image
    # (`docker rmi -f ID`) would otherwise take the tour's images away mid-run.
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "examples/compose/helix", clone / "examples/compose/helix", symlinks=False)
    for folder in ("api", "frontend", "desktop", "sandbox", "zed/crates", "qwen-code/packages"):
        (clone / "examples/compose/helix" / folder / "tour-id").write_text(PROJECT)
    script = ["cd " + shlex.quote(str(clone))]
    for number, command in enumerate(commands):
        script.append(
            f"{{ {command}\n}} > {out}/{number} 2>&1; rc=$?; echo $rc > {out}/{number}.rc; "
            f'[ "$rc" = 0 ] || exit 97'
        )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMPOSE_", "PLANNER_", "DOCKER_")) and key != "SANDBOX_DOCKER_HOST"
    }
    env.update(
        PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(REPO),
        TMPDIR=str(tmp_path),
        COMPOSE_PROJECT_NAME=PROJECT,
        PLANNER_CACHE_DIR=str(tmp_path / "cache"),
        PLANNER_REGISTRY=registry.host,
        SANDBOX_DOCKER_HOST=sandbox.url,
    )
    try:
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        for number, command in enumerate(commands):
            printed = (out / str(number)).read_text() if (out / str(number)).exists() else ""
            rc = (out / f"{number}.rc").read_text().strip() if (out / f"{number}.rc").exists() else "not run"
            assert rc == "0", (
                f"README command failed (exit {rc}): {command}\n{printed[-3000:]}\n{done.stderr}"
            )
            text = expected(command)
            assert text is None or text in printed, f"README: `{command}` did not print {text!r}:\n{printed}"
        assert done.returncode == 0, done.stderr
    finally:
        for url in (None, sandbox.url):
            remove_project_images(PROJECT, url)
