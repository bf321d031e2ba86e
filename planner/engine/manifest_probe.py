"""A registry manifest's HEAD on one plain connection: what a memo check asks the registry again.

Why its own small module: a no-op apply that shares its builds replays one HEAD per ref before it answers, and
importing the registry client (docker-py's neighbours, concurrent.futures) or `http.client` (it imports ssl)
cost 40-45 ms each, against a 0.1 s goal. Plain HTTP goes through the Engine client's HTTP/1.0 exchange
(engine/http.py); only an https registry imports `http.client`.
"""

from __future__ import annotations

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
    """HEAD `target` of the registry at `base` (`http://host[:port]` or `https://...`): the status and the
    manifest's digest as the registry names it (`Docker-Content-Digest`, "" when absent). Raises OSError."""
    from planner.engine.http import exchange, host_and_port

    netloc = base.partition("://")[2].split("/", 1)[0]
    if base.startswith("https://"):
        return _probe_tls(netloc, target, timeout)
    address = base if host_and_port(base)[1] is not None else f"{base}:80"  # `connect` would take 2375
    request = f"HEAD {target} HTTP/1.0\r\nHost: {netloc}\r\nAccept: {MANIFEST_TYPES}\r\n\r\n"
    status, headers, _ = exchange(address, request, timeout)
    return status, headers.get("docker-content-digest", "")


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
