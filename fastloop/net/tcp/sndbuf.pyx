# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The send buffer's byte ring (see sndbuf.pxd)."""
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cdef uint32_t MIN_CAP = 4096


cdef void sndbuf_init(SendBuffer *b, uint32_t limit) noexcept:
    b.data = NULL
    b.cap = 0
    b.limit = limit
    b.head = 0
    b.len = 0


cdef void sndbuf_free(SendBuffer *b) noexcept:
    free(b.data)
    b.data = NULL
    b.cap = 0
    b.len = 0
    b.head = 0


cdef bint _grow(SendBuffer *b, uint32_t need) noexcept:
    """Reallocate so `need` bytes fit; grows by doubling, starting small (most sends are small)."""
    cdef uint32_t cap = b.cap if b.cap else MIN_CAP
    while cap < need:
        cap <<= 1
    cdef uint8_t *data = <uint8_t *>malloc(cap)
    if data == NULL:
        return False
    if b.len:
        sndbuf_copy(b, 0, data, b.len)
    free(b.data)
    b.data = data
    b.cap = cap
    b.head = 0
    return True


cdef uint32_t sndbuf_write(SendBuffer *b, const uint8_t *src, uint32_t n) noexcept:
    """Append up to n bytes (as many as the limit allows); returns how many were taken."""
    cdef uint32_t take = min(n, sndbuf_space(b)), tail, first
    if take == 0:
        return 0
    if b.len + take > b.cap and not _grow(b, b.len + take):
        return 0
    tail = (b.head + b.len) & (b.cap - 1)
    first = min(take, b.cap - tail)
    memcpy(b.data + tail, src, first)
    memcpy(b.data, src + first, take - first)
    b.len += take
    return take


cdef void sndbuf_consume(SendBuffer *b, uint32_t n) noexcept:
    """Forget the n oldest bytes: the peer acknowledged them."""
    if n >= b.len:
        b.len = 0
        b.head = 0
        return
    b.head = (b.head + n) & (b.cap - 1)
    b.len -= n


cdef void sndbuf_copy(const SendBuffer *b, uint32_t offset, uint8_t *dst, uint32_t n) noexcept:
    """Copy n bytes starting `offset` bytes after the oldest one (offset + n <= len)."""
    cdef uint32_t start = (b.head + offset) & (b.cap - 1)
    cdef uint32_t first = min(n, b.cap - start)
    memcpy(dst, b.data + start, first)
    memcpy(dst + first, b.data, n - first)
