# cython: language_level=3
# Send and receive buffers that grow for a fast flow (autotune.pyx).
from libc.stdint cimport uint64_t
from fastloop.net.tcp.tcb cimport TcpConnection, TcpLayerBase

cdef void rcvbuf_autotune(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void rcvbuf_reordered(TcpConnection c, uint64_t now) noexcept
cdef void sndbuf_autotune(TcpLayerBase L, TcpConnection c) noexcept
