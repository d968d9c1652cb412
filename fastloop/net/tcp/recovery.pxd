# cython: language_level=3
# Loss recovery with SACK (RFC 6675 §5): the ACK side (recovery.pyx); output.pyx sends.
from libc.stdint cimport uint32_t, uint64_t
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.tcp.tcb cimport TcpConnection, TcpLayerBase
from fastloop.net.wire.tcp cimport TcpHeader

cdef uint32_t sack_ack_update(TcpLayerBase L, TcpConnection c, TcpHeader *h) noexcept
cdef void sack_cumulative_ack(TcpLayerBase L, TcpConnection c, seq_t ack, uint64_t now) noexcept
cdef void sack_duplicate_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void sack_on_rto(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void loss_probe_timer(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
