"""Layer identities a daemon's layer store uses: the chain ID of each position of an image's layer stack.

A daemon holds a layer at a position when it holds the same chain (the same layers below it too), which is
what a `docker load` or a pull looks up first. Pure: observe, decide and the engine adapters share it."""

from __future__ import annotations

import hashlib


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain ID of each layer position."""
    chains: list[str] = []
    for diff in diff_ids:
        chains.append(
            diff if not chains else "sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest()
        )
    return chains
