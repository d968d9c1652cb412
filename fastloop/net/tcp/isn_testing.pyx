# cython: language_level=3
"""Python-facing wrappers of net/tcp's SipHash, ISN and SYN-cookie helpers, for the tests.
The stack itself cimports the .pxd functions; nothing here is on a packet path."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.net.tcp.siphash cimport siphash24, siphash24_words, siphash24_tuple
from fastloop.net.tcp.isn cimport (TcpSecrets, tcp_secrets_from_bytes, tcp_isn,
                                   TCP_SECRETS_BYTES, TCP_ISN_TICK_NS)
from fastloop.net.tcp.syncookie cimport (
    SYNCOOKIE_MSS, SYNCOOKIE_MSS_COUNT, SYNCOOKIE_PERIOD_NS, SYNCOOKIE_T_SHIFT,
    SYNCOOKIE_T_MASK, SYNCOOKIE_MSS_SHIFT, SYNCOOKIE_MSS_MASK, SYNCOOKIE_MAC_MASK,
    SYNCOOKIE_TS_BITS, syncookie_mss_index, syncookie_mss_clamp, syncookie_make,
    syncookie_check, syncookie_unmask, syncookie_ts_make, syncookie_ts_options)

MSS_TABLE = tuple(SYNCOOKIE_MSS[i] for i in range(SYNCOOKIE_MSS_COUNT))
COOKIE_PERIOD_NS = SYNCOOKIE_PERIOD_NS
ISN_TICK_NS = TCP_ISN_TICK_NS
SECRETS_BYTES = TCP_SECRETS_BYTES
TS_OPTION_BITS = SYNCOOKIE_TS_BITS


def siphash(bytes key, bytes msg):
    """SipHash-2-4 of msg under a 16-byte key; the 64-bit result as an int (its
    little-endian bytes are the paper's output)."""
    if len(key) != 16:
        raise ValueError("key must be 16 bytes")
    cdef uint64_t k0 = int.from_bytes(key[:8], "little")
    cdef uint64_t k1 = int.from_bytes(key[8:], "little")
    return siphash24(k0, k1, <const uint8_t *>(<const char *>msg), len(msg))


def siphash_words(uint64_t k0, uint64_t k1, words):
    """SipHash-2-4 of up to 8 64-bit words."""
    cdef uint64_t w[8]
    cdef size_t n = len(words)
    if n > 8:
        raise ValueError("at most 8 words")
    for i in range(n):
        w[i] = words[i]
    return siphash24_words(k0, k1, w, n)


def siphash_tuple(uint64_t k0, uint64_t k1, uint32_t saddr, uint16_t sport,
                  uint32_t daddr, uint16_t dport, uint32_t x, uint64_t y):
    return siphash24_tuple(k0, k1, saddr, sport, daddr, dport, x, y)


cdef class Secrets:
    """A TcpSecrets, filled from SECRETS_BYTES bytes as the interface does from os.urandom."""
    cdef TcpSecrets s

    def __init__(self, bytes raw):
        if len(raw) != TCP_SECRETS_BYTES:
            raise ValueError(f"need {TCP_SECRETS_BYTES} bytes")
        tcp_secrets_from_bytes(&self.s, <const uint8_t *>(<const char *>raw))

    @property
    def words(self):
        return (self.s.k0, self.s.k1, self.s.c0, self.s.c1)


def isn(Secrets sec, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
        uint64_t now_ns):
    return tcp_isn(&sec.s, saddr, sport, daddr, dport, now_ns)


def mss_index(uint16_t client_mss):
    return syncookie_mss_index(client_mss)


def mss_clamp(uint16_t client_mss):
    return syncookie_mss_clamp(client_mss)


def cookie_make(Secrets sec, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
                uint32_t client_isn, uint16_t client_mss, uint64_t now_ns):
    return syncookie_make(&sec.s, saddr, sport, daddr, dport, client_isn, client_mss, now_ns)


def cookie_check(Secrets sec, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
                 uint32_t client_isn, uint32_t cookie, uint64_t now_ns):
    return syncookie_check(&sec.s, saddr, sport, daddr, dport, client_isn, cookie, now_ns)


def cookie_fields(Secrets sec, uint32_t saddr, uint16_t sport, uint32_t daddr,
                  uint16_t dport, uint32_t client_isn, uint32_t cookie):
    """(t mod 32, mss index, mac) of a cookie, once the mask is taken off."""
    cdef uint32_t x = syncookie_unmask(&sec.s, saddr, sport, daddr, dport, client_isn, cookie)
    return ((x >> SYNCOOKIE_T_SHIFT) & SYNCOOKIE_T_MASK,
            (x >> SYNCOOKIE_MSS_SHIFT) & SYNCOOKIE_MSS_MASK,
            x & SYNCOOKIE_MAC_MASK)


def forge(Secrets sec, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
          uint32_t client_isn, uint64_t now_ns, cookies):
    """Check every candidate cookie; returns (accepted, plausible): how many passed, and how
    many had a fresh time field and a valid MSS index, i.e. came down to the MAC."""
    cdef uint32_t c, x, age
    cdef uint64_t now_t = now_ns // SYNCOOKIE_PERIOD_NS
    cdef long accepted = 0, plausible = 0
    for c in cookies:
        if syncookie_check(&sec.s, saddr, sport, daddr, dport, client_isn, c, now_ns):
            accepted += 1
        x = syncookie_unmask(&sec.s, saddr, sport, daddr, dport, client_isn, c)
        age = (<uint32_t>now_t - (x >> SYNCOOKIE_T_SHIFT)) & SYNCOOKIE_T_MASK
        if age < 2 and ((x >> SYNCOOKIE_MSS_SHIFT) & SYNCOOKIE_MSS_MASK) < SYNCOOKIE_MSS_COUNT:
            plausible += 1
    return accepted, plausible


def ts_make(uint32_t ts_now, int wscale, bint sack_ok):
    return syncookie_ts_make(ts_now, wscale, sack_ok)


def ts_options(uint32_t ts_ecr):
    """(wscale or -1, sack_ok), or None when the echo is rejected."""
    cdef int wscale = -2
    cdef bint sack_ok = False
    if not syncookie_ts_options(ts_ecr, &wscale, &sack_ok):
        return None
    return wscale, bool(sack_ok)
