# cython: language_level=3
# Ethernet II (IEEE 802.3 framing with an EtherType): parse and emit.
from libc.stdint cimport uint8_t, uint16_t
from libc.string cimport memcpy
from fastloop.net.wire.bytes cimport load16, store16

cdef enum:
    ETH_HDR_LEN = 14
    ETH_ADDR_LEN = 6
    ETHERTYPE_IPV4 = 0x0800
    ETHERTYPE_ARP = 0x0806

cdef struct EthHeader:
    uint8_t dst[6]
    uint8_t src[6]
    uint16_t ethertype

cdef inline bint eth_parse(const uint8_t *buf, size_t n, EthHeader *h) noexcept nogil:
    """False when the frame is shorter than a header."""
    if n < ETH_HDR_LEN:
        return False
    memcpy(h.dst, buf, 6)
    memcpy(h.src, buf + 6, 6)
    h.ethertype = load16(buf + 12)
    return True

cdef inline void eth_emit(uint8_t *buf, const uint8_t *dst, const uint8_t *src,
                          uint16_t ethertype) noexcept nogil:
    memcpy(buf, dst, 6)
    memcpy(buf + 6, src, 6)
    store16(buf + 12, ethertype)

cdef inline bint mac_is_multicast(const uint8_t *mac) noexcept nogil:
    return (mac[0] & 1) != 0          # the I/G bit; broadcast is a multicast address too

cdef inline bint mac_is_broadcast(const uint8_t *mac) noexcept nogil:
    return (mac[0] & mac[1] & mac[2] & mac[3] & mac[4] & mac[5]) == 0xff

cdef inline bint mac_is_zero(const uint8_t *mac) noexcept nogil:
    return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0

cdef inline bint mac_equal(const uint8_t *a, const uint8_t *b) noexcept nogil:
    return (a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and a[3] == b[3]
            and a[4] == b[4] and a[5] == b[5])
