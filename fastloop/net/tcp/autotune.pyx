# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Buffer autotuning: a connection starts with StackConfig.tcp_rcvbuf / tcp_sndbuf and grows
towards tcp_rcvbuf_max / tcp_sndbuf_max while a flow needs it, as Linux's tcp_rmem/tcp_wmem
(dynamic right-sizing: Semke, Mahdavi and Mathis, "Automatic TCP Buffer Tuning", 1998).

A window must cover the bandwidth-delay product, and on a shared-memory link the delay is
the receiver's processing of a burst: at 2.5 GB/s and 0.5 ms that is over 1 MB, four times
the 256 KiB that suits ten thousand slow connections. Growing only what a flow uses keeps
both: an application that reads slowly, or not at all, never makes its buffer grow.
"""
from libc.stdint cimport uint32_t
from fastloop.net.tcp.rcvbuf cimport OOO_MAX
from fastloop.net.tcp.counters cimport *
from fastloop.net.tcp.tcb cimport *

cdef uint64_t TUNE_MIN_NS = 1000000        # measure over at least 1 ms (the TS clock's tick)


cdef void rcvbuf_autotune(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """After in-order data: once per round trip, if the application read at least half the
    buffer in it, the window may be what holds the sender back: double the buffer. Never
    past what the reassembly queue holds (OOO_MAX full segments): a larger window's losses
    would be our own drops. An out-of-order segment starts the round trip again (rcvbuf_
    reordered): a flow that is losing segments is held back by that, not by the window."""
    cdef uint64_t period = max(c.srtt_ns, TUNE_MIN_NS)
    cdef uint64_t most = min(<uint64_t>L.rcvbuf_max, <uint64_t>OOO_MAX * c.rcv_mss)
    if c.rcv.limit >= most or now - c.rcv_tune_time < period:
        return
    if c.rcv_copied >= c.rcv.limit // 2:
        c.rcv.limit = <uint32_t>min(<uint64_t>c.rcv.limit * 2, most)
        L.stats[TCP_RCVBUF_GROWN] += 1
    c.rcv_copied = 0
    c.rcv_tune_time = now


cdef void rcvbuf_reordered(TcpConnection c, uint64_t now) noexcept:
    c.rcv_copied = 0
    c.rcv_tune_time = now


cdef void sndbuf_autotune(TcpLayerBase L, TcpConnection c) noexcept:
    """After new data is acknowledged: an application waiting for send space gets a buffer
    of twice what the network takes per round trip (the smaller of cwnd and the peer's
    window), so that one round trip's data is in flight while the next is written."""
    cdef uint64_t want
    if not c.send_space_wanted or c.snd.limit >= L.sndbuf_max:
        return
    want = 2 * <uint64_t>min(c.cc.cwnd, c.snd_wnd)
    if want > c.snd.limit:
        c.snd.limit = <uint32_t>min(want, <uint64_t>L.sndbuf_max)
        L.stats[TCP_SNDBUF_GROWN] += 1
