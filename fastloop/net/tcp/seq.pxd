# cython: language_level=3
# Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4): the only place sequence numbers
# are compared. Everything else says seq_lt(a, b), never a < b.
from libc.stdint cimport int32_t, uint32_t

ctypedef uint32_t seq_t

cdef inline bint seq_lt(seq_t a, seq_t b) noexcept nogil:
    return <int32_t>(a - b) < 0

cdef inline bint seq_le(seq_t a, seq_t b) noexcept nogil:
    return <int32_t>(a - b) <= 0

cdef inline bint seq_gt(seq_t a, seq_t b) noexcept nogil:
    return <int32_t>(a - b) > 0

cdef inline bint seq_ge(seq_t a, seq_t b) noexcept nogil:
    return <int32_t>(a - b) >= 0

cdef inline seq_t seq_max(seq_t a, seq_t b) noexcept nogil:
    return b if seq_lt(a, b) else a

cdef inline seq_t seq_min(seq_t a, seq_t b) noexcept nogil:
    return a if seq_lt(a, b) else b

cdef inline bint seq_in_window(seq_t s, seq_t start, uint32_t size) noexcept nogil:
    """start <= s < start + size, modulo 2**32."""
    return <uint32_t>(s - start) < size

cdef inline uint32_t seq_diff(seq_t later, seq_t earlier) noexcept nogil:
    """Bytes from earlier to later, when later is not before earlier."""
    return later - earlier
