# cython: language_level=3
# The send buffer: a byte ring holding what the application wrote and the peer has not yet
# acknowledged. Segments are copied out of it at (re)transmission, so the buffer never holds
# mbufs and retransmission needs no reference counting.
from libc.stdint cimport uint8_t, uint32_t

cdef struct SendBuffer:
    uint8_t *data
    uint32_t cap             # allocated bytes, a power of two (0: nothing allocated yet)
    uint32_t limit           # the most it may hold (SO_SNDBUF)
    uint32_t head            # offset of the oldest unacknowledged byte
    uint32_t len             # bytes held: sent-unacknowledged plus unsent

cdef void sndbuf_init(SendBuffer *b, uint32_t limit) noexcept
cdef void sndbuf_free(SendBuffer *b) noexcept
cdef uint32_t sndbuf_write(SendBuffer *b, const uint8_t *src, uint32_t n) noexcept
cdef void sndbuf_consume(SendBuffer *b, uint32_t n) noexcept
cdef void sndbuf_copy(const SendBuffer *b, uint32_t offset, uint8_t *dst, uint32_t n) noexcept

cdef inline uint32_t sndbuf_space(const SendBuffer *b) noexcept nogil:
    return b.limit - b.len if b.limit > b.len else 0
