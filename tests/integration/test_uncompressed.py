"""Planner's own push (issue 15): layers uploaded uncompressed from the export stream, pulled by a real second
dockerd; streamed deliveries that leave out the layers the destination holds; a registry killed mid-upload."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from planner.apply.run import ApplyOptions, execute
from planner.base.layer_chain import chain_ids
from planner.compose.options import ProjectOptions
from planner.engine.daemon import Daemon
from planner.engine.layers import Layout, Partial, held_chains, partial_load_stream
from planner.engine.registry import LAYER_TAR, MANIFEST_TYPES, Registry, RegistryError
from planner.keys.store import Store
from planner.plan.pipeline import make_plan
from tests.integration.conftest import registry_or_skip
from tests.integration.services import (
    SESSION_LABEL,
    DaemonProcess,
    RegistryProcess,
    start_registry,
    temp_root,
)
from tests.integration.test_apply import run, steps

pytestmark = pytest.mark.docker
BIG = 4 * 1024 * 1024
MID = 1024 * 1024
FILES = ("/big/blob", "/mid/blob", "/small.txt")


def project(root: Path, name: str, registry: str, sandbox: str, base: str, transfer: str = "auto") -> Path:
    (root / "app/big").mkdir(parents=True)
    (root / "app/mid").mkdir()
    (root / "app/big/blob").write_bytes(os.urandom(BIG))
    (root / "app/mid/blob").write_bytes(os.urandom(MID))
    (root / "app/small.txt").write_text(f"{name} v1\n")
    (root / "app/Dockerfile").write_text(
        f"FROM {base}\nLABEL {SESSION_LABEL}\nCOPY big /big\nCOPY mid /mid\nCOPY small.txt /small.txt\n"
        'RUN echo "built" > /built.txt\n'
    )
    (root / "compose.yaml").write_text(f"name: {name}\nservices:\n  app:\n    build: ./app\n")
    (root / "planner.yaml").write_text(
        f"registry:\n  url: {registry}\n  namespace: u\n  compression: none\n"
        f"destinations:\n  sandbox:\n    host: {sandbox}\n"
        f"rules:\n  - match: '*'\n    destinations: [local, sandbox]\n    transfer: {transfer}\n"
    )
    return root


def checksums(url: str | None, image: str) -> dict[str, str]:
    """sha256 of a few files, read through `docker run` (cat) on that daemon."""
    prefix = ["docker"] + (["-H", url] if url else [])
    found = {}
    for path in FILES:
        done = subprocess.run(
            [*prefix, "run", "--rm", "--label", SESSION_LABEL, "--network", "none", image, "cat", path],
            capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        found[path] = hashlib.sha256(done.stdout).hexdigest()
    return found


def manifest(registry: RegistryProcess, ref: str) -> dict[str, Any]:
    repository, tag = ref.split("/", 1)[1].rsplit(":", 1)
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def plan_json(root: Path, env: dict[str, str]) -> dict[str, Any]:
    done = run(root, "plan", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_uncompressed_delivery_runs_in_the_sandbox_and_moves_only_what_changed(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess, busybox_image: str
) -> None:
    root = project(tmp_path / "p", name, registry.host, sandbox.url, busybox_image)
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    planned = plan_json(root, env)
    push = next(s for s in planned["steps"] if s["kind"] == "push")
    assert push["method"] == "layers"  # compression: none: planner moves the layers, uncompressed
    ref = push["ref"]
    first = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t1.jsonl"), env=env)
    assert first.returncode == 0, first.stderr
    assert {r["step"]: r["status"] for r in steps(tmp_path / "t1.jsonl")}["push:app"] == "ok"

    stored = manifest(registry, ref)
    assert {layer["mediaType"] for layer in stored["layers"]} == {LAYER_TAR}
    local = Daemon("local", None)
    image = f"{name}-app:latest"
    assert [layer["digest"] for layer in stored["layers"]] == local.inspect(image)["RootFS"]["Layers"]  # type: ignore[index]
    assert Daemon("sandbox", sandbox.url).image_id(image) == local.image_id(image)  # the same image
    assert checksums(sandbox.url, image) == checksums(None, image)

    # Delivered everywhere: a second apply moves nothing.
    before = registry.blob_bytes()
    again = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t2.jsonl"), env=env)
    assert again.returncode == 0 and steps(tmp_path / "t2.jsonl") == []
    assert registry.blob_bytes() == before

    # One changed layer (mid/blob, 1 MiB): only it, its config and the layers after it move.
    (root / "app/mid/blob").write_bytes(os.urandom(MID))
    changed = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t3.jsonl"), env=env)
    assert changed.returncode == 0, changed.stderr
    moved = registry.blob_bytes() - before
    assert MID < moved <= 1.2 * MID, f"moved {moved} bytes for a {MID}-byte layer"
    assert checksums(sandbox.url, image) == checksums(None, image)


def test_a_streamed_delivery_sends_only_the_layers_the_destination_lacks(
    tmp_path: Path, name: str, registry: RegistryProcess, sandbox: DaemonProcess, busybox_image: str
) -> None:
    root = project(tmp_path / "p", name, registry.host, sandbox.url, busybox_image, transfer="tarball")
    env = {"PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    assert run(root, "apply", "-q", env=env).returncode == 0
    image = f"{name}-app:latest"
    local, target = Daemon("local", None), Daemon("sandbox", sandbox.url)

    # The load stream itself: with the destination holding every layer but the last two, only those are in it.
    layout = Layout.of(local, image)
    held = set(layout.chains[:-2])
    report = Partial()
    sent = sum(len(c) for c in partial_load_stream(local.save([layout.image_id]), layout, held, report))
    assert set(report.sent) == set(layout.chains[-2:]) and set(report.left_out) == held
    assert report.unplaced == 0 and sent < 64 * 1024

    # Through apply: a changed top file moves the small layers only, and the image runs with the same files.
    (root / "app/small.txt").write_text(f"{name} v2\n")
    done = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"), env=env)
    assert done.returncode == 0, done.stderr
    delivered = [r for r in steps(tmp_path / "t.jsonl") if r["phase"] == "transfer"]
    assert len(delivered) == 1 and 0 < delivered[0]["bytes"] < 64 * 1024, delivered
    assert set(chain_ids(layout.diff_ids)[:-2]) <= held_chains(target)
    assert target.image_id(image) == local.image_id(image)
    assert checksums(sandbox.url, image) == checksums(None, image)


def test_a_registry_killed_mid_upload_falls_back_and_a_rerun_completes(
    tmp_path: Path, name: str, sandbox: DaemonProcess, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with temp_root("planner-reg3-") as reg_root:
        doomed = registry_or_skip(reg_root)
        port = int(doomed.host.rsplit(":", 1)[1])
        root = project(tmp_path / "p", name, doomed.host, sandbox.url, busybox_image)
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(root)}
        cache = tmp_path / "cache"
        original = Registry.upload_blob
        killed = []

        def dying(
            self: Registry, repository: str, chunks: Iterable[bytes], expected: str | None = None
        ) -> tuple[str, int]:
            def stream() -> Iterator[bytes]:
                for index, chunk in enumerate(chunks):
                    if index == 1 and not killed:
                        doomed.process.kill()  # mid-upload: the first chunk is in, the rest never arrives
                        doomed.process.wait()
                        killed.append(repository)
                    yield chunk

            return original(self, repository, stream(), expected)

        monkeypatch.setattr(Registry, "upload_blob", dying)
        saves: list[list[str]] = []
        save = Daemon.save

        def counted_save(self: Daemon, refs: list[str], chunk_size: int = 1 << 20) -> Iterator[bytes]:
            saves.append(refs)
            return save(self, refs, chunk_size)

        monkeypatch.setattr(Daemon, "save", counted_save)
        store = Store.open(cache)
        planned = make_plan(
            ProjectOptions(environ=environ, cwd=str(root)), None, [], offline=False, store=store
        )
        push = next(s for s in planned.plan.steps if s.kind == "push")
        assert push.method == "layers" and push.ref is not None
        assert push.export_with == ["transfer:app:sandbox"]  # the delivery streams from the same export
        result = execute(planned, ApplyOptions(quiet=True), store)
        assert killed, "the upload never started"
        # one export read for both; the upload died mid-way and the delivery went on without it
        assert len(saves) == 1, saves
        assert result.exit_code == 0, [(r.step.id, r.error) for r in result.results.values()]
        status = {r.step.id: r.status for r in result.results.values()}
        assert status["push:app"] == "fell-back" and status["transfer:app:sandbox"] == "ok"
        assert any("push to the registry failed" in w for w in result.warnings), result.warnings
        assert not Store.open(cache).shared(push.ref)  # no delivery recorded that did not happen
        key = planned.manifests["app"].key
        assert Daemon("sandbox", sandbox.url).image_key(f"{name}-app:latest") == key  # streamed, by key

        # The registry comes back (same storage, same port): the next apply pushes, and records it.
        monkeypatch.setattr(Registry, "upload_blob", original)
        revived = start_registry(reg_root, port=port)
        try:
            again = run(root, "apply", "-q", "--timing-log", str(tmp_path / "t.jsonl"),
                        env={"PLANNER_CACHE_DIR": str(cache)})  # fmt: skip
            assert again.returncode == 0, again.stderr
            assert {r["step"]: r["status"] for r in steps(tmp_path / "t.jsonl")} == {"push:app": "ok"}
            assert Store.open(cache).shared(push.ref)
            assert Registry(revived.host, "u").has(push.ref)
        finally:
            revived.stop()


def test_the_registry_refuses_a_blob_that_does_not_hash_to_the_named_digest(
    registry: RegistryProcess,
) -> None:
    """planner names a layer's diffID at the closing PUT without hashing the bytes itself: the registry's own
    check is the proof, so it must refuse content that does not match."""
    import hashlib

    client = Registry(registry.host, "u")
    other = "sha256:" + hashlib.sha256(b"other content").hexdigest()
    with pytest.raises(RegistryError, match="does not hash to"):
        client.upload_blob("t/verify", [b"some ", b"content"], expected=other)
    assert client.blob_size("t/verify", other) is None
    right = "sha256:" + hashlib.sha256(b"some content").hexdigest()
    assert client.upload_blob("t/verify", [b"some ", b"content"], expected=right) == (right, 12)
    assert client.blob_size("t/verify", right) == 12
