# cython: language_level=3
# SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012): a keyed
# 64-bit PRF with a 128-bit key, the hash Linux uses for ISNs and SYN cookies. Written from the
# paper's description; tests/test_isn.py checks it against the paper's 64 test vectors
# (key 00..0f, message 00..n-1).
#
# The key is two little-endian 64-bit words: k0 = bytes 0..7 of the key, k1 = bytes 8..15.
# The result is the 64-bit integer whose little-endian encoding is the paper's output.
#
# Hot callers hash a few whole words (siphash24_words, siphash24_tuple): no byte loads, no
# tail, fully inlined; the state lives in registers.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef struct SipState:
    uint64_t v0, v1, v2, v3

cdef inline uint64_t _sip_rotl(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))

cdef inline void _sip_round(SipState *s) noexcept nogil:
    s.v0 += s.v1
    s.v1 = _sip_rotl(s.v1, 13)
    s.v1 ^= s.v0
    s.v0 = _sip_rotl(s.v0, 32)
    s.v2 += s.v3
    s.v3 = _sip_rotl(s.v3, 16)
    s.v3 ^= s.v2
    s.v0 += s.v3
    s.v3 = _sip_rotl(s.v3, 21)
    s.v3 ^= s.v0
    s.v2 += s.v1
    s.v1 = _sip_rotl(s.v1, 17)
    s.v1 ^= s.v2
    s.v2 = _sip_rotl(s.v2, 32)

cdef inline void _sip_init(SipState *s, uint64_t k0, uint64_t k1) noexcept nogil:
    # The constants spell "somepseudorandomlygeneratedbytes".
    s.v0 = k0 ^ <uint64_t>0x736f6d6570736575ULL
    s.v1 = k1 ^ <uint64_t>0x646f72616e646f6dULL
    s.v2 = k0 ^ <uint64_t>0x6c7967656e657261ULL
    s.v3 = k1 ^ <uint64_t>0x7465646279746573ULL

cdef inline void _sip_compress(SipState *s, uint64_t m) noexcept nogil:
    """One message word, c = 2 rounds."""
    s.v3 ^= m
    _sip_round(s)
    _sip_round(s)
    s.v0 ^= m

cdef inline uint64_t _sip_finish(SipState *s, uint64_t last) noexcept nogil:
    """The last word (length byte << 56 | tail bytes), then d = 4 finalization rounds."""
    _sip_compress(s, last)
    s.v2 ^= 0xff
    _sip_round(s)
    _sip_round(s)
    _sip_round(s)
    _sip_round(s)
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3

cdef inline uint64_t _sip_load_le64(const uint8_t *p) noexcept nogil:
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
            | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))

cdef inline uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *data,
                               size_t n) noexcept nogil:
    """SipHash-2-4 of n bytes: the general form (any length, byte-exact per the paper)."""
    cdef SipState s
    cdef size_t i = 0
    cdef size_t whole = n & ~(<size_t>7)
    cdef uint64_t last = (<uint64_t>n) << 56
    cdef int shift = 0
    _sip_init(&s, k0, k1)
    while i < whole:
        _sip_compress(&s, _sip_load_le64(data + i))
        i += 8
    while i < n:
        last |= (<uint64_t>data[i]) << shift
        shift += 8
        i += 1
    return _sip_finish(&s, last)

cdef inline uint64_t siphash24_words(uint64_t k0, uint64_t k1, const uint64_t *w,
                                     size_t n) noexcept nogil:
    """SipHash-2-4 of n 64-bit words: equal to siphash24 over their 8n-byte little-endian
    encoding, on any host."""
    cdef SipState s
    cdef size_t i
    _sip_init(&s, k0, k1)
    for i in range(n):
        _sip_compress(&s, w[i])
    return _sip_finish(&s, (<uint64_t>(8 * n)) << 56)

cdef inline uint64_t siphash24_tuple(uint64_t k0, uint64_t k1,
                                     uint32_t saddr, uint16_t sport,
                                     uint32_t daddr, uint16_t dport,
                                     uint32_t x, uint64_t y) noexcept nogil:
    """SipHash-2-4 of a 4-tuple and two extra words, as three 64-bit words (24 bytes):
        w0 = saddr << 32 | daddr
        w1 = sport << 48 | dport << 32 | x
        w2 = y
    Addresses and ports are taken as the caller holds them (host or network order, but the
    same order at every call that must agree)."""
    cdef uint64_t w[3]
    w[0] = (<uint64_t>saddr << 32) | daddr
    w[1] = (<uint64_t>sport << 48) | (<uint64_t>dport << 32) | x
    w[2] = y
    return siphash24_words(k0, k1, w, 3)
