"""The protobuf wire format, the little of it planner needs: BuildKit's session messages (fsutil packets and
stats, grpc health) and the build status BuildKit streams back. Encoded and read by hand: a few small
messages do not warrant the protobuf runtime."""

from __future__ import annotations

from collections.abc import Iterator


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def int_field(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value) if value else b""


def bytes_field(number: int, value: bytes) -> bytes:
    return key(number, 2) + varint(len(value)) + value if value else b""


def message_field(number: int, value: bytes) -> bytes:
    """A set submessage is written even when empty (an empty Stat is not a missing one)."""
    return key(number, 2) + varint(len(value)) + value


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: varints as ints, length-delimited fields as bytes."""
    index = 0

    def varint() -> int:
        nonlocal index
        shift = value = 0
        while True:
            if index >= len(data):
                raise ValueError("truncated protobuf message")
            byte = data[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while index < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            length = varint()
            if index + length > len(data):
                raise ValueError("truncated protobuf message")
            yield number, data[index : index + length]
            index += length
        elif wire == 1:
            index += 8
        elif wire == 5:
            index += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
