# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Every TCP timer, driven by the layer's timer wheel: retransmission (RFC 6298), delayed
ACK (RFC 1122 §4.2.3.2), persist (RFC 9293 §3.8.6.1), keepalive (RFC 1122 §4.2.3.6), and
the lifetime bound that ends TIME-WAIT, a connect attempt or a half-open connection."""
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.errno cimport ETIMEDOUT
from fastloop.net.timer_wheel cimport TimerNode, timer_armed
from fastloop.net.wire.tcp cimport TCP_ACK
from fastloop.net.tcp.congestion cimport cc_on_rto, cc_on_syn_lost
from fastloop.net.tcp.output cimport send_segment, send_ack, send_syn, tcp_output
from fastloop.net.tcp.lifecycle cimport conn_remove
from fastloop.net.tcp.recovery cimport sack_on_rto, loss_probe_timer
from fastloop.net.tcp.counters cimport *
from fastloop.net.tcp.tcb cimport *

cdef enum:
    FIRE_BATCH = 64                # timers handled per wheel advance


cdef void rtt_sample(TcpLayerBase L, TcpConnection c, uint64_t rtt) noexcept:
    """RFC 6298 §2.2-2.3: SRTT and RTTVAR with alpha 1/8, beta 1/4; RTO = SRTT + 4*RTTVAR."""
    cdef uint64_t delta
    if c.srtt_ns == 0:
        c.srtt_ns = rtt
        c.rttvar_ns = rtt // 2
    else:
        delta = c.srtt_ns - rtt if c.srtt_ns > rtt else rtt - c.srtt_ns
        c.rttvar_ns = (3 * c.rttvar_ns + delta) // 4
        c.srtt_ns = (7 * c.srtt_ns + rtt) // 8
    c.rto_ns = c.srtt_ns + max(<uint64_t>1000000, 4 * c.rttvar_ns)   # G: the 1 ms clock
    c.rto_ns = min(max(c.rto_ns, L.rto_min_ns), L.rto_max_ns)


cdef void restart_keepalive(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    c.last_activity = now
    c.keepalive_probes = 0
    if c.keepalive_idle_ns and not timer_armed(&c.t_keepalive):
        L.wheel.arm(&c.t_keepalive, now + c.keepalive_idle_ns)


cdef void retransmit_timer(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    if c.state == SYN_SENT or c.state == SYN_RECEIVED:
        if c.syn_retries >= L.syn_retries_max:
            if c.state == SYN_SENT:
                L.stats[TCP_FAILED_CONNECTS] += 1
            L.stats[TCP_TIMEOUTS] += 1
            conn_remove(L, c, ETIMEDOUT)
            return
        c.syn_retries += 1
        c.rto_ns = min(c.rto_ns * 2, L.rto_max_ns)
        cc_on_syn_lost(&c.cc)                      # RFC 6298 §5.7: IW of one segment
        L.stats[TCP_RETRANSMITS_SYN] += 1
        send_syn(L, c, now)
        return
    if c.snd_una == c.snd_max:
        return                                     # everything was acknowledged meanwhile
    if c.snd_wnd == 0 and c.snd.len:
        # the peer shrank its window to zero under data in flight: that data is beyond the
        # right edge, not lost; probe the window in the standard way and never time the
        # connection out for it (RFC 9293 §3.8.6, MUST-34/35, SHLD-17)
        c.snd_nxt = c.snd_una                      # all of it goes again when it opens
        c.rtt_active = False
        L.wheel.cancel(&c.t_loss_probe)
        persist_timer(L, c, now)
        return
    if c.backoff >= L.retries_max:                 # RFC 1122 §4.2.3.5: R2, give up
        L.stats[TCP_TIMEOUTS] += 1
        conn_remove(L, c, ETIMEDOUT)
        return
    # RFC 6298 §5.4-5.6: back off, go back to SND.UNA with a loss window (RFC 5681 §3.1)
    c.backoff += 1
    c.rto_ns = min(c.rto_ns * 2, L.rto_max_ns)
    cc_on_rto(&c.cc, c.flight(), now)
    c.in_recovery = False
    c.dupacks = 0
    c.recover = c.snd_max                          # RFC 6582 §3.2 step 4, RFC 6675 §5.1
    if c.sack_ok:
        sack_on_rto(L, c, now)
    c.rtt_active = False                           # Karn's rule
    c.snd_nxt = c.snd_una
    L.stats[TCP_RETRANSMITS_RTO] += 1
    tcp_output(L, c, now)
    if not timer_armed(&c.t_retransmit):
        L.wheel.arm(&c.t_retransmit, now + c.rto_ns)


cdef void persist_timer(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """Zero-window probe: a segment below the window (SEG.SEQ = SND.UNA - 1) makes the peer
    answer with its current window; probing goes on as long as it answers (RFC 1122
    §4.2.2.17)."""
    if c.snd.len <= c.snd_nxt - c.snd_una or c.state == CLOSED:
        c.persist_backoff = 0
        return
    if c.snd_wnd != 0:                             # the SWS override timeout: send what fits
        c.sws_override = True
        tcp_output(L, c, now)
        c.sws_override = False
        return
    L.stats[TCP_WINDOW_PROBES] += 1
    send_segment(L, c, c.snd_una - 1, 0, TCP_ACK, now)
    if c.persist_backoff < 16:
        c.persist_backoff += 1
    L.wheel.arm(&c.t_persist, now + min(c.rto_ns << c.persist_backoff, L.rto_max_ns))


cdef void keepalive_timer(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    if c.keepalive_idle_ns == 0 or c.state != ESTABLISHED and c.state != CLOSE_WAIT:
        return
    if now - c.last_activity < c.keepalive_idle_ns:
        L.wheel.arm(&c.t_keepalive, c.last_activity + c.keepalive_idle_ns)
        return
    if c.keepalive_probes >= c.keepalive_count:
        L.stats[TCP_TIMEOUTS] += 1
        conn_remove(L, c, ETIMEDOUT)
        return
    c.keepalive_probes += 1
    L.stats[TCP_KEEPALIVE_PROBES] += 1
    send_segment(L, c, c.snd_una - 1, 0, TCP_ACK, now)   # RFC 1122 §4.2.3.6
    L.wheel.arm(&c.t_keepalive, now + c.keepalive_interval_ns)


cdef void lifetime_timer(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    if c.state == SYN_SENT:
        L.stats[TCP_FAILED_CONNECTS] += 1
        L.stats[TCP_TIMEOUTS] += 1
        conn_remove(L, c, ETIMEDOUT)
    else:                                          # TIME-WAIT over, or an orphan's bound
        conn_remove(L, c, 0)


cdef void tcp_timers(TcpLayerBase L, uint64_t now) noexcept:
    """Fire what is due, a bounded batch at a time."""
    cdef TimerNode *fired[FIRE_BATCH]
    cdef uint32_t n, i
    cdef TcpConnection c
    cdef int rounds = 0
    while rounds < 16:
        n = L.wheel.advance(now, fired, FIRE_BATCH)
        # a handler may remove another connection of this batch: keep them all alive
        for i in range(n):
            Py_INCREF(<object>fired[i].owner)
        for i in range(n):
            c = <TcpConnection>fired[i].owner
            if c.state == CLOSED:
                continue
            if fired[i].kind == T_RETRANSMIT:
                retransmit_timer(L, c, now)
            elif fired[i].kind == T_DELAYED_ACK:
                if c.state != CLOSED and (c.ack_pending or c.segs_unacked):
                    L.stats[TCP_DELAYED_ACKS] += 1
                    send_ack(L, c, now)
            elif fired[i].kind == T_PERSIST:
                persist_timer(L, c, now)
            elif fired[i].kind == T_KEEPALIVE:
                keepalive_timer(L, c, now)
            elif fired[i].kind == T_LOSS_PROBE:
                loss_probe_timer(L, c, now)
            else:
                lifetime_timer(L, c, now)
        c = None
        for i in range(n):
            Py_DECREF(<object>fired[i].owner)
        if n < FIRE_BATCH:
            return
        rounds += 1
