"""Moving an image's layers without dockerd's push: read the source daemon's export stream (`docker save`), upload
each layer the registry lacks as an uncompressed blob (its digest is the layer's diffID), then the config and a
schema2 manifest with the uncompressed layer media type under the content-addressed ref. Destinations pull that
ref as they pull any other. The same reading of the export stream builds a `docker load` stream that leaves out
the layers a destination already holds.

Nothing is held whole or written to disk: the export is read once, in order, and each layer goes to the registry
(or the load stream) as it arrives. A reader thread (`streams.tee`) keeps a few MiB of the export ahead of the
upload, so reading the daemon and writing the registry overlap.

Which file of the export is which layer: an engine that writes the OCI layout names layers by diffID
(`blobs/sha256/<hex>`). The legacy layout (Engine 20.10) names each layer's folder by its v1 ID, a hash of the
folder's `json` (which comes before `layer.tar` in the stream) with the layer's chain ID and parent: rehashing
the `json` with each candidate chain ID finds the layer's position. A layer that cannot be placed so is treated
as needed (uploaded and identified by its hash, or sent to the destination): never skipped on a guess.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from planner.base.errors import RuntimeFailure
from planner.base.layer_chain import chain_ids
from planner.base.streams import tee
from planner.engine.daemon import Daemon
from planner.engine.registry import IMAGE_CONFIG, LAYER_TAR, SCHEMA2_MANIFEST, Registry

BLOCK = 512
Progress = Callable[[dict[str, Any]], None]


def _raw_members(text: str) -> dict[str, str]:
    """A JSON object's members as their raw text (Go's compact encoding, kept byte for byte)."""
    decoder = json.JSONDecoder()
    index = text.index("{") + 1
    members: dict[str, str] = {}
    while True:
        while text[index] in " \n\r\t,":
            index += 1
        if text[index] == "}":
            return members
        key, index = decoder.raw_decode(text, index)
        while text[index] in " \n\r\t:":
            index += 1
        start = index
        _, index = decoder.raw_decode(text, index)
        members[str(key)] = text[start:index]


def place_legacy_layer(folder: str, v1_json: bytes, chains: list[str]) -> int | None:
    """The position of a legacy-layout layer folder (named by its v1 ID), from its `json`, or None.

    moby's v1.CreateID hashes the v1 image JSON without `id`, with `layer_id` (the chain ID) and `parent`
    (`sha256:` + the parent's v1 ID); intermediate layers get `os` only afterwards."""
    try:
        members = _raw_members(v1_json.decode("utf-8"))
    except (ValueError, IndexError):
        return None
    parent = members.get("parent")
    for position, chain in enumerate(chains):
        for without_os in (True, False):
            hashed = {
                k: v
                for k, v in members.items()
                if k not in ("id", "parent") and not (without_os and k == "os")
            }
            hashed["layer_id"] = json.dumps(chain)
            if parent is not None:
                hashed["parent"] = json.dumps("sha256:" + json.loads(parent))
            text = "{" + ",".join(f"{json.dumps(k)}:{hashed[k]}" for k in sorted(hashed)) + "}"
            if hashlib.sha256(text.encode("utf-8")).hexdigest() == folder:
                return position
    return None


class _Reader:
    """Exact reads over a chunk iterator."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.offset = 0

    def read(self, size: int) -> bytes:
        parts = []
        for part in self.stream(size):
            parts.append(part)
        return b"".join(parts)

    def stream(self, size: int) -> Iterator[bytes]:
        """`size` bytes as the chunks come (no copy beyond the chunk); short only at the end of the stream."""
        left = size
        while left > 0:
            if not self._buffer:
                try:
                    self._buffer = next(self._chunks)
                except StopIteration:
                    raise RuntimeFailure("the export stream ended inside an entry") from None
                continue
            part, self._buffer = self._buffer[:left], self._buffer[left:]
            left -= len(part)
            self.offset += len(part)
            yield part


@dataclass
class Entry:
    """One tar member: its header blocks (with any pax or GNU long-name header before it) and data size."""

    name: str
    kind: bytes
    size: int
    headers: bytes
    linkname: str = ""

    @property
    def padded(self) -> int:
        return -(-self.size // BLOCK) * BLOCK


def _number(field_bytes: bytes) -> int:
    if field_bytes and field_bytes[0] & 0x80:  # base-256
        return int.from_bytes(bytes([field_bytes[0] & 0x7F]) + field_bytes[1:], "big")
    text = field_bytes.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _entries(reader: _Reader) -> Iterator[Entry]:
    """Tar members in stream order; the caller consumes (or skips) each member's padded data before the next."""
    pending = b""
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = reader.read(BLOCK)
        if len(header) < BLOCK or header == b"\0" * BLOCK:
            return
        kind = header[156:157]
        size = _number(header[124:136])
        if kind in (b"x", b"L", b"K", b"g"):
            data = reader.read(-(-size // BLOCK) * BLOCK)
            pending += header + data
            if kind == b"L":
                long_name = data[:size].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == b"x":
                pax.update(_pax(data[:size]))
            continue
        name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if prefix and header[257:262] == b"ustar":
            name = f"{prefix}/{name}"
        name = pax.get("path") or long_name or name
        size = int(pax["size"]) if "size" in pax else size
        linkname = pax.get("linkpath") or header[157:257].split(b"\0", 1)[0].decode(
            "utf-8", "surrogateescape"
        )
        yield Entry(name.removeprefix("./"), kind, size, pending + header, linkname)
        pending, long_name, pax = b"", None, {}


def _pax(data: bytes) -> dict[str, str]:
    found = {}
    while data:
        length_text, _, _ = data.partition(b" ")
        length = int(length_text)
        record, data = data[:length], data[length:]
        key, _, value = record[len(length_text) + 1 : -1].partition(b"=")
        found[key.decode()] = value.decode("utf-8", "surrogateescape")
    return found


@dataclass
class Layout:
    """What the plan and the export stream say about an image's layers."""

    image_id: str
    diff_ids: list[str]
    chains: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.chains = chain_ids(self.diff_ids)

    @classmethod
    def of(cls, daemon: Daemon, image: str) -> Layout:
        found = daemon.inspect(image)
        if found is None:
            raise RuntimeFailure(f"daemon {daemon.name} has no image {image}")
        return cls(str(found["Id"]), list((found.get("RootFS") or {}).get("Layers") or []))


class _Placer:
    """Which layer position each export entry is, as the stream goes."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.folders: dict[str, int] = {}

    def note_json(self, entry: Entry, data: bytes) -> None:
        folder = entry.name.split("/", 1)[0]
        position = place_legacy_layer(folder, data, self.layout.chains)
        if position is not None:
            self.folders[folder] = position

    def diff_of(self, entry: Entry) -> str | None:
        """The diffID of a layer file, when the stream says which it is before its data."""
        if entry.name.startswith("blobs/sha256/"):
            digest = "sha256:" + entry.name.rsplit("/", 1)[1]
            return digest if digest in self.layout.diff_ids else None
        position = self.folders.get(entry.name.split("/", 1)[0])
        return self.layout.diff_ids[position] if position is not None else None

    @staticmethod
    def is_layer(entry: Entry) -> bool:
        return entry.name.endswith("/layer.tar") or entry.name.startswith("blobs/sha256/")

    @staticmethod
    def is_legacy_json(entry: Entry) -> bool:
        return entry.name.count("/") == 1 and entry.name.endswith("/json")


@dataclass
class Upload:
    """What an uncompressed push moved."""

    uploaded: dict[str, int] = field(default_factory=dict)  # diffID -> bytes sent
    skipped: dict[str, int] = field(default_factory=dict)  # diffID -> bytes the registry held already
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes_moved(self) -> int:
        return sum(self.uploaded.values())


def push_uncompressed(
    source: Daemon,
    registry: Registry,
    image: str,
    ref: str,
    progress: Progress | None = None,
    export: Callable[[Layout], Iterable[bytes]] | None = None,
) -> Upload:
    """Put `image` (from `source`) into the registry under `ref` with uncompressed layers; only layers the
    registry lacks are sent. Raises RegistryError / RuntimeFailure; the ref is written last, so a failure
    leaves no manifest pointing at missing blobs. `export` gives the export stream (a reading shared with
    other consumers); by default the source daemon's own."""
    layout = Layout.of(source, image)
    name, tag = registry.split(ref)
    present = registry.blob_sizes(name, layout.diff_ids)
    result = Upload(skipped=dict(present))
    placer = _Placer(layout)
    config: bytes | None = None
    moved = [0]
    config_name = layout.image_id.split(":", 1)[1] + ".json"
    ahead = tee(export(layout) if export is not None else source.save([layout.image_id]), 1)[0]
    try:
        reader = _Reader(ahead)
        for entry in _entries(reader):
            if placer.is_legacy_json(entry):
                data = reader.read(entry.padded)[: entry.size]
                placer.note_json(entry, data)
                continue
            if entry.name in (config_name, f"blobs/sha256/{config_name[:-5]}"):
                config = reader.read(entry.padded)[: entry.size]
                continue
            if not placer.is_layer(entry) or entry.kind not in (b"0", b"\0"):
                _drain(reader, entry.padded)
                continue
            diff = placer.diff_of(entry)
            if diff is not None and (diff in present or diff in result.uploaded):
                _drain(reader, entry.padded)  # the registry holds it: read past, send nothing
                continue
            if diff is None and entry.name.startswith("blobs/sha256/"):
                _drain(reader, entry.padded)  # another blob of an OCI layout (a manifest, an index)
                continue

            def counted(entry: Entry = entry) -> Iterator[bytes]:
                for chunk in reader.stream(entry.size):
                    moved[0] += len(chunk)
                    if progress is not None:
                        progress({"bytes": moved[0]})
                    yield chunk

            digest, size = registry.upload_blob(name, counted(), expected=diff)
            _drain(reader, entry.padded - entry.size)
            if diff is not None and digest != diff:
                raise RuntimeFailure(
                    f"layer {entry.name} of {image} hashed to {digest[:19]}, expected {diff[:19]}"
                )
            if digest in layout.diff_ids:
                result.uploaded[digest] = size
            if config is not None and _complete(layout, present, result):
                break  # nothing further in the stream is needed
    finally:
        ahead.close()
    missing = [d for d in layout.diff_ids if d not in present and d not in result.uploaded]
    if missing:
        raise RuntimeFailure(f"the export of {image} lacks layers {', '.join(m[:19] for m in missing)}")
    if config is None or "sha256:" + hashlib.sha256(config).hexdigest() != layout.image_id:
        raise RuntimeFailure(f"the export of {image} lacks its config {layout.image_id[:19]}")
    if registry.blob_size(name, layout.image_id) is None:
        registry.upload_blob(name, [config])
    sizes = {**present, **result.uploaded}
    manifest = {
        "schemaVersion": 2,
        "mediaType": SCHEMA2_MANIFEST,
        "config": {"mediaType": IMAGE_CONFIG, "size": len(config), "digest": layout.image_id},
        "layers": [{"mediaType": LAYER_TAR, "size": sizes[d], "digest": d} for d in layout.diff_ids],
    }
    registry.put_manifest(name, tag, json.dumps(manifest, separators=(",", ":")).encode())
    result.manifest = manifest
    return result


def _complete(layout: Layout, present: dict[str, int], result: Upload) -> bool:
    return all(d in present or d in result.uploaded for d in layout.diff_ids)


def _drain(reader: _Reader, size: int) -> None:
    for _ in reader.stream(size):
        pass


@dataclass
class Partial:
    """What a partial load stream sent and left out."""

    sent: dict[str, int] = field(default_factory=dict)  # chain ID -> layer bytes sent
    left_out: dict[str, int] = field(default_factory=dict)  # chain ID -> layer bytes the destination holds
    unplaced: int = 0  # layers sent because the stream did not say which they are


def partial_load_stream(
    chunks: Iterable[bytes], layout: Layout, held_chains: set[str], report: Partial | None = None
) -> Iterator[bytes]:
    """The export stream as `docker load` takes it, without the data of layers whose chain ID the destination
    holds (a load never opens those: it finds the layer by chain ID first). A layer needed at one position is
    never left out at another (an export links a repeated layer to its first copy)."""
    report = report if report is not None else Partial()
    placer = _Placer(layout)
    needed_diffs = {d for d, c in zip(layout.diff_ids, layout.chains, strict=True) if c not in held_chains}
    ahead = tee(chunks, 1)[0]
    try:
        reader = _Reader(ahead)
        for entry in _entries(reader):
            if placer.is_legacy_json(entry):
                data = reader.read(entry.padded)
                placer.note_json(entry, data[: entry.size])
                yield entry.headers
                yield data
                continue
            position = None
            if placer.is_layer(entry) and entry.kind in (b"0", b"\0"):
                folder = entry.name.split("/", 1)[0]
                position = placer.folders.get(folder)
                if position is None and placer.diff_of(entry) is None:
                    report.unplaced += 1 if entry.name.endswith("/layer.tar") else 0
            if position is not None:
                chain, diff = layout.chains[position], layout.diff_ids[position]
                if chain in held_chains and diff not in needed_diffs:
                    report.left_out[chain] = entry.size
                    _drain(reader, entry.padded)
                    continue
                report.sent[chain] = entry.size
            yield entry.headers
            yield from reader.stream(entry.padded)
        yield b"\0" * (BLOCK * 2)
    finally:
        ahead.close()


def held_chains(daemon: Daemon) -> set[str]:
    """Chain IDs of every layer the daemon's images hold (from each image's RootFS.Layers)."""
    found = daemon.layer_sets()
    chains: set[str] = set()
    for diff_ids in found:
        chains.update(chain_ids(diff_ids))
    return chains
