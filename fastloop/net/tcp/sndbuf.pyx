# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The send buffer's chunk queue (see sndbuf.pxd)."""
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cdef uint32_t Q_INIT = 8


cdef void sndbuf_init(SendBuffer *b, uint32_t limit) noexcept:
    b.q = NULL
    b.qcap = b.qhead = b.qlen = 0
    b.limit = limit
    b.len = 0
    b.cur_i = b.cur_off = 0


cdef inline SendChunk *_chunk(SendBuffer *b, uint32_t i) noexcept:
    return &b.q[(b.qhead + i) & (b.qcap - 1)]


cdef void _chunk_release(SendChunk *ch) noexcept:
    Py_XDECREF(ch.owner)
    free(ch.block)
    ch.owner = NULL
    ch.block = NULL


cdef void sndbuf_free(SendBuffer *b) noexcept:
    while b.qlen:
        _chunk_release(_chunk(b, 0))
        b.qhead = (b.qhead + 1) & (b.qcap - 1)
        b.qlen -= 1
    free(b.q)
    sndbuf_init(b, b.limit)


cdef SendChunk *_push(SendBuffer *b) noexcept:
    """A new chunk at the tail (zeroed); NULL when memory runs out."""
    cdef uint32_t cap, i
    cdef SendChunk *q
    if b.qlen == b.qcap:
        cap = b.qcap * 2 if b.qcap else Q_INIT
        q = <SendChunk *>malloc(cap * sizeof(SendChunk))
        if q == NULL:
            return NULL
        for i in range(b.qlen):
            q[i] = _chunk(b, i)[0]
        free(b.q)
        b.q = q
        b.qcap = cap
        b.qhead = 0
    cdef SendChunk *ch = &b.q[(b.qhead + b.qlen) & (b.qcap - 1)]
    ch.owner = NULL
    ch.block = NULL
    ch.data = NULL
    ch.len = ch.cap = ch.size = 0
    b.qlen += 1
    return ch


cdef uint32_t sndbuf_write(SendBuffer *b, const uint8_t *src, uint32_t n) noexcept:
    """Copy up to n bytes (as many as the limit allows) in; returns how many were taken."""
    cdef uint32_t take = min(n, sndbuf_space(b)), room, k, done = 0
    cdef SendChunk *ch
    if take == 0:
        return 0
    if b.qlen:                                     # the tail block's room first
        ch = _chunk(b, b.qlen - 1)
        if ch.owner == NULL and ch.cap > ch.len:
            k = min(take, ch.cap - ch.len)
            memcpy(<uint8_t *>ch.data + ch.len, src, k)
            ch.len += k
            done = k
    if done < take:
        ch = _push(b)
        if ch == NULL:
            b.len += done
            return done
        room = max(take - done, <uint32_t>SNDBUF_BLOCK)
        ch.block = <uint8_t *>malloc(room)
        if ch.block == NULL:
            b.qlen -= 1
            b.len += done
            return done
        ch.data = ch.block
        ch.cap = ch.size = room
        memcpy(ch.block, src + done, take - done)
        ch.len = take - done
    b.len += take
    return take


cdef uint32_t sndbuf_write_ref(SendBuffer *b, object owner, const uint8_t *src,
                               uint32_t n) noexcept:
    """Take up to n bytes at src, which live in the immutable `owner`, by reference."""
    cdef uint32_t take = min(n, sndbuf_space(b))
    cdef SendChunk *ch
    if take == 0:
        return 0
    ch = _push(b)
    if ch == NULL:
        return 0
    Py_INCREF(owner)
    ch.owner = <PyObject *>owner
    ch.data = src
    ch.len = ch.cap = take
    b.len += take
    return take


cdef void sndbuf_consume(SendBuffer *b, uint32_t n) noexcept:
    """Forget the n oldest bytes: the peer acknowledged them."""
    cdef SendChunk *ch
    cdef uint32_t k
    n = min(n, b.len)
    b.len -= n
    b.cur_i = b.cur_off = 0                        # the cursor counts from the head
    while n and b.qlen:
        ch = _chunk(b, 0)
        k = min(n, ch.len)
        ch.data += k
        ch.len -= k
        ch.cap -= k
        n -= k
        if ch.len == 0:
            if b.qlen == 1 and ch.owner == NULL:   # all acknowledged: the block is reused
                ch.data = ch.block                 # by the next write (request/response
                ch.cap = ch.size                   # traffic would allocate one per write)
                break
            _chunk_release(ch)
            b.qhead = (b.qhead + 1) & (b.qcap - 1)
            b.qlen -= 1


cdef void sndbuf_copy(SendBuffer *b, uint32_t offset, uint8_t *dst, uint32_t n) noexcept:
    """Copy n bytes starting `offset` bytes after the oldest one (offset + n <= len)."""
    cdef uint32_t i = 0, start = 0, k
    cdef SendChunk *ch
    if offset >= b.cur_off and b.cur_i < b.qlen:   # sequential sends: from the cursor
        i = b.cur_i
        start = b.cur_off
    while i < b.qlen and n:
        ch = _chunk(b, i)
        if offset < start + ch.len:
            k = min(n, start + ch.len - offset)
            memcpy(dst, ch.data + (offset - start), k)
            dst += k
            offset += k
            n -= k
            if n == 0:
                break
        start += ch.len
        i += 1
    b.cur_i = i
    b.cur_off = start
