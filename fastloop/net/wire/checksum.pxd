# cython: language_level=3
# The Internet checksum (RFC 1071), on DPDK's optimised summing loop.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from fastloop.includes.dpdk cimport fl_cksum_add, fl_cksum_fold

cdef inline uint16_t inet_checksum(const void *buf, size_t n) noexcept nogil:
    """The value to store in a checksum field (big-endian on the wire, as computed)."""
    return <uint16_t>(~fl_cksum_fold(fl_cksum_add(0, buf, n)) & 0xffff)

cdef inline bint inet_checksum_ok(const void *buf, size_t n) noexcept nogil:
    """A buffer whose checksum field is included sums to all ones (RFC 1071 §1)."""
    return fl_cksum_fold(fl_cksum_add(0, buf, n)) == 0xffff

cdef inline uint16_t checksum_adjust16(uint16_t cksum, uint16_t old, uint16_t new) noexcept nogil:
    """Incremental update after one 16-bit word changed, HC' = ~(~HC + ~m + m') (RFC 1624 §3).
    All three in the same byte order: machine order as load_raw16 reads them."""
    cdef uint32_t s = (~cksum & 0xffff) + (~old & 0xffff) + new
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    # Eqn 3 gives +0 (0x0000) when every covered word became zero, where the right checksum
    # is 0xffff (RFC 1624 §3). 0xffff also verifies whenever 0x0000 was right, so use it.
    s = ~s & 0xffff
    return <uint16_t>(s if s != 0 else 0xffff)
