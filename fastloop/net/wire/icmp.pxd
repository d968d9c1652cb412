# cython: language_level=3
# ICMP for IPv4 (RFC 792): the header, echo, and destination-unreachable bodies.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from fastloop.net.wire.bytes cimport load16, store16, store_raw16
from fastloop.net.wire.checksum cimport inet_checksum, inet_checksum_ok

cdef enum:
    ICMP_HDR_LEN = 8
    ICMP_ECHO_REPLY = 0
    ICMP_DEST_UNREACH = 3
    ICMP_ECHO_REQUEST = 8
    ICMP_TIME_EXCEEDED = 11
    ICMP_CODE_PROTO_UNREACH = 2
    ICMP_CODE_PORT_UNREACH = 3
    ICMP_CODE_FRAG_NEEDED = 4

cdef enum IcmpError:
    ICMP_OK = 0
    ICMP_TRUNCATED
    ICMP_BAD_CHECKSUM

cdef struct IcmpHeader:
    uint8_t type
    uint8_t code
    uint16_t ident        # echo: identifier; unreachable: unused
    uint16_t seq          # echo: sequence; frag-needed: next-hop MTU

cdef inline int icmp_parse(const uint8_t *buf, size_t n, IcmpHeader *h) noexcept nogil:
    """The checksum covers the whole ICMP message (RFC 792)."""
    if n < ICMP_HDR_LEN:
        return ICMP_TRUNCATED
    if not inet_checksum_ok(buf, n):
        return ICMP_BAD_CHECKSUM
    h.type = buf[0]
    h.code = buf[1]
    h.ident = load16(buf + 4)
    h.seq = load16(buf + 6)
    return ICMP_OK

cdef inline void icmp_emit(uint8_t *buf, size_t n, const IcmpHeader *h) noexcept nogil:
    """Write the header over a message of n bytes whose body is already in place."""
    buf[0] = h.type
    buf[1] = h.code
    buf[2] = 0
    buf[3] = 0
    store16(buf + 4, h.ident)
    store16(buf + 6, h.seq)
    store_raw16(buf + 2, inet_checksum(buf, n))
