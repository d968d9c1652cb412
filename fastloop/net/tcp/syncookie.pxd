# cython: language_level=3
# SYN cookies (RFC 4987 §3.6): under a SYN flood a listener answers a SYN with a SYN-ACK whose
# ISN encodes what it must remember, keeps no state, and rebuilds the connection from the
# ACK that completes the handshake. D. J. Bernstein's scheme as Linux implements it
# (net/ipv4/syncookies.c): a time counter, an MSS index and a keyed hash.
#
# Cookie layout (the server ISN, 32 bits; implementation in syncookie.pyx):
#
#     cookie = x + H0                       (mod 2**32)
#     x      = t5 << 27 | mss_idx << 24 | mac
#       t5      = t mod 32, where t = now_ns // 64 s          bits 31..27
#       mss_idx = index into SYNCOOKIE_MSS (4 entries used)    bits 26..24
#       mac     = low 24 bits of SipHash-2-4(c0, c1;
#                   tuple, client_isn, 1 << 63 | t << 3 | mss_idx)  bits 23..0
#     H0     = low 32 bits of SipHash-2-4(c0, c1; tuple, client_isn, 0)
#
# H0 hides t5 and the MSS index, so the whole ISN is unpredictable off-path (RFC 6528) as
# Linux's cookie_hash(…, 0, 0) + sseq does; mac binds the tuple, the client's ISN, the full
# time counter (not just t mod 32) and the MSS index. The check accepts a cookie made in
# period t or t-1 (64 to 128 s old at most). A random 32-bit value passes with probability
# 2/32 (time) × 4/8 (index) × 2**-24 (mac) = 2**-29 ≈ 1.9e-9.
#
# "tuple" is (saddr, sport) ours and (daddr, dport) the peer's, as in tcp_isn(). On the
# completing ACK: client_isn = SEG.SEQ - 1 and cookie = SEG.ACK - 1.
#
# Window scale and SACK-permitted do not fit in 32 bits; when the SYN carried timestamps they
# ride in the low bits of our TSval, which the peer echoes in TSecr (Linux's
# cookie_init_timestamp). TSval layout:
#
#     bits 3..0   the peer's window-scale shift 0..14, or 15: the SYN had no Window Scale
#     bit  4      the SYN had SACK-permitted
#     bit  5      reserved, sent as 0 (Linux: ECN); an echo with it set is rejected
#     bits 31..6  the TS clock (ts_now) rounded down to 64 ticks, minus 64 when the option
#                 bits would otherwise put TSval ahead of ts_now: TSval never runs ahead of
#                 the clock, so later TSvals stay monotonic (RFC 7323 §5.4)
#
# Without timestamps the connection gets no window scaling and no SACK (RFC 4987 §3.6).
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.tcp.isn cimport TcpSecrets

cdef extern from *:
    """
    /* Linux's IPv4 msstab: RFC 9293's 536 default, tunnels/IPsec, PPPoE-ish, Ethernet. */
    static const uint16_t fl_syncookie_mss[4] = {536, 1300, 1440, 1460};
    #define FL_SYNCOOKIE_PERIOD_NS 64000000000ULL
    """
    const uint16_t SYNCOOKIE_MSS "fl_syncookie_mss"[4]
    const uint64_t SYNCOOKIE_PERIOD_NS "FL_SYNCOOKIE_PERIOD_NS"   # t = now_ns // this

cdef enum:
    SYNCOOKIE_MSS_COUNT = 4        # entries used in SYNCOOKIE_MSS (the field holds 8)
    SYNCOOKIE_MAX_AGE = 2          # accept periods t and t-1
    SYNCOOKIE_T_SHIFT = 27
    SYNCOOKIE_T_MASK = 31
    SYNCOOKIE_MSS_SHIFT = 24
    SYNCOOKIE_MSS_MASK = 7
    SYNCOOKIE_MAC_MASK = 0xffffff
    SYNCOOKIE_TS_BITS = 6          # TSval bits carrying options
    SYNCOOKIE_TS_WSCALE_MASK = 0xf
    SYNCOOKIE_TS_WSCALE_NONE = 0xf
    SYNCOOKIE_TS_SACK = 0x10
    SYNCOOKIE_TS_RESERVED = 0x20
    SYNCOOKIE_TS_MAX_WSCALE = 14   # RFC 7323 §2.3

cdef inline int syncookie_mss_index(uint16_t client_mss) noexcept nogil:
    """Index of the largest table MSS <= client_mss; 0 (536) when the client's is smaller.
    A SYN without an MSS option means 536 (RFC 9293 §3.7.1): pass 536."""
    cdef int i = SYNCOOKIE_MSS_COUNT - 1
    while i > 0 and SYNCOOKIE_MSS[i] > client_mss:
        i -= 1
    return i

cdef inline uint16_t syncookie_mss_clamp(uint16_t client_mss) noexcept nogil:
    """The MSS syncookie_check() will return for a cookie made with client_mss."""
    return SYNCOOKIE_MSS[syncookie_mss_index(client_mss)]

cdef seq_t syncookie_make(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                          uint32_t daddr, uint16_t dport, seq_t client_isn,
                          uint16_t client_mss, uint64_t now_ns) noexcept nogil
cdef int syncookie_check(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                         uint32_t daddr, uint16_t dport, seq_t client_isn,
                         seq_t cookie, uint64_t now_ns) noexcept nogil
cdef uint32_t syncookie_unmask(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                               uint32_t daddr, uint16_t dport, seq_t client_isn,
                               seq_t cookie) noexcept nogil

cdef inline uint32_t syncookie_ts_make(uint32_t ts_now, int wscale, bint sack_ok) noexcept nogil:
    """Our SYN-ACK's TSval carrying the SYN's options: wscale = the peer's shift, or -1 when
    the SYN had no Window Scale option (a shift above 14 is taken as 14, RFC 7323 §2.3)."""
    cdef uint32_t opts
    cdef uint32_t low = (<uint32_t>1 << SYNCOOKIE_TS_BITS) - 1
    cdef uint32_t ts
    if wscale < 0:
        opts = SYNCOOKIE_TS_WSCALE_NONE
    elif wscale > SYNCOOKIE_TS_MAX_WSCALE:
        opts = SYNCOOKIE_TS_MAX_WSCALE
    else:
        opts = <uint32_t>wscale
    if sack_ok:
        opts |= SYNCOOKIE_TS_SACK
    ts = (ts_now & ~low) | opts
    if opts > (ts_now & low):
        ts -= low + 1    # modulo 2**32, like every TS value
    return ts

cdef inline bint syncookie_ts_options(uint32_t ts_ecr, int *wscale, bint *sack_ok) noexcept nogil:
    """Decode the options from the TSecr of the completing ACK. 0 when the echo cannot be one
    of ours (reserved bit set); else sets *wscale (-1: none) and *sack_ok and returns 1."""
    cdef uint32_t ws = ts_ecr & SYNCOOKIE_TS_WSCALE_MASK
    if ts_ecr & SYNCOOKIE_TS_RESERVED:
        return 0
    wscale[0] = -1 if ws == SYNCOOKIE_TS_WSCALE_NONE else <int>ws
    sack_ok[0] = (ts_ecr & SYNCOOKIE_TS_SACK) != 0
    return 1
