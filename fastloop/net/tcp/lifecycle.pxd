# cython: language_level=3
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from fastloop.net.tcp.tcb cimport TcpConnection, TcpLayerBase
from fastloop.net.wire.tcp cimport TcpOptions

cdef TcpConnection conn_new(TcpLayerBase L, uint32_t laddr, uint16_t lport, uint32_t raddr,
                            uint16_t rport, int state, uint64_t now)
cdef void conn_negotiate(TcpLayerBase L, TcpConnection c, const TcpOptions *peer,
                         uint64_t now) noexcept
cdef void conn_remove(TcpLayerBase L, TcpConnection c, int error) noexcept
cdef void conn_reset(TcpLayerBase L, TcpConnection c, int error, uint64_t now) noexcept
cdef void conn_time_wait(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
