# cython: language_level=3
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.net.udp.endpoint cimport UdpLayerBase

# build one datagram (one copy of data, into a fresh mbuf) and hand it to IP; 0 or an errno
cdef int udp_send(UdpLayerBase L, uint32_t laddr, uint16_t lport, uint32_t raddr,
                  uint16_t rport, const uint8_t *data, uint32_t n, uint64_t now) noexcept
