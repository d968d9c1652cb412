# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# SYN cookies: make and check. The layout and its reasoning are in syncookie.pxd.
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.tcp.isn cimport TcpSecrets
from fastloop.net.tcp.siphash cimport siphash24_tuple

cdef inline uint32_t _h0(const TcpSecrets *s, uint32_t saddr, uint16_t sport, uint32_t daddr,
                         uint16_t dport, seq_t client_isn) noexcept nogil:
    """The mask over the whole cookie: depends on no time and no MSS, so check can undo it."""
    return <uint32_t>siphash24_tuple(s.c0, s.c1, saddr, sport, daddr, dport, client_isn, 0)

cdef inline uint32_t _mac(const TcpSecrets *s, uint32_t saddr, uint16_t sport, uint32_t daddr,
                          uint16_t dport, seq_t client_isn, uint64_t t,
                          uint32_t mss_idx) noexcept nogil:
    """24-bit MAC over the tuple, the client ISN, the full time counter and the MSS index.
    Bit 63 of the last word separates it from _h0 (t < 2**29 for any uint64 now_ns)."""
    cdef uint64_t y = ((<uint64_t>1) << 63) | (t << 3) | mss_idx
    return (<uint32_t>siphash24_tuple(s.c0, s.c1, saddr, sport, daddr, dport, client_isn, y)
            & SYNCOOKIE_MAC_MASK)

cdef seq_t syncookie_make(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                          uint32_t daddr, uint16_t dport, seq_t client_isn,
                          uint16_t client_mss, uint64_t now_ns) noexcept nogil:
    """The server ISN for a SYN-ACK sent without keeping state (client_mss: the SYN's MSS
    option, or 536 without one; the cookie carries syncookie_mss_clamp(client_mss))."""
    cdef uint64_t t = now_ns / SYNCOOKIE_PERIOD_NS
    cdef uint32_t idx = <uint32_t>syncookie_mss_index(client_mss)
    cdef uint32_t x = (((<uint32_t>t & SYNCOOKIE_T_MASK) << SYNCOOKIE_T_SHIFT)
                       | (idx << SYNCOOKIE_MSS_SHIFT)
                       | _mac(s, saddr, sport, daddr, dport, client_isn, t, idx))
    return <seq_t>(x + _h0(s, saddr, sport, daddr, dport, client_isn))

cdef uint32_t syncookie_unmask(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                               uint32_t daddr, uint16_t dport, seq_t client_isn,
                               seq_t cookie) noexcept nogil:
    """x of the layout: t5 | mss_idx | mac in the clear (for checks and tests)."""
    return <uint32_t>(cookie - _h0(s, saddr, sport, daddr, dport, client_isn))

cdef int syncookie_check(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                         uint32_t daddr, uint16_t dport, seq_t client_isn,
                         seq_t cookie, uint64_t now_ns) noexcept nogil:
    """The MSS a valid cookie carries, or 0 when it is forged, altered or expired.
    client_isn = SEG.SEQ - 1 and cookie = SEG.ACK - 1 of the ACK completing the handshake."""
    cdef uint64_t now_t = now_ns / SYNCOOKIE_PERIOD_NS
    cdef uint32_t x = syncookie_unmask(s, saddr, sport, daddr, dport, client_isn, cookie)
    cdef uint32_t age = (<uint32_t>now_t - (x >> SYNCOOKIE_T_SHIFT)) & SYNCOOKIE_T_MASK
    cdef uint32_t idx = (x >> SYNCOOKIE_MSS_SHIFT) & SYNCOOKIE_MSS_MASK
    if age >= SYNCOOKIE_MAX_AGE or age > now_t:     # too old, or from before time 0
        return 0
    if idx >= SYNCOOKIE_MSS_COUNT:
        return 0
    if (x & SYNCOOKIE_MAC_MASK) != _mac(s, saddr, sport, daddr, dport, client_isn,
                                        now_t - age, idx):
        return 0
    return SYNCOOKIE_MSS[idx]
