# cython: language_level=3
# Initial sequence numbers, RFC 6528 §3:
#     ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
# M is a 4-microsecond timer (so the ISN of a given 4-tuple advances 250,000 per second and
# wraps every ~4.77 hours, RFC 9293 §3.4.1); F is SipHash-2-4 keyed with a per-stack secret,
# as in Linux's secure_tcp_seq(). F is fixed for a tuple, so successive incarnations of one
# connection get increasing ISNs, while an off-path attacker who does not know the key cannot
# predict the ISN of any tuple from another.
#
# net/tcp reads no clock and no RNG (ARCHITECTURE.md): `now_ns` comes from the loop step and
# the secrets from the interface, which fills a TcpSecrets once per stack from os.urandom(32)
# (tcp_secrets_from_bytes). Given the same inputs the result is the same: tests and
# simulations are deterministic.
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.tcp.siphash cimport siphash24_tuple, _sip_load_le64

cdef struct TcpSecrets:
    uint64_t k0, k1     # ISN key: F's secretkey (RFC 6528 §3)
    uint64_t c0, c1     # SYN-cookie key (syncookie.pxd); independent of the ISN key

cdef enum:
    TCP_SECRETS_BYTES = 32    # what tcp_secrets_from_bytes reads: k0, k1, c0, c1 (LE words)
    TCP_ISN_TICK_NS = 4000    # RFC 6528's 4-microsecond timer

cdef inline void tcp_secrets_from_bytes(TcpSecrets *s, const uint8_t *b) noexcept nogil:
    """Fill the secrets from TCP_SECRETS_BYTES random bytes (little-endian words, the same
    on every host): k0 = b[0:8], k1 = b[8:16], c0 = b[16:24], c1 = b[24:32]."""
    s.k0 = _sip_load_le64(b)
    s.k1 = _sip_load_le64(b + 8)
    s.c0 = _sip_load_le64(b + 16)
    s.c1 = _sip_load_le64(b + 24)

@cython.cdivision(True)
cdef inline seq_t tcp_isn(const TcpSecrets *s, uint32_t saddr, uint16_t sport,
                          uint32_t daddr, uint16_t dport, uint64_t now_ns) noexcept nogil:
    """The ISN for a connection from (saddr, sport), ours, to (daddr, dport), the peer's, at
    now_ns (the loop's monotonic clock). Addresses and ports in any one consistent order."""
    cdef uint32_t m = <uint32_t>(now_ns / <uint64_t>TCP_ISN_TICK_NS)
    cdef uint32_t f = <uint32_t>siphash24_tuple(s.k0, s.k1, saddr, sport, daddr, dport, 0, 0)
    return <seq_t>(m + f)
