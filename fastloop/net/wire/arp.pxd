# cython: language_level=3
# ARP for IPv4 over Ethernet (RFC 826): parse and emit the 28-byte packet.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from fastloop.net.wire.bytes cimport load16, load32, store16, store32

cdef enum:
    ARP_LEN = 28
    ARP_OP_REQUEST = 1
    ARP_OP_REPLY = 2

cdef struct ArpPacket:
    uint16_t op
    uint8_t sha[6]
    uint32_t spa          # host byte order, as every address the stack reasons with
    uint8_t tha[6]
    uint32_t tpa

cdef inline bint arp_parse(const uint8_t *buf, size_t n, ArpPacket *a) noexcept nogil:
    """False unless Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4), op 1 or 2."""
    if n < ARP_LEN:
        return False
    if load16(buf) != 1 or load16(buf + 2) != 0x0800 or buf[4] != 6 or buf[5] != 4:
        return False
    a.op = load16(buf + 6)
    if a.op != ARP_OP_REQUEST and a.op != ARP_OP_REPLY:
        return False
    memcpy(a.sha, buf + 8, 6)
    a.spa = load32(buf + 14)
    memcpy(a.tha, buf + 18, 6)
    a.tpa = load32(buf + 24)
    return True

cdef inline void arp_emit(uint8_t *buf, const ArpPacket *a) noexcept nogil:
    store16(buf, 1)
    store16(buf + 2, 0x0800)
    buf[4] = 6
    buf[5] = 4
    store16(buf + 6, a.op)
    memcpy(buf + 8, a.sha, 6)
    store32(buf + 14, a.spa)
    memcpy(buf + 18, a.tha, 6)
    store32(buf + 24, a.tpa)
