"""Byte-level helpers the hand-built packet fixtures share (independent of the stack's code)."""
import struct


def csum(data: bytes) -> int:
    """RFC 1071: one's complement of the one's complement sum of 16-bit big-endian words."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip4(s: str) -> bytes:
    """A dotted IPv4 address as 4 bytes."""
    return bytes(int(x) for x in s.split("."))
