# cython: language_level=3
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.udp.endpoint cimport UdpLayerBase, UdpEndpoint

cdef void udp_input(UdpLayerBase L, fl_mbuf *m, Ipv4Header *ip, bint broadcast,
                    uint64_t now) noexcept
cdef void udp_icmp_error(UdpLayerBase L, int type, int code, const unsigned char *quote,
                         size_t n) noexcept
cdef void deliver(UdpLayerBase L, UdpEndpoint ep, fl_mbuf *m, uint32_t addr,
                  uint16_t port) noexcept
cdef int icmp_errno(int type, int code) noexcept
