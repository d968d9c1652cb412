# cython: language_level=3
from libc.stdint cimport uint64_t
from fastloop.net.tcp.tcb cimport TcpConnection, TcpLayerBase

cdef void rtt_sample(TcpLayerBase L, TcpConnection c, uint64_t rtt) noexcept
cdef void restart_keepalive(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void tcp_timers(TcpLayerBase L, uint64_t now) noexcept
