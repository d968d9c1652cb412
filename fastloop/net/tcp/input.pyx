# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Segment arrival (RFC 9293 §3.10.7), in the RFC's step order.

tcp_input validates and demultiplexes; listen_input, syn_sent_input and synchronized_input
are §3.10.7.2, §3.10.7.3 and §3.10.7.4. The application hears of what happened only at the
end of a segment, in asyncio's order: data, then EOF, then closed.
"""
from cpython.ref cimport PyObject
from libc.errno cimport ECONNREFUSED, ECONNRESET
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from fastloop.includes.dpdk cimport (
    fl_mbuf, fl_mbuf_data, fl_mbuf_data_len, fl_mbuf_pkt_len, fl_mbuf_adj, fl_mbuf_trim,
    fl_mbuf_rx_l4_cksum_bad, fl_mbuf_rx_l4_cksum_good)
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.wire.tcp cimport (
    TcpHeader, TcpOptions, tcp_parse, tcp_checksum_ok, tcp_options_clear,
    TCP_OK, TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK)
from fastloop.net.timer_wheel cimport timer_armed
from fastloop.net.tcp.seq cimport seq_t, seq_lt, seq_le, seq_gt, seq_ge, seq_in_window
from fastloop.net.tcp.isn cimport tcp_isn
from fastloop.net.tcp.syncookie cimport syncookie_check, syncookie_ts_options
from fastloop.net.tcp.sndbuf cimport sndbuf_consume, sndbuf_space
from fastloop.net.tcp.rcvbuf cimport (
    OooResult, OOO_DUPLICATE, OOO_QUEUE_FULL, OOO_BUDGET_FULL, rcvbuf_append, ooo_insert, ooo_pull)
from fastloop.net.tcp.congestion cimport (
    cc_on_ack, cc_on_congestion, cc_on_recovery_exit, cc_window_full)
from fastloop.net.tcp.output cimport (
    ts_clock, send_ack, send_syn, send_reset_reply, send_challenge_ack, send_cookie_synack,
    retransmit_head)
from fastloop.net.tcp.lifecycle cimport (
    conn_new, conn_negotiate, conn_remove, conn_reset, conn_time_wait)
from fastloop.net.tcp.timers cimport rtt_sample, restart_keepalive
from fastloop.net.tcp.recovery cimport sack_ack_update, sack_cumulative_ack, sack_duplicate_ack
from fastloop.net.tcp.sack cimport sack_unsacked
from fastloop.net.tcp.autotune cimport rcvbuf_autotune, rcvbuf_reordered, sndbuf_autotune
from fastloop.net.tcp.counters cimport *
from fastloop.net.tcp.tcb cimport *

cdef uint64_t NS_PER_MS = 1000000
cdef uint64_t PAWS_IDLE_NS = 24 * 24 * 3600 * 1000000000   # RFC 7323 §5.5: 24 days

# what the application is told once the segment is processed
cdef enum:
    NOTE_DATA = 1
    NOTE_EOF = 2
    NOTE_TIME_WAIT = 4
    NOTE_ESTABLISHED = 8


cdef void tcp_input(TcpLayerBase L, fl_mbuf *m, Ipv4Header *ip, uint64_t now) noexcept:
    """m is at the TCP header and trimmed to the IP payload; consumes m."""
    cdef TcpHeader h
    cdef uint8_t *seg = fl_mbuf_data(m)
    cdef uint32_t n = fl_mbuf_data_len(m)
    L.stats[TCP_SEGMENTS_IN] += 1
    if fl_mbuf_rx_l4_cksum_bad(m) or (not fl_mbuf_rx_l4_cksum_good(m)
                                      and not tcp_checksum_ok(ip.src, ip.dst, seg, n)):
        L.stats[TCP_BAD_CHECKSUM] += 1
        L.iface.mbuf_free(m)
        return
    if tcp_parse(seg, n, &h) != TCP_OK:
        L.stats[TCP_BAD_HEADER] += 1
        L.iface.mbuf_free(m)
        return
    cdef uint32_t payload = n - h.header_len
    fl_mbuf_adj(m, h.header_len)
    cdef TcpConnection c = L.last_conn
    cdef PyObject *found
    if c is None or c.remote_port != h.src_port or c.local_port != h.dst_port \
            or c.remote_addr != ip.src or c.local_addr != ip.dst:
        found = L.connections.find(ip.dst, h.dst_port, ip.src, h.src_port)
        c = <TcpConnection>found if found != NULL else None
        if c is not None:
            L.last_conn = c
    if c is not None and c.state == TIME_WAIT and _time_wait_reuse(L, c, &h):
        c = None                                   # RFC 6191: a new incarnation
    if c is None:
        _no_connection(L, m, ip, &h, payload, now)
    elif c.state == SYN_SENT:
        syn_sent_input(L, c, m, ip, &h, now)
    else:
        synchronized_input(L, c, m, ip, &h, payload, now)


cdef bint _time_wait_reuse(TcpLayerBase L, TcpConnection c, TcpHeader *h) noexcept:
    """A SYN may end TIME-WAIT if it is clearly newer: a greater timestamp, or (without
    timestamps) a greater sequence number (RFC 6191 §2, RFC 9293 §3.10.7.4)."""
    if (h.flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN:
        return False
    if c.ts_ok and h.opt.has_timestamps:
        if not seq_gt(h.opt.ts_val, c.ts_recent):
            return False
    elif not seq_gt(h.seq, c.rcv_nxt):
        return False
    L.stats[TCP_TIME_WAIT_REUSED] += 1
    conn_remove(L, c, 0)
    return True


cdef void _no_connection(TcpLayerBase L, fl_mbuf *m, Ipv4Header *ip, TcpHeader *h,
                         uint32_t payload, uint64_t now) noexcept:
    cdef TcpListener lst = L.listeners.get((ip.dst, h.dst_port))
    if lst is None:
        lst = L.listeners.get((0, h.dst_port))
    if lst is None:                                # RFC 9293 §3.10.7.1: CLOSED
        L.stats[TCP_NO_LISTENER] += 1
        send_reset_reply(L, ip, h, payload + (1 if h.flags & TCP_SYN else 0)
                         + (1 if h.flags & TCP_FIN else 0), now)
        L.iface.mbuf_free(m)
        return
    listen_input(L, lst, m, ip, h, payload, now)


# ---- LISTEN (RFC 9293 §3.10.7.2) -----------------------------------------------------------
cdef void listen_input(TcpLayerBase L, TcpListener lst, fl_mbuf *m, Ipv4Header *ip,
                       TcpHeader *h, uint32_t payload, uint64_t now) noexcept:
    cdef TcpConnection c
    if h.flags & TCP_RST:
        L.iface.mbuf_free(m)
        return
    if h.flags & TCP_ACK:
        if not (h.flags & TCP_SYN) and L.syncookies:
            c = _cookie_connection(L, lst, ip, h, now)
            if c is not None:
                synchronized_input(L, c, m, ip, h, payload, now)
                return
        send_reset_reply(L, ip, h, payload, now)
        L.iface.mbuf_free(m)
        return
    if not (h.flags & TCP_SYN) or lst.closed:
        L.iface.mbuf_free(m)
        return
    L.iface.mbuf_free(m)                           # data on a SYN is not kept: it comes again
    if lst.half_open >= lst.backlog:
        if L.syncookies:
            send_cookie_synack(L, ip, h, now)
        else:
            L.stats[TCP_LISTEN_OVERFLOWS] += 1
        return
    try:
        c = conn_new(L, ip.dst, h.dst_port, ip.src, h.src_port, SYN_RECEIVED, now)
    except MemoryError:
        return
    c.listener = lst
    lst.half_open += 1
    c.irs = h.seq
    c.rcv_nxt = h.seq + 1
    c.rcv_adv = c.rcv_nxt
    c.iss = tcp_isn(&L.secrets, ip.dst, h.dst_port, ip.src, h.src_port, now)
    c.snd_una = c.iss
    c.snd_nxt = c.iss + 1
    c.snd_max = c.snd_nxt
    conn_negotiate(L, c, &h.opt, now)
    c.snd_wnd = h.window                           # RFC 7323 §2.2: a SYN's window is unscaled
    c.max_snd_wnd = c.snd_wnd
    c.snd_wl1 = h.seq
    c.rtt_start = now
    send_syn(L, c, now)
    L.wheel.arm(&c.t_lifetime, now + L.connect_timeout_ns)   # bound a half-open connection


cdef TcpConnection _cookie_connection(TcpLayerBase L, TcpListener lst, Ipv4Header *ip,
                                      TcpHeader *h, uint64_t now):
    """The ACK completing a handshake whose SYN-ACK carried a SYN cookie (RFC 4987 §3.6)."""
    cdef TcpOptions peer
    cdef int wscale = -1
    cdef bint sack = False
    cdef int mss = syncookie_check(&L.secrets, ip.dst, h.dst_port, ip.src, h.src_port,
                                   h.seq - 1, h.ack - 1, now)
    if mss == 0 or lst.closed:
        L.stats[TCP_SYNCOOKIES_FAILED] += 1
        return None
    if h.opt.has_timestamps and not syncookie_ts_options(h.opt.ts_ecr, &wscale, &sack):
        L.stats[TCP_SYNCOOKIES_FAILED] += 1
        return None
    L.stats[TCP_SYNCOOKIES_OK] += 1
    tcp_options_clear(&peer)
    peer.mss = <uint16_t>mss
    peer.wscale = wscale
    peer.sack_permitted = sack
    peer.has_timestamps = h.opt.has_timestamps
    peer.ts_val = h.opt.ts_val
    try:
        c = conn_new(L, ip.dst, h.dst_port, ip.src, h.src_port, SYN_RECEIVED, now)
    except MemoryError:
        return None
    c.rcv_wscale = 0                               # the cookie's SYN-ACK offered shift 0
    conn_negotiate(L, c, &peer, now)
    c.rcv_wscale = 0
    c.listener = lst
    lst.half_open += 1
    c.irs = h.seq - 1
    c.rcv_nxt = h.seq
    c.rcv_adv = c.rcv_nxt + min(L.rcvbuf_size, 65535)
    c.iss = h.ack - 1
    c.snd_una = c.iss
    c.snd_nxt = h.ack
    c.snd_max = h.ack
    c.snd_wl1 = h.seq
    return c


# ---- SYN-SENT (RFC 9293 §3.10.7.3) ---------------------------------------------------------
cdef void syn_sent_input(TcpLayerBase L, TcpConnection c, fl_mbuf *m, Ipv4Header *ip,
                         TcpHeader *h, uint64_t now) noexcept:
    cdef uint8_t flags = h.flags
    cdef uint32_t payload = fl_mbuf_pkt_len(m)
    cdef bint ack_ok = not (seq_le(h.ack, c.iss) or seq_gt(h.ack, c.snd_max))
    if not (flags & TCP_SYN and flags & TCP_ACK and not (flags & TCP_RST) and ack_ok
            and (payload or flags & TCP_FIN)):
        L.iface.mbuf_free(m)                       # nothing to keep beyond the controls
        m = NULL
    if flags & TCP_ACK and not ack_ok:
        send_reset_reply(L, ip, h, 0, now)         # not an answer to our SYN
        return
    if flags & TCP_RST:
        if flags & TCP_ACK:                        # the peer refused: ECONNREFUSED
            L.stats[TCP_RST_IN] += 1
            L.stats[TCP_FAILED_CONNECTS] += 1
            conn_remove(L, c, ECONNREFUSED)
        return
    if not (flags & TCP_SYN):
        return
    c.irs = h.seq
    c.rcv_nxt = h.seq + 1
    c.rcv_adv = c.rcv_nxt
    conn_negotiate(L, c, &h.opt, now)
    c.snd_wnd = h.window                           # unscaled in a SYN (RFC 7323 §2.2)
    c.max_snd_wnd = c.snd_wnd
    c.snd_wl1 = h.seq
    c.snd_wl2 = h.ack
    if not (flags & TCP_ACK):                      # simultaneous open
        c.state = SYN_RECEIVED
        send_syn(L, c, now)
        return
    c.snd_una = h.ack
    _handshake_rtt(L, c, h, now)
    _established(L, c, now)
    c.ack_pending = True
    c.schedule_output()
    if c.sink is not None:
        c.sink.on_established(c)
    if m == NULL:
        if c.ack_pending and c.snd.len == 0 and c.state == ESTABLISHED:
            # the handshake's ACK now, at the end of the rx phase (Stack.rx_phase flushes),
            # not after the application's callbacks: the peer's accept waits for it. Data
            # the sink wrote at once still carries it, in the tx phase.
            send_ack(L, c, now)
        return
    if c.state == CLOSED:                          # the application gave up at once
        L.iface.mbuf_free(m)
        return
    # RFC 9293 §3.10.7.3: "continue processing at the sixth step": the SYN is taken, so the
    # rest is an ESTABLISHED segment at RCV.NXT, inside the window our SYN offered
    c.rcv_adv = c.rcv_nxt + min(L.rcvbuf_size, 65535)
    h.flags = flags & ~TCP_SYN
    h.seq = h.seq + 1
    synchronized_input(L, c, m, ip, h, payload, now)


cdef void _handshake_rtt(TcpLayerBase L, TcpConnection c, TcpHeader *h, uint64_t now) noexcept:
    if c.ts_ok and h.opt.ts_ecr:
        rtt_sample(L, c, <uint64_t>(ts_clock(c, now) - h.opt.ts_ecr) * NS_PER_MS)
    elif c.syn_retries == 0:                       # Karn: not after a retransmitted SYN
        rtt_sample(L, c, now - c.rtt_start)


cdef void _established(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    c.state = ESTABLISHED
    if c.fin_queued or c.snd.len:                  # written or shut down in SYN-RECEIVED:
        c.state = FIN_WAIT_1 if c.fin_queued else ESTABLISHED   # it goes now (RFC 9293
        c.schedule_output()                        # §3.10.4: CLOSE queued until established)
    c.backoff = 0
    c.recover = c.iss                              # RFC 6582 §3.2 step 1 (it was 0: with
                                                   # half of all ISNs, no fast retransmit)
    L.wheel.cancel(&c.t_retransmit)
    L.wheel.cancel(&c.t_lifetime)
    restart_keepalive(L, c, now)


# ---- the synchronized states (RFC 9293 §3.10.7.4) --------------------------------------------
cdef bint _acceptable(TcpConnection c, seq_t seq, uint32_t seg_len, uint32_t wnd) noexcept:
    """The four cases of the first check."""
    if seg_len == 0:
        return seq == c.rcv_nxt if wnd == 0 else seq_in_window(seq, c.rcv_nxt, wnd)
    if wnd == 0:
        return False
    return seq_in_window(seq, c.rcv_nxt, wnd) or seq_in_window(seq + seg_len - 1, c.rcv_nxt, wnd)


cdef void synchronized_input(TcpLayerBase L, TcpConnection c, fl_mbuf *m, Ipv4Header *ip,
                             TcpHeader *h, uint32_t payload, uint64_t now) noexcept:
    cdef uint8_t flags = h.flags
    cdef seq_t seq = h.seq
    cdef uint32_t wnd = c.rcv_adv - c.rcv_nxt if seq_gt(c.rcv_adv, c.rcv_nxt) else 0
    cdef uint32_t seg_len = payload + (1 if flags & TCP_SYN else 0) + (1 if flags & TCP_FIN else 0)
    cdef uint32_t d
    cdef int notes = 0
    if c.state == SYN_RECEIVED and (flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN \
            and seq == c.irs:
        L.iface.mbuf_free(m)                       # the peer's SYN again: our SYN-ACK was
        send_syn(L, c, now)                        # lost (it is below RCV.NXT, so would
        return                                     # only earn an ACK that SYN-SENT drops)
    # RFC 7323 §5.3 R1-R3: PAWS, before anything else
    if c.ts_ok and h.opt.has_timestamps and not (flags & TCP_RST) \
            and seq_lt(h.opt.ts_val, c.ts_recent) and now - c.ts_recent_time < PAWS_IDLE_NS:
        L.stats[TCP_PAWS_DROPPED] += 1
        _drop_and_ack(L, c, m)
        return
    # first: is the segment acceptable? A zero window still takes ACKs, RSTs and probes.
    if not _acceptable(c, seq, seg_len, wnd):
        if wnd == 0 and seq == c.rcv_nxt and payload:
            fl_mbuf_trim(m, <uint16_t>payload)     # a window probe: take its ACK, not its data,
            payload = 0                            # and answer with our window (RFC 9293
            flags &= ~TCP_FIN                      # §3.8.6.1, RFC 1122 §4.2.2.17)
            c.ack_pending = True
            c.schedule_output()
        else:
            if flags & TCP_RST:
                L.iface.mbuf_free(m)
                return
            L.stats[TCP_DUPLICATE_SEGMENTS_IN if seq_lt(seq, c.rcv_nxt) else TCP_OUT_OF_WINDOW] += 1
            if c.state == TIME_WAIT and flags & TCP_FIN:
                L.wheel.arm(&c.t_lifetime, now + L.time_wait_ns)   # restart 2MSL
            _drop_and_ack(L, c, m)
            return
    # RFC 7323 §4.3: TS.Recent from a segment that covers RCV.NXT
    if c.ts_ok and h.opt.has_timestamps and seq_le(seq, c.rcv_nxt) and not (flags & TCP_RST):
        c.ts_recent = h.opt.ts_val
        c.ts_recent_time = now
    # trim what lies before RCV.NXT or beyond the window
    if seq_lt(seq, c.rcv_nxt):
        d = c.rcv_nxt - seq
        if flags & TCP_SYN:
            flags &= ~TCP_SYN
            d -= 1
            seq += 1
        d = min(d, payload)
        fl_mbuf_adj(m, <uint16_t>d)
        payload -= d
        seq += d
    d = wnd - (seq - c.rcv_nxt)                    # room up to the window's right edge,
    if payload > d:                                # also for out-of-order data
        fl_mbuf_trim(m, <uint16_t>(payload - d))
        payload = d
        flags &= ~TCP_FIN
    # second: RST (RFC 5961 §3.2: only an exact match resets; in-window earns a challenge)
    if flags & TCP_RST:
        L.iface.mbuf_free(m)
        L.stats[TCP_RST_IN] += 1
        if h.seq != c.rcv_nxt:                     # SEG.SEQ as sent, not as trimmed
            send_challenge_ack(L, c, now)
        elif c.state != TIME_WAIT:                 # RFC 1337: no TIME-WAIT assassination
            _reset_by_peer(L, c)
        return
    # fourth: SYN in a synchronized state (RFC 5961 §4.2)
    if flags & TCP_SYN:
        L.iface.mbuf_free(m)
        send_challenge_ack(L, c, now)
        return
    # fifth: ACK
    if not (flags & TCP_ACK):
        L.iface.mbuf_free(m)
        return
    if c.state == SYN_RECEIVED:
        if not (seq_lt(c.snd_una, h.ack) and seq_le(h.ack, c.snd_max)):
            send_reset_reply(L, ip, h, payload, now)
            L.iface.mbuf_free(m)
            return
        if not _accept(L, c, h, now):
            L.iface.mbuf_free(m)
            return
        notes |= NOTE_ESTABLISHED
    elif seq_gt(h.ack, c.snd_max) or seq_lt(h.ack, c.snd_una - c.max_snd_wnd):
        send_challenge_ack(L, c, now)              # RFC 5961 §5.2
        L.iface.mbuf_free(m)
        return
    else:
        ack_input(L, c, h, seq, payload, now)
        if c.state == CLOSED:
            L.iface.mbuf_free(m)
            return
    c.last_activity = now
    c.keepalive_probes = 0
    # seventh: the data
    if payload and (c.state == ESTABLISHED or c.state == FIN_WAIT_1 or c.state == FIN_WAIT_2):
        if data_input(L, c, m, seq, payload, now):
            notes |= NOTE_DATA
    else:
        L.iface.mbuf_free(m)
    # eighth: FIN
    if flags & TCP_FIN:
        notes |= fin_arrival(L, c, seq + payload, now)
    elif c.ooo_fin and c.rcv_nxt == c.ooo_fin_seq:
        notes |= fin_input(L, c, now)
    _notify(L, c, notes, now)


cdef void _drop_and_ack(TcpLayerBase L, TcpConnection c, fl_mbuf *m) noexcept:
    """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, and the segment is dropped."""
    L.iface.mbuf_free(m)
    c.ack_pending = True
    c.schedule_output()


cdef void _reset_by_peer(TcpLayerBase L, TcpConnection c) noexcept:
    cdef int error = ECONNRESET
    if c.state == SYN_RECEIVED:
        error = ECONNREFUSED
    elif c.state == ESTABLISHED or c.state == FIN_WAIT_1 or c.state == FIN_WAIT_2 \
            or c.state == CLOSE_WAIT:
        L.stats[TCP_ESTABLISHED_RESETS] += 1
    else:
        error = 0                                  # CLOSING, LAST-ACK: the close completes
    conn_remove(L, c, error)


cdef bint _accept(TcpLayerBase L, TcpConnection c, TcpHeader *h, uint64_t now) noexcept:
    """SYN-RECEIVED → ESTABLISHED: the handshake is done; the listener's sink takes it."""
    cdef TcpListener lst = c.listener
    c.snd_una = h.ack
    c.snd_wnd = <uint32_t>h.window << c.snd_wscale
    c.max_snd_wnd = c.snd_wnd
    c.snd_wl1 = h.seq
    c.snd_wl2 = h.ack
    _handshake_rtt(L, c, h, now)
    _established(L, c, now)
    if lst is None:                                # simultaneous open: our own connect
        return True
    lst.half_open -= 1
    c.listener = None
    L.stats[TCP_PASSIVE_OPENS] += 1
    cdef TcpSink sink = None
    if not lst.closed:
        try:
            sink = lst.sink.on_accept(lst, c)
        except BaseException:
            sink = None
    if sink is None:
        conn_reset(L, c, 0, now)
        return False
    c.sink = sink
    return True


cdef void ack_input(TcpLayerBase L, TcpConnection c, TcpHeader *h, seq_t seq, uint32_t payload,
                    uint64_t now) noexcept:
    """The fifth check for an established connection: new data acknowledged, duplicate ACKs
    (RFC 5681 §3.2; RFC 6675 §5 with SACK, RFC 6582 without), the send window (RFC 9293
    §3.10.7.4), FIN acknowledged."""
    cdef uint32_t wnd = <uint32_t>h.window << c.snd_wscale
    cdef uint32_t sacked = sack_ack_update(L, c, h) if c.sack_ok else 0
    # a zero window's answers to our probes say nothing of loss: never duplicates
    cdef bint dup = h.ack == c.snd_una and payload == 0 and not (h.flags & TCP_FIN) \
        and wnd == c.snd_wnd and c.snd_max != c.snd_una and wnd != 0
    if seq_gt(h.ack, c.snd_una):
        _new_ack(L, c, h, now)
        if c.state == CLOSED:
            return
        if sacked:                                 # RFC 6675 §5 step (2): "regardless of its
            sack_duplicate_ack(L, c, now)          # status as a cumulative acknowledgment"
    elif c.sack_ok:
        if dup or (sacked and h.ack == c.snd_una):   # RFC 6675 §2 duplicate acknowledgment
            sack_duplicate_ack(L, c, now)
    elif dup:
        _duplicate_ack(L, c, now)
    # the window, from a segment not older than the last that set it
    if seq_lt(c.snd_wl1, seq) or (c.snd_wl1 == seq and seq_le(c.snd_wl2, h.ack)):
        if wnd > c.snd_wnd:                        # more may go out now
            if c.snd_wnd == 0:
                L.wheel.cancel(&c.t_persist)
                c.persist_backoff = 0
            c.schedule_output()
        c.snd_wnd = wnd
        c.snd_wl1 = seq
        c.snd_wl2 = h.ack
        if wnd > c.max_snd_wnd:
            c.max_snd_wnd = wnd


cdef void _new_ack(TcpLayerBase L, TcpConnection c, TcpHeader *h, uint64_t now) noexcept:
    cdef uint32_t acked = h.ack - c.snd_una
    cdef uint32_t flight = c.flight(), pipe
    cdef bint fin_acked = c.fin_queued and seq_gt(c.snd_max, c.fin_seq()) \
        and h.ack == c.fin_seq() + 1
    cdef uint32_t data = acked - (1 if fin_acked else 0)
    cdef uint64_t rtt = 0
    sndbuf_consume(&c.snd, data)
    if c.ts_ok and h.opt.has_timestamps and h.opt.ts_ecr:    # RFC 7323 §4.1 RTTM
        rtt = <uint64_t>(ts_clock(c, now) - h.opt.ts_ecr) * NS_PER_MS
        if rtt < 60 * 1000000000:
            rtt_sample(L, c, rtt)
    elif c.rtt_active and seq_gt(h.ack, c.rtt_seq):
        rtt = now - c.rtt_start
        rtt_sample(L, c, rtt)
        c.rtt_active = False
    c.backoff = 0
    if c.sack_ok:
        # what is in the network is pipe, not FlightSize (RFC 6675 §4 SetPipe outside
        # recovery; RFC 7661 §4.3 uses it to judge whether cwnd was used); no growth while in
        # recovery (cc_on_ack)
        pipe = sack_unsacked(&c.sb, c.snd_una, c.snd_nxt)
        cc_on_ack(&c.cc, data, pipe, rtt, now, cc_window_full(&c.cc, pipe))
        sack_cumulative_ack(L, c, h.ack, now)
    elif c.in_recovery:
        if seq_ge(h.ack, c.recover):               # full ACK: recovery is over (RFC 6582 §3.2)
            c.in_recovery = False
            c.dupacks = 0
            cc_on_recovery_exit(&c.cc, now)
        else:                                      # partial ACK: the next hole (step 5)
            c.snd_una = h.ack
            L.stats[TCP_RETRANSMITS_PARTIAL] += 1
            retransmit_head(L, c, now)
            c.cc.cwnd = c.cc.cwnd - data if c.cc.cwnd > data + c.mss else c.mss
            if data >= c.mss:                      # deflate, then add back one SMSS
                c.cc.cwnd += c.mss
    else:
        c.dupacks = 0
        cc_on_ack(&c.cc, data, flight, rtt, now, cc_window_full(&c.cc, flight))
    c.snd_una = h.ack
    if seq_lt(c.snd_nxt, c.snd_una):
        c.snd_nxt = c.snd_una
    if c.snd_una == c.snd_max:                     # RFC 6298 §5.2-5.3
        L.wheel.cancel(&c.t_retransmit)
        L.wheel.cancel(&c.t_loss_probe)
    else:
        L.wheel.arm(&c.t_retransmit, now + c.rto_ns)
    c.schedule_output()
    sndbuf_autotune(L, c)
    if c.send_space_wanted and sndbuf_space(&c.snd) >= c.snd.limit // 2 and c.sink is not None:
        c.send_space_wanted = False
        c.sink.on_send_space(c)
    if fin_acked:
        _fin_acked(L, c, now)


cdef void _fin_acked(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    if c.state == FIN_WAIT_1:
        c.state = FIN_WAIT_2
        if c.app_closed:                           # an orphan waits for the FIN a bounded time
            L.wheel.arm(&c.t_lifetime, now + L.time_wait_ns)
    elif c.state == CLOSING:
        conn_time_wait(L, c, now)
    elif c.state == LAST_ACK:
        conn_remove(L, c, 0)


cdef void _duplicate_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """RFC 5681 §3.2 with RFC 6582's guard against a second reduction in one window."""
    c.dupacks += 1
    L.stats[TCP_DUPACKS_IN] += 1
    if c.in_recovery:
        c.cc.cwnd += c.mss                         # step 4: inflate per segment that left
        c.schedule_output()
    elif c.dupacks == 3 and seq_gt(c.snd_una, c.recover):
        c.recover = c.snd_max
        c.in_recovery = True
        cc_on_congestion(&c.cc, c.flight(), now)
        c.cc.cwnd += 3 * c.mss                     # step 3: ssthresh + 3*SMSS
        L.stats[TCP_RETRANSMITS_FAST] += 1
        retransmit_head(L, c, now)
        c.schedule_output()


cdef bint data_input(TcpLayerBase L, TcpConnection c, fl_mbuf *m, seq_t seq, uint32_t n,
                     uint64_t now) noexcept:
    """The seventh check: in-order data to the application's queue, the rest to reassembly.
    Consumes m; returns True when new in-order data is readable."""
    cdef seq_t before
    cdef OooResult kept
    if c.app_closed:                               # nobody will read it: RST says it was
        L.iface.mbuf_free(m)                       # lost (RFC 1122 §4.2.2.13), where an
        conn_reset(L, c, 0, now)                   # ACK would say it was delivered
        return False
    if seq != c.rcv_nxt:
        L.stats[TCP_OUT_OF_ORDER_IN] += 1
        rcvbuf_reordered(c, now)
        kept = ooo_insert(&c.rcv, seq, m, n, L.iface)
        if kept == OOO_QUEUE_FULL or kept == OOO_DUPLICATE:
            L.stats[TCP_OUT_OF_ORDER_DROPPED] += 1
        elif kept == OOO_BUDGET_FULL:
            L.stats[TCP_REASSEMBLY_BUDGET_DROPPED] += 1
        c.ack_pending = True                       # RFC 5681 §4.2: a duplicate ACK at once
        c.schedule_output()
        return False
    rcvbuf_append(&c.rcv, m, n, L.iface)
    c.rcv_nxt += n
    if c.rcv.ooo_n:
        before = c.rcv_nxt
        c.rcv_nxt = ooo_pull(&c.rcv, c.rcv_nxt, L.iface)
        n += c.rcv_nxt - before
        c.ack_pending = True                       # it filled (part of) a hole: ACK at once
    L.stats[TCP_BYTES_IN] += n
    rcvbuf_autotune(L, c, now)
    _ack_policy(L, c, now)
    return True


cdef void _ack_policy(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """Delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2): at least every second segment, at most
    delayed_ack later; the first segments of a connection are acknowledged at once."""
    c.segs_unacked += 1
    if c.quickacks:
        c.quickacks -= 1
        c.ack_pending = True
    elif c.segs_unacked >= 2:
        c.ack_pending = True
    if c.ack_pending:
        c.schedule_output()
    elif not timer_armed(&c.t_delayed_ack):
        L.wheel.arm(&c.t_delayed_ack, now + L.delayed_ack_ns)


cdef int fin_arrival(TcpLayerBase L, TcpConnection c, seq_t fin_seq, uint64_t now) noexcept:
    if c.state == CLOSED or c.state == SYN_RECEIVED:
        return 0
    if fin_seq == c.rcv_nxt:
        return fin_input(L, c, now)
    if seq_gt(fin_seq, c.rcv_nxt):                 # ahead of a hole: remember where it goes
        c.ooo_fin = True
        c.ooo_fin_seq = fin_seq
    return 0


cdef int fin_input(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """The FIN is next in sequence (RFC 9293 §3.10.7.4, eighth): it is acknowledged at once."""
    cdef int notes = NOTE_EOF
    c.rcv_nxt += 1
    c.ooo_fin = False
    c.fin_received = True
    c.ack_pending = True
    c.schedule_output()
    if c.state == ESTABLISHED:
        c.state = CLOSE_WAIT
    elif c.state == FIN_WAIT_1:
        if c.snd_una == c.snd_max:                 # our FIN is acknowledged too
            notes |= NOTE_TIME_WAIT
        else:
            c.state = CLOSING
    elif c.state == FIN_WAIT_2:
        notes |= NOTE_TIME_WAIT
    elif c.state == TIME_WAIT:
        L.wheel.arm(&c.t_lifetime, now + L.time_wait_ns)
        notes = 0
    else:
        notes = 0                                  # CLOSE-WAIT, CLOSING, LAST-ACK: seen it
    return notes


cdef void _notify(TcpLayerBase L, TcpConnection c, int notes, uint64_t now) noexcept:
    """Tell the application, in asyncio's order: established, data, EOF, then closed."""
    if notes & NOTE_ESTABLISHED and c.sink is not None:
        c.sink.on_established(c)
    if notes & NOTE_DATA and c.sink is not None and not c.reading_paused:
        c.schedule_data()
    if notes & NOTE_EOF and c.sink is not None:
        c.deliver_data()
        if c.sink is not None:                     # the data may have made it let go
            c.sink.on_eof(c)
    if notes & NOTE_TIME_WAIT and c.state != CLOSED:
        conn_time_wait(L, c, now)                  # its FIN's ACK still goes out this step
