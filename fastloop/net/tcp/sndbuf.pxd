# cython: language_level=3
# The send buffer: what the application wrote and the peer has not yet acknowledged, as a
# queue of chunks in sequence order. A large write of an immutable bytes object is kept by
# reference (no copy: the one copy is into the segment's mbuf, as the kernel's one copy is
# into its skb); anything else is copied into blocks of ours. Segments are copied out of it
# at (re)transmission, so the buffer never holds mbufs and retransmission needs no
# reference counting.
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint32_t

cdef enum:
    SNDBUF_REF_MIN = 4096      # a write this large of a bytes object is kept by reference
    SNDBUF_BLOCK = 16384       # copied writes are gathered in blocks of (at least) this size

cdef struct SendChunk:
    PyObject *owner            # a bytes object holding data (a reference), or NULL: a block
    uint8_t *block             # ours (malloc), when owner is NULL
    const uint8_t *data        # the chunk's first byte not yet acknowledged
    uint32_t len               # bytes from data on
    uint32_t cap               # a block: bytes it holds from data on (len <= cap)
    uint32_t size              # a block: bytes allocated

cdef struct SendBuffer:
    SendChunk *q               # ring of chunks, oldest first
    uint32_t qcap              # a power of two (0: nothing allocated yet)
    uint32_t qhead
    uint32_t qlen
    uint32_t limit             # the most it may hold (SO_SNDBUF)
    uint32_t len               # bytes held: sent-unacknowledged plus unsent
    uint32_t cur_i             # sndbuf_copy's cursor: chunk qhead + cur_i starts at byte
    uint32_t cur_off           # cur_off of the buffer (sequential reads start there)

cdef void sndbuf_init(SendBuffer *b, uint32_t limit) noexcept
cdef void sndbuf_free(SendBuffer *b) noexcept
cdef uint32_t sndbuf_write(SendBuffer *b, const uint8_t *src, uint32_t n) noexcept
cdef uint32_t sndbuf_write_ref(SendBuffer *b, object owner, const uint8_t *src,
                               uint32_t n) noexcept
cdef void sndbuf_consume(SendBuffer *b, uint32_t n) noexcept
cdef void sndbuf_copy(SendBuffer *b, uint32_t offset, uint8_t *dst, uint32_t n) noexcept

cdef inline uint32_t sndbuf_space(const SendBuffer *b) noexcept nogil:
    return b.limit - b.len if b.limit > b.len else 0
