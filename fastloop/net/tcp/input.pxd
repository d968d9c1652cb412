# cython: language_level=3
from libc.stdint cimport uint64_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.tcp.tcb cimport TcpLayerBase

cdef void tcp_input(TcpLayerBase L, fl_mbuf *m, Ipv4Header *ip, uint64_t now) noexcept
