# cython: language_level=3
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.tcp.tcb cimport TcpConnection, TcpLayerBase
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.wire.tcp cimport TcpHeader

cdef uint32_t ts_offset_for(TcpLayerBase L, uint32_t laddr, uint16_t lport, uint32_t raddr,
                            uint16_t rport) noexcept
cdef uint32_t ts_clock(TcpConnection c, uint64_t now) noexcept
cdef uint32_t rcv_window(TcpConnection c) noexcept
cdef bint send_segment(TcpLayerBase L, TcpConnection c, seq_t seq, uint32_t n, uint8_t flags,
                       uint64_t now) noexcept
cdef void send_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void send_syn(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void send_reset_reply(TcpLayerBase L, Ipv4Header *ip, TcpHeader *h, uint32_t seg_len,
                           uint64_t now) noexcept
cdef void send_challenge_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void send_cookie_synack(TcpLayerBase L, Ipv4Header *ip, TcpHeader *h, uint64_t now) noexcept
cdef uint32_t segment_payload_max(TcpConnection c) noexcept
cdef uint32_t send_new_segment(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void arm_loss_probe(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef uint32_t send_range(TcpLayerBase L, TcpConnection c, seq_t seq, uint32_t length,
                        uint64_t now) noexcept
cdef void retransmit_head(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
cdef void tcp_output(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept
