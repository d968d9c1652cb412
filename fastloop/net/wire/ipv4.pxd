# cython: language_level=3
# IPv4 header (RFC 791): parse with validation, emit with or without the checksum.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from fastloop.net.wire.bytes cimport load16, load32, store16, store32, store_raw16
from fastloop.net.wire.checksum cimport inet_checksum, inet_checksum_ok
from fastloop.includes.dpdk cimport fl_cksum_add

cdef enum:
    IPV4_HDR_LEN = 20
    IPPROTO_ICMP = 1
    IPPROTO_TCP = 6
    IPPROTO_UDP = 17
    IPV4_FLAG_DF = 0x4000
    IPV4_FLAG_MF = 0x2000
    IPV4_OFFSET_MASK = 0x1fff

# parse results: 0 or why the header is malformed
cdef enum Ipv4Error:
    IPV4_OK = 0
    IPV4_TRUNCATED
    IPV4_BAD_VERSION
    IPV4_BAD_IHL
    IPV4_BAD_TOTAL_LENGTH
    IPV4_BAD_CHECKSUM
    IPV4_BAD_OPTIONS

cdef struct Ipv4Header:
    uint8_t header_len     # bytes, options included
    uint8_t tos
    uint16_t total_len
    uint16_t ident
    uint16_t frag          # flags and fragment offset as on the wire
    uint8_t ttl
    uint8_t protocol
    uint32_t src           # host byte order
    uint32_t dst

cdef inline bint ipv4_options_ok(const uint8_t *opt, size_t n) noexcept nogil:
    """Options are TLVs after the fixed header; EOL (0) ends, NOP (1) is one byte (RFC 791 §3.1)."""
    cdef size_t i = 0
    while i < n:
        if opt[i] == 0:
            return True
        if opt[i] == 1:
            i += 1
            continue
        if i + 1 >= n or opt[i + 1] < 2 or i + opt[i + 1] > n:
            return False
        i += opt[i + 1]
    return True

cdef inline int ipv4_parse(const uint8_t *buf, size_t n, Ipv4Header *h,
                           bint verify_checksum) noexcept nogil:
    """Validate version, IHL, lengths, checksum and options (RFC 1122 §3.2.1.1-2)."""
    if n < IPV4_HDR_LEN:
        return IPV4_TRUNCATED
    if buf[0] >> 4 != 4:
        return IPV4_BAD_VERSION
    h.header_len = (buf[0] & 0x0f) * 4
    if h.header_len < IPV4_HDR_LEN or h.header_len > n:
        return IPV4_BAD_IHL
    h.total_len = load16(buf + 2)
    if h.total_len < h.header_len or h.total_len > n:
        return IPV4_BAD_TOTAL_LENGTH
    if verify_checksum and not inet_checksum_ok(buf, h.header_len):
        return IPV4_BAD_CHECKSUM
    if h.header_len > IPV4_HDR_LEN and not ipv4_options_ok(buf + IPV4_HDR_LEN,
                                                           h.header_len - IPV4_HDR_LEN):
        return IPV4_BAD_OPTIONS
    h.tos = buf[1]
    h.ident = load16(buf + 4)
    h.frag = load16(buf + 6)
    h.ttl = buf[8]
    h.protocol = buf[9]
    h.src = load32(buf + 12)
    h.dst = load32(buf + 16)
    return IPV4_OK

cdef inline bint ipv4_is_fragment(const Ipv4Header *h) noexcept nogil:
    return (h.frag & (IPV4_FLAG_MF | IPV4_OFFSET_MASK)) != 0

cdef inline void ipv4_emit(uint8_t *buf, const Ipv4Header *h, bint fill_checksum) noexcept nogil:
    """A 20-byte header (we send no options); checksum left zero when offloaded."""
    buf[0] = 0x45
    buf[1] = h.tos
    store16(buf + 2, h.total_len)
    store16(buf + 4, h.ident)
    store16(buf + 6, h.frag)
    buf[8] = h.ttl
    buf[9] = h.protocol
    buf[10] = 0
    buf[11] = 0
    store32(buf + 12, h.src)
    store32(buf + 16, h.dst)
    if fill_checksum:
        store_raw16(buf + 10, inet_checksum(buf, IPV4_HDR_LEN))

cdef inline uint32_t ipv4_pseudo_sum(uint32_t src, uint32_t dst, uint8_t protocol,
                                     uint16_t l4_len) noexcept nogil:
    """Unfolded sum of the pseudo-header src, dst, 0, protocol, L4 length (RFC 9293 §3.1)."""
    cdef uint8_t ph[12]
    store32(ph, src)
    store32(ph + 4, dst)
    ph[8] = 0
    ph[9] = protocol
    store16(ph + 10, l4_len)
    return fl_cksum_add(0, ph, 12)
