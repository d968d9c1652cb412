# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Birth and death of a connection: table entry, option negotiation, removal, TIME-WAIT."""
from libc.stdint cimport uint8_t
from fastloop.net.wire.tcp cimport TCP_RST, TCP_ACK
from fastloop.net.tcp.sndbuf cimport sndbuf_free
from fastloop.net.tcp.rcvbuf cimport rcvbuf_init, rcvbuf_release
from fastloop.net.tcp.congestion cimport cc_init, cc_on_syn_lost, CcAlgorithm
from fastloop.net.tcp.output cimport send_ack, send_segment, ts_offset_for
from fastloop.net.tcp.counters cimport *
from fastloop.net.tcp.tcb cimport *

cdef enum:
    PEER_MSS_MIN = 64          # floor on the MSS a peer announces (Linux: tcp_min_snd_mss 48)


cdef uint8_t window_shift(uint32_t bufsize) noexcept:
    """The smallest shift that lets the whole buffer be advertised (RFC 7323 §2.3), <= 14."""
    cdef uint8_t s = 0
    while s < 14 and (<uint32_t>65535 << s) < bufsize:
        s += 1
    return s


cdef TcpConnection conn_new(TcpLayerBase L, uint32_t laddr, uint16_t lport, uint32_t raddr,
                            uint16_t rport, int state, uint64_t now):
    """A connection in the table with our side's parameters; the peer's come with its SYN."""
    cdef TcpConnection c = TcpConnection.__new__(TcpConnection)
    c.layer = L
    c.local_addr = laddr
    c.local_port = lport
    c.remote_addr = raddr
    c.remote_port = rport
    c.state = state
    c.snd.limit = L.sndbuf_size
    if not rcvbuf_init(&c.rcv, L.rcvbuf_size, &L.ooo_budget):
        raise MemoryError()
    c.rcv_mss = <uint16_t>(L.iface.mtu - 40)           # IPv4 and TCP headers, no options
    c.mss = 536 if c.rcv_mss > 536 else c.rcv_mss      # until the peer's SYN says more
    c.rcv_wscale = window_shift(L.rcvbuf_max)         # the window the buffer may grow to
    c.rcv_tune_time = now
    c.ts_offset = ts_offset_for(L, laddr, lport, raddr, rport)
    c.rto_ns = L.rto_initial_ns
    c.quickacks = 16                                   # ACK the first segments at once
    c.last_activity = now
    c.keepalive_idle_ns = 0
    c.keepalive_interval_ns = 75 * 1000000000
    c.keepalive_count = 9
    cc_init(&c.cc, <CcAlgorithm>L.cc_algorithm, c.mss, now)
    L.connections.add(laddr, lport, raddr, rport, c)
    return c


cdef void conn_negotiate(TcpLayerBase L, TcpConnection c, const TcpOptions *peer,
                         uint64_t now) noexcept:
    """Settle the options from the peer's SYN (we offered all of them on ours, or answer
    only what was offered on a SYN-ACK)."""
    c.peer_mss = peer.mss if peer.mss else 536         # RFC 9293 §3.7.1: 536 when absent
    if c.peer_mss < PEER_MSS_MIN:                      # a hostile MSS of 1 would make a
        c.peer_mss = PEER_MSS_MIN                      # segment per byte (and mss - 12 wrap)
    if peer.wscale >= 0:                               # RFC 7323 §2.2: both or neither
        c.rcv_wscale_ok = True
        c.snd_wscale = <uint8_t>peer.wscale
    else:
        c.rcv_wscale_ok = False
        c.snd_wscale = 0
        c.rcv_wscale = 0
    c.ts_ok = peer.has_timestamps                      # RFC 7323 §3.2
    if c.ts_ok:
        c.ts_recent = peer.ts_val
        c.ts_recent_time = now
    c.sack_ok = peer.sack_permitted                    # RFC 2018 §2
    c.mss = min(c.peer_mss, c.rcv_mss) - (12 if c.ts_ok else 0)
    cc_init(&c.cc, <CcAlgorithm>L.cc_algorithm, c.mss, now)
    if c.syn_retries:                                  # RFC 6928 §2, RFC 5681 §3.1: our SYN
        cc_on_syn_lost(&c.cc)                          # was retransmitted: IW is one segment


cdef void _cancel_timers(TcpLayerBase L, TcpConnection c) noexcept:
    L.wheel.cancel(&c.t_retransmit)
    L.wheel.cancel(&c.t_delayed_ack)
    L.wheel.cancel(&c.t_persist)
    L.wheel.cancel(&c.t_keepalive)
    L.wheel.cancel(&c.t_lifetime)
    L.wheel.cancel(&c.t_loss_probe)


cdef void conn_remove(TcpLayerBase L, TcpConnection c, int error) noexcept:
    """Forget the connection (timers, buffers, table entry) and tell its sink."""
    c.deliver_data()                               # data of this burst first (asyncio's order)
    if c.state == CLOSED:                          # the application aborted it meanwhile
        return
    _cancel_timers(L, c)
    rcvbuf_release(&c.rcv, L.iface)
    sndbuf_free(&c.snd)
    if c.state == TIME_WAIT:
        L.time_wait_count -= 1
    if c.listener is not None:
        c.listener.half_open -= 1
        c.listener = None
    L.connections.discard(c.local_addr, c.local_port, c.remote_addr, c.remote_port, c)
    if L.last_conn is c:
        L.last_conn = None
    c.state = CLOSED
    if error:
        c.error = error
    c.notify_closed(error)


cdef void conn_reset(TcpLayerBase L, TcpConnection c, int error, uint64_t now) noexcept:
    """ABORT (RFC 9293 §3.10.5): <SEQ=SND.NXT><CTL=RST> in a synchronized state, then gone.
    RFC 9293's SND.NXT is our snd_max: after an RTO snd_nxt is the go-back pointer, below
    what the peer may hold, where a RST is out of its window (RFC 5961 §3.2)."""
    if c.state >= SYN_RECEIVED and c.state != TIME_WAIT:
        send_segment(L, c, c.snd_max, 0, TCP_RST | TCP_ACK, now)
        L.stats[TCP_RST_OUT] += 1
    conn_remove(L, c, error)


cdef void conn_time_wait(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """TIME-WAIT (RFC 9293 §3.6): only the table entry stays, for 2*MSL, to answer a
    retransmitted FIN; the application sees the connection closed now. At time_wait_max
    entries the connection closes without it, counted, as Linux does past tcp_max_tw_buckets:
    a churn of 40k connections/s would otherwise hold 2.4M entries for the 60 s."""
    if L.time_wait_count >= L.time_wait_max:
        if c.ack_pending:                          # the peer's FIN is ACKed all the same
            send_ack(L, c, now)
        L.stats[TCP_TIME_WAIT_OVERFLOWS] += 1
        conn_remove(L, c, 0)
        return
    c.deliver_data()
    if c.state == CLOSED:                          # the application aborted it meanwhile
        return
    L.time_wait_count += 1
    _cancel_timers(L, c)
    rcvbuf_release(&c.rcv, L.iface)
    sndbuf_free(&c.snd)
    c.state = TIME_WAIT
    L.wheel.arm(&c.t_lifetime, now + L.time_wait_ns)
    c.notify_closed(0)
