# cython: language_level=3
from libc.stdint cimport int64_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.net.wire.ipv4 cimport Ipv4Header

cdef class L4Protocol:
    """A transport the interface hands packets to (TCP, UDP). The interface knows only this
    base, so net/tcp and net/udp may import the interface without an import cycle."""
    # m is at the transport header, ip describes the packet; consumes m
    cdef void input(self, fl_mbuf *m, Ipv4Header *ip, bint broadcast, uint64_t now) noexcept
    # an ICMP error about a packet we sent; quote is the offending IP header + 8 bytes
    cdef void icmp_error(self, int type, int code, const unsigned char *quote, size_t n,
                         uint64_t now) noexcept
    # the end of a receive burst: what the burst's packets have for the application
    cdef void rx_done(self, uint64_t now) noexcept
    cdef void timers(self, uint64_t now) noexcept
    cdef void output(self, uint64_t now) noexcept     # before the interface's tx flush
    cdef int64_t held(self) noexcept                 # mbufs the protocol owns
    cdef void release_all(self) noexcept

# a callback-style sink's handler raised: keep the exception on target.errors (a list, if
# it has one) and print it (the pysinks of TCP and UDP)
cdef void report_handler_error(object target, str what) noexcept
