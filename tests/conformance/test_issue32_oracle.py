"""Issue 32, item 6: specs Compose refuses once variables are interpolated (an unset `${DATA_DIR}` leaves
`:/app`, an unset `${PORT}` leaves `:`), and a service's `shm_size` Compose cannot read. Each case is pinned
against the real `docker compose` (v2.40.3) first, then planner must fail alike, at the entry's file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conformance.test_differential import compare
from tests.conformance.test_differential_regressions import binary_builds, binary_fails_with, project
from tests.conformance.test_issue13_oracle import planner_cli, write

pytestmark = pytest.mark.oracle

REFUSED = {
    "volume-unset-source": ('    volumes: ["${DATA_DIR}:/app"]\n', "invalid spec: :/app: empty section between colons"),
    "volume-empty-middle": ('    volumes: ["/a::/b"]\n', "invalid spec: /a::/b: empty section between colons"),
    "volume-empty-end": ('    volumes: ["/a:"]\n', "invalid spec: /a:: empty section between colons"),
    "volume-too-many-colons": ('    volumes: ["/a:/b:ro:x"]\n', "too many colons"),
    "port-unset": ('    ports: ["${PORT}:${PORT}"]\n', "invalid proto:"),
    "port-no-container": ('    ports: ["8080:"]\n', "invalid proto:"),
    "port-bad-proto": ('    ports: ["80/xyz"]\n', "invalid proto: xyz"),
    "shm-size-empty": ('    shm_size: "${SHM}"\n', "'services[web].shm_size' invalid size: ''"),
    "shm-size-words": ('    shm_size: "lots"\n', "'services[web].shm_size' invalid size: 'lots'"),
    "build-shm-size-empty": ('    build: {context: ., shm_size: ""}\n', "'services[web].build.shm_size' invalid size: ''"),
}  # fmt: skip
ACCEPTED = {
    "volume-short-target": '    volumes: ["ab"]\n',
    "volume-windows-drive": '    volumes: ["c:/x:/y"]\n',
    "volume-options": '    volumes: ["/a:/b:ro,z"]\n',
    "volume-drive-letter-source": '    volumes: ["a:b:c:d"]\n',  # `a:` is a drive: source a:b, target c
    "port-ip-udp": '    ports: ["127.0.0.1:80:80/UDP"]\n',
    "port-range": '    ports: ["8000-8010:8000-8010/tcp"]\n',
    "shm-size": "    shm_size: 64m\n",
    "shm-size-bytes": "    shm_size: 1048576\n",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_like_compose(case: str) -> None:
    lines, message = REFUSED[case]
    text = f"services:\n  web:\n    image: nginx\n{lines}  other: {{image: o}}\n"
    compare(project({"compose.yaml": text}), binary_fails_with(message))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusal_names_file_and_line(case: str, tmp_path: Path) -> None:
    lines, message = REFUSED[case]
    write(tmp_path, {"compose.yaml": f"services:\n  web:\n    image: nginx\n{lines}  other: {{image: o}}\n"})
    proc = planner_cli(tmp_path, ["config"], {})
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(rf"{re.escape(str(tmp_path / 'compose.yaml'))}:4:", proc.stderr), proc.stderr


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_like_compose(case: str) -> None:
    text = f"services:\n  web:\n    image: nginx\n    build: .\n{ACCEPTED[case]}  other: {{image: o}}\n"
    compare(project({"compose.yaml": text}), binary_builds("web"))
