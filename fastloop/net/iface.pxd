# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.net.link cimport Link
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.wire.icmp cimport IcmpHeader
from fastloop.net.l4 cimport L4Protocol

cdef enum:
    ECHO_RESULTS = 1024          # echo replies kept for Python to collect

cdef struct EchoResult:
    uint32_t src
    uint16_t seq
    uint16_t size
    uint64_t rtt_ns

cdef class Interface(Link):
    """One IPv4 interface: input validation, routing, output, ICMP, stack-local loopback."""
    cdef uint32_t netmask
    cdef uint32_t network
    cdef uint32_t broadcast
    cdef uint32_t gateway                # 0: none
    cdef readonly uint16_t mtu
    cdef bint loopback                   # 127.0.0.0/8 is ours too
    cdef bint tx_ip_cksum                # the PMD fills the IPv4 header checksum
    cdef readonly bint tx_l4_cksum       # and the TCP/UDP checksums (from the pseudo-header sum)
    cdef uint16_t ip_ident
    cdef fl_mbuf **loopq                 # IPv4 packets to ourselves, delivered next step
    cdef uint32_t loopq_head
    cdef uint32_t loopq_len
    cdef uint32_t loopq_cap
    cdef public L4Protocol tcp           # attached by the TCP layer; None: segments dropped
    cdef public L4Protocol udp
    cdef uint16_t echo_ident
    cdef EchoResult echo_results[ECHO_RESULTS]
    cdef uint32_t echo_count

    cdef void ipv4_deliver(self, fl_mbuf *m, Ipv4Header *ip, bint broadcast,
                           uint64_t now) noexcept
    cdef void ip_output(self, fl_mbuf *m, uint32_t src, uint32_t dst, uint8_t protocol,
                        int l4_offload, uint64_t now) noexcept
    cdef void icmp_input(self, fl_mbuf *m, Ipv4Header *ip, uint64_t now) noexcept
    cdef void icmp_send_unreachable(self, fl_mbuf *orig, Ipv4Header *ip, uint8_t code,
                                    uint64_t now) noexcept
    cdef void loop_enqueue(self, fl_mbuf *m) noexcept
    cdef int64_t held(self) noexcept
    cdef void echo_reply_input(self, fl_mbuf *m, uint32_t src, IcmpHeader *h,
                               uint64_t now) noexcept
    cdef bint is_local(self, uint32_t dst) noexcept
    cdef bint has_route(self, uint32_t dst) noexcept
    cdef void icmp_error_input(self, fl_mbuf *m, IcmpHeader *h, uint64_t now) noexcept
    cdef uint32_t rx_step(self, uint64_t now) noexcept
    cdef uint32_t step(self, uint64_t now) noexcept
    cdef void timers(self, uint64_t now) noexcept
