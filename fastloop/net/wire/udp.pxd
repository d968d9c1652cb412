# cython: language_level=3
# UDP (RFC 768): parse with length and checksum validation, emit, pseudo-header checksum.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from fastloop.includes.dpdk cimport fl_cksum_add, fl_cksum_fold
from fastloop.net.wire.bytes cimport load16, store16
from fastloop.net.wire.ipv4 cimport ipv4_pseudo_sum, IPPROTO_UDP

cdef enum:
    UDP_HDR_LEN = 8
    UDP_CHECKSUM_OFFSET = 6

# parse results: 0 or why the datagram is malformed
cdef enum UdpError:
    UDP_OK = 0
    UDP_TRUNCATED           # shorter than the header
    UDP_BAD_LENGTH          # length field < 8 or past the end of the buffer
    UDP_BAD_CHECKSUM

cdef struct UdpHeader:
    uint16_t src_port
    uint16_t dst_port
    uint16_t length         # header and data; the payload is buf[8:length]
    uint16_t checksum       # as on the wire; 0: the sender computed none

cdef inline bint udp_checksum_ok(uint32_t src, uint32_t dst, const uint8_t *dgram,
                                 size_t n) noexcept nogil:
    cdef uint32_t s = fl_cksum_add(ipv4_pseudo_sum(src, dst, IPPROTO_UDP, <uint16_t>n), dgram, n)
    return fl_cksum_fold(s) == 0xffff

cdef inline int udp_parse(const uint8_t *buf, size_t n, UdpHeader *h, uint32_t src, uint32_t dst,
                          bint verify_checksum) noexcept nogil:
    """Bytes past h.length in an n-byte buffer are not part of the datagram; src and dst are the
    IPv4 addresses (host order) for the pseudo-header."""
    if n < UDP_HDR_LEN:
        return UDP_TRUNCATED
    h.length = load16(buf + 4)
    if h.length < UDP_HDR_LEN or h.length > n:
        return UDP_BAD_LENGTH
    h.checksum = load16(buf + 6)
    # RFC 768: an all-zero checksum field means the sender computed none
    if verify_checksum and h.checksum != 0 and not udp_checksum_ok(src, dst, buf, h.length):
        return UDP_BAD_CHECKSUM
    h.src_port = load16(buf)
    h.dst_port = load16(buf + 2)
    return UDP_OK

cdef inline void udp_emit(uint8_t *buf, const UdpHeader *h) noexcept nogil:
    """The 8-byte header with the checksum zero (h.checksum is not written)."""
    store16(buf, h.src_port)
    store16(buf + 2, h.dst_port)
    store16(buf + 4, h.length)
    buf[6] = 0
    buf[7] = 0

# Checksums are in machine order, like inet_checksum: store them with store_raw16.

cdef inline uint16_t udp_pseudo_header_sum(uint32_t src, uint32_t dst, uint16_t udp_len) noexcept nogil:
    """The folded, not complemented, pseudo-header sum a PMD expects for L4 offload."""
    return fl_cksum_fold(ipv4_pseudo_sum(src, dst, IPPROTO_UDP, udp_len))

cdef inline uint16_t udp_checksum(uint32_t src, uint32_t dst, const uint8_t *dgram,
                                  size_t n) noexcept nogil:
    """The checksum of an n-byte datagram whose checksum field is zero; a computed 0 is
    sent as all ones, 0 meaning none (RFC 768)."""
    cdef uint32_t s = fl_cksum_add(ipv4_pseudo_sum(src, dst, IPPROTO_UDP, <uint16_t>n), dgram, n)
    cdef uint16_t c = <uint16_t>(~fl_cksum_fold(s) & 0xffff)
    return c if c != 0 else 0xffff
