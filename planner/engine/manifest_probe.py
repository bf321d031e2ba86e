"""A registry manifest's HEAD on one plain connection: what a memo check asks the registry again.

Why its own small module: a no-op apply that shares its builds replays one HEAD per ref before it answers, and
importing the registry client (docker-py's neighbours, concurrent.futures) or `http.client` (it imports ssl)
cost 40-45 ms each, against a 0.1 s goal. Plain HTTP is spoken over a socket, as the Engine client does; only an
https registry imports `http.client`.
"""

from __future__ import annotations

import socket

# how the memo tells a registry's answer from an Engine API's (inputs.Response: host, target, status, digest)
REGISTRY_PREFIX = "registry "
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def probe_manifest(base: str, target: str, timeout: float) -> tuple[int, str]:
    """HEAD `target` of the registry at `base` (`http://host:port` or `https://...`): the status and the
    manifest's digest as the registry names it (`Docker-Content-Digest`, "" when absent). Raises OSError."""
    scheme, _, netloc = base.partition("://")
    if scheme == "https":
        return _probe_tls(netloc, target, timeout)
    if netloc.startswith("["):  # [::1]:5000
        host, _, rest = netloc[1:].partition("]")
        port = rest.removeprefix(":") or "80"
    else:
        host, _, port = netloc.partition(":")
    request = (
        f"HEAD {target} HTTP/1.0\r\nHost: {netloc}\r\nAccept: {MANIFEST_TYPES}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port or 80)), timeout=timeout) as sock:
        sock.sendall(request.encode())
        chunks = []
        while chunk := sock.recv(1 << 14):
            chunks.append(chunk)
    head = b"".join(chunks).partition(b"\r\n\r\n")[0].decode("latin-1")
    lines = head.split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise OSError(f"not an HTTP answer from {netloc}") from None
    digest = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "docker-content-digest":
            digest = value.strip()
    return status, digest


def _probe_tls(netloc: str, target: str, timeout: float) -> tuple[int, str]:
    import http.client

    connection = http.client.HTTPSConnection(netloc, timeout=timeout)
    try:
        connection.request("HEAD", target, headers={"Accept": MANIFEST_TYPES})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Docker-Content-Digest") or ""
    finally:
        connection.close()
