# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""What to send and how: segments built from the send buffer, ACKs, SYNs and resets.

tcp_output is called once per connection per poll step (after input and timers), so all the
ACKs a burst of segments calls for leave as one.
"""
from libc.stdint cimport uint16_t
from fastloop.includes.dpdk cimport fl_mbuf, fl_mbuf_append
from fastloop.net.wire.bytes cimport store_raw16
from fastloop.net.wire.ipv4 cimport IPPROTO_TCP
from fastloop.net.wire.tcp cimport (
    TcpHeader, tcp_options_clear, tcp_options_len, tcp_emit, tcp_checksum, tcp_pseudo_header_sum,
    TCP_HDR_LEN, TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_CHECKSUM_OFFSET)
from fastloop.net.timer_wheel cimport timer_armed
from fastloop.net.tcp.seq cimport seq_lt, seq_le, seq_gt, seq_ge
from fastloop.net.tcp.sndbuf cimport sndbuf_copy
from fastloop.net.tcp.rcvbuf cimport rcvbuf_space, ooo_sack_blocks
from fastloop.net.tcp.congestion cimport cc_on_send
from fastloop.net.tcp.sack cimport (
    SackRule, SACK_NONE, SACK_RULE_LOST, sack_pipe, sack_unsacked, sack_next_seg, sack_rescue,
    sack_skip, sack_hole_len)
from fastloop.net.tcp.siphash cimport siphash24_tuple
from fastloop.net.tcp.syncookie cimport (syncookie_make, syncookie_mss_clamp, syncookie_ts_make)
from fastloop.net.tcp.counters cimport *
from fastloop.net.tcp.tcb cimport *

cdef uint64_t NS_PER_MS = 1000000
cdef uint64_t PTO_MIN_NS = 2 * NS_PER_MS

cdef enum:
    SACK_BLOCKS_SENT = 3           # with timestamps, 3 blocks fill the 40 option bytes


cdef uint32_t segment_payload_max(TcpConnection c) noexcept:
    """c.mss assumes timestamps only; SACK blocks take payload room (RFC 2018 §3)."""
    cdef uint32_t blocks
    if not c.sack_ok or c.rcv.ooo_n == 0:
        return c.mss
    blocks = min(c.rcv.ooo_n, <uint32_t>SACK_BLOCKS_SENT)
    return c.mss - 4 - 8 * blocks


cdef uint32_t ts_offset_for(TcpLayerBase L, uint32_t laddr, uint16_t lport, uint32_t raddr,
                            uint16_t rport) noexcept:
    """A per-connection random TSval offset (RFC 7323 §5.4), from a keyed hash of the tuple so
    a SYN cookie's SYN-ACK and the connection it becomes agree on it."""
    return <uint32_t>siphash24_tuple(L.secrets.c1, L.secrets.k0, laddr, lport, raddr, rport, 1, 0)


cdef uint32_t ts_clock(TcpConnection c, uint64_t now) noexcept:
    """Our TSval: a 1 ms clock with a per-connection offset (RFC 7323 §5.4)."""
    return <uint32_t>(now // NS_PER_MS) + c.ts_offset


cdef uint32_t rcv_window(TcpConnection c) noexcept:
    """The window to advertise: never shrinking the promised right edge (RFC 7323 §2.4), and
    opened only by at least min(half the buffer, one MSS) (receiver SWS avoidance,
    RFC 9293 §3.8.6.2.2)."""
    cdef uint32_t space = rcvbuf_space(&c.rcv)
    cdef uint32_t most = <uint32_t>65535 << c.rcv_wscale
    cdef uint32_t cur = c.rcv_adv - c.rcv_nxt if seq_gt(c.rcv_adv, c.rcv_nxt) else 0
    if space > most:
        space = most
    space = (space >> c.rcv_wscale) << c.rcv_wscale
    if space >= cur + min(c.rcv.limit // 2, <uint32_t>c.mss):
        return space
    return cur


cdef void _fill_options(TcpConnection c, TcpHeader *h, uint8_t flags, uint64_t now) noexcept:
    tcp_options_clear(&h.opt)
    if flags & TCP_SYN:
        # RFC 9293 §3.7.1 MSS; RFC 7323 §2.2, §3.2 and RFC 2018 §2: offered on an active
        # SYN, answered on a SYN-ACK only when the peer offered them
        h.opt.mss = c.rcv_mss if c.rcv_mss else 536
        if c.state == SYN_SENT or c.rcv_wscale_ok:
            h.opt.wscale = c.rcv_wscale
        h.opt.sack_permitted = c.state == SYN_SENT or c.sack_ok
        h.opt.has_timestamps = c.state == SYN_SENT or c.ts_ok
    else:
        h.opt.has_timestamps = c.ts_ok
        if c.sack_ok and c.rcv.ooo_n:
            h.opt.sack_count = <uint8_t>ooo_sack_blocks(&c.rcv, h.opt.sack, SACK_BLOCKS_SENT)
    if h.opt.has_timestamps:
        h.opt.ts_val = ts_clock(c, now)
        h.opt.ts_ecr = c.ts_recent if (flags & TCP_ACK) else 0


cdef bint send_segment(TcpLayerBase L, TcpConnection c, seq_t seq, uint32_t n, uint8_t flags,
                       uint64_t now) noexcept:
    """Build one segment (n payload bytes from the send buffer at seq) and hand it to IP."""
    cdef TcpHeader h
    cdef fl_mbuf *m = L.iface.mbuf_alloc()
    if m == NULL:
        return False
    _fill_options(c, &h, flags, now)
    cdef uint32_t window = rcv_window(c)
    h.src_port = c.local_port
    h.dst_port = c.remote_port
    h.seq = seq
    h.ack = c.rcv_nxt if (flags & TCP_ACK) else 0
    h.flags = flags
    h.urgent = 0
    # RFC 7323 §2.2: the window of a SYN is never scaled
    h.window = <uint16_t>min(window, 65535) if (flags & TCP_SYN) else \
        <uint16_t>(window >> c.rcv_wscale)
    cdef uint32_t hlen = TCP_HDR_LEN + tcp_options_len(&h.opt)
    cdef uint8_t *p = fl_mbuf_append(m, <uint16_t>(hlen + n))
    tcp_emit(p, &h)
    if n:
        sndbuf_copy(&c.snd, seq - c.snd_una, p + hlen, n)
    cdef int offload = 0
    if L.iface.tx_l4_cksum:
        store_raw16(p + TCP_CHECKSUM_OFFSET,
                    tcp_pseudo_header_sum(c.local_addr, c.remote_addr, <uint16_t>(hlen + n)))
        offload = 2
    else:
        store_raw16(p + TCP_CHECKSUM_OFFSET,
                    tcp_checksum(c.local_addr, c.remote_addr, p, hlen + n))
    if flags & TCP_ACK:
        if not (flags & TCP_SYN):
            window = (window >> c.rcv_wscale) << c.rcv_wscale
        c.rcv_adv = c.rcv_nxt + window
        if window == 0:
            L.stats[TCP_ZERO_WINDOW_ADVERTISED] += 1
        c.ack_pending = False
        c.segs_unacked = 0
        L.wheel.cancel(&c.t_delayed_ack)
    L.stats[TCP_SEGMENTS_OUT] += 1
    L.stats[TCP_BYTES_OUT] += n
    L.iface.ip_output(m, c.local_addr, c.remote_addr, IPPROTO_TCP, offload, now)
    return True


cdef void send_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, where RFC 9293's SND.NXT is our snd_max: after an
    RTO snd_nxt goes back to SND.UNA, and an ACK carrying it would lie below the RCV.NXT of
    a peer that got the data but whose ACKs were lost; that peer must drop it as
    unacceptable (RFC 9293 §3.10.7.4 first check) and its ACK is never seen. Both ends in
    that state ignore each other's ACKs until they time out."""
    send_segment(L, c, c.snd_max, 0, TCP_ACK, now)


cdef void send_syn(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """The SYN of an active open, or the SYN-ACK of a passive one; both carry seq ISS."""
    cdef uint8_t flags = TCP_SYN if c.state == SYN_SENT else (TCP_SYN | TCP_ACK)
    send_segment(L, c, c.iss, 0, flags, now)
    if not timer_armed(&c.t_retransmit):
        L.wheel.arm(&c.t_retransmit, now + c.rto_ns)


cdef void send_challenge_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """RFC 5961 §3.2, §4.2, §5.2, rate-limited per stack (§7)."""
    if now - L.challenge_window_start >= 1000000000:
        L.challenge_window_start = now
        L.challenge_acks = 0
    if L.challenge_acks >= L.challenge_ack_limit:
        L.stats[TCP_CHALLENGE_ACKS_LIMITED] += 1
        return
    L.challenge_acks += 1
    L.stats[TCP_CHALLENGE_ACKS] += 1
    send_ack(L, c, now)


cdef void send_reset_reply(TcpLayerBase L, Ipv4Header *ip, TcpHeader *h, uint32_t seg_len,
                           uint64_t now) noexcept:
    """The reset for a segment no connection takes (RFC 9293 §3.10.7.1): never for a reset;
    <SEQ=SEG.ACK><CTL=RST> if it had ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    cdef TcpHeader r
    if h.flags & TCP_RST:
        return
    cdef fl_mbuf *m = L.iface.mbuf_alloc()
    if m == NULL:
        return
    tcp_options_clear(&r.opt)
    r.src_port = h.dst_port
    r.dst_port = h.src_port
    if h.flags & TCP_ACK:
        r.seq = h.ack
        r.ack = 0
        r.flags = TCP_RST
    else:
        r.seq = 0
        r.ack = h.seq + seg_len
        r.flags = TCP_RST | TCP_ACK
    r.window = 0
    r.urgent = 0
    cdef uint8_t *p = fl_mbuf_append(m, TCP_HDR_LEN)
    tcp_emit(p, &r)
    store_raw16(p + TCP_CHECKSUM_OFFSET, tcp_checksum(ip.dst, ip.src, p, TCP_HDR_LEN))
    L.stats[TCP_RST_OUT] += 1
    L.stats[TCP_SEGMENTS_OUT] += 1
    L.iface.ip_output(m, ip.dst, ip.src, IPPROTO_TCP, 0, now)


cdef void send_cookie_synack(TcpLayerBase L, Ipv4Header *ip, TcpHeader *h, uint64_t now) noexcept:
    """A SYN-ACK whose ISN is a SYN cookie (RFC 4987 §3.6): no state kept. Window scale and
    SACK-permitted can only be remembered in the timestamp, so without one they are not
    offered."""
    cdef TcpHeader r
    cdef fl_mbuf *m = L.iface.mbuf_alloc()
    if m == NULL:
        return
    cdef uint16_t mss = h.opt.mss if h.opt.mss else 536
    tcp_options_clear(&r.opt)
    r.opt.mss = <uint16_t>min(<uint32_t>L.iface.mtu - 40, <uint32_t>65535)
    if h.opt.has_timestamps:
        r.opt.has_timestamps = True
        r.opt.ts_val = syncookie_ts_make(
            <uint32_t>(now // NS_PER_MS) + ts_offset_for(L, ip.dst, h.dst_port, ip.src, h.src_port),
            h.opt.wscale, h.opt.sack_permitted)
        r.opt.ts_ecr = h.opt.ts_val
        r.opt.sack_permitted = h.opt.sack_permitted
        if h.opt.wscale >= 0:
            r.opt.wscale = 0
    r.src_port = h.dst_port
    r.dst_port = h.src_port
    r.seq = syncookie_make(&L.secrets, ip.dst, h.dst_port, ip.src, h.src_port, h.seq, mss, now)
    r.ack = h.seq + 1
    r.flags = TCP_SYN | TCP_ACK
    r.window = <uint16_t>min(L.rcvbuf_size, 65535)
    r.urgent = 0
    cdef uint32_t hlen = TCP_HDR_LEN + tcp_options_len(&r.opt)
    cdef uint8_t *p = fl_mbuf_append(m, <uint16_t>hlen)
    tcp_emit(p, &r)
    store_raw16(p + TCP_CHECKSUM_OFFSET, tcp_checksum(ip.dst, ip.src, p, hlen))
    L.stats[TCP_SYNCOOKIES_SENT] += 1
    L.stats[TCP_SEGMENTS_OUT] += 1
    L.iface.ip_output(m, ip.dst, ip.src, IPPROTO_TCP, 0, now)


cdef void retransmit_head(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """Resend the first unacknowledged segment (fast retransmit, NewReno partial ACK)."""
    cdef uint32_t n = min(segment_payload_max(c), c.snd.len)
    cdef uint8_t flags = TCP_ACK
    if n and n == c.snd.len:
        flags |= TCP_PSH
    if c.fin_queued and n == c.snd.len and seq_gt(c.snd_max, c.fin_seq()):
        flags |= TCP_FIN
    if n == 0 and not (flags & TCP_FIN):
        return
    c.rtt_active = False                           # Karn: never time a retransmission
    send_segment(L, c, c.snd_una, n, flags, now)


cdef bint _may_send_short(TcpConnection c, uint32_t n, uint32_t unsent, uint32_t in_flight,
                          bint fin) noexcept:
    """A segment shorter than the MSS: Nagle (RFC 1122 §4.2.3.4) holds it while data is
    unacknowledged; sender SWS avoidance (RFC 9293 §3.8.6.2.1) holds it while it is short
    because of the window rather than the data, unless it is half the largest window seen."""
    if n < unsent:
        return n > 0 and (n >= c.max_snd_wnd // 2 or c.sws_override)
    return fin or c.nodelay or in_flight == 0


cdef void arm_loss_probe(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """RFC 8985 §7.2: PTO = 2*SRTT after the last transmission, plus the peer's delayed
    ACK when only one segment is out; none when the RTO would come first. At least
    PTO_MIN: timestamps measure in whole milliseconds, so a fast path's SRTT may read 0."""
    cdef uint64_t pto = max(2 * c.srtt_ns, <uint64_t>PTO_MIN_NS)
    if not c.sack_ok:
        return
    if c.snd_max - c.snd_una <= c.mss:
        pto += L.delayed_ack_ns
    if pto < c.rto_ns:
        L.wheel.arm(&c.t_loss_probe, now + pto)


cdef uint32_t send_range(TcpLayerBase L, TcpConnection c, seq_t seq, uint32_t length,
                        uint64_t now) noexcept:
    """Retransmit up to `length` octets of sequence space from seq: its data, and our FIN if
    the range reaches it. Returns the sequence space sent (0: nothing)."""
    cdef uint32_t off = seq - c.snd_una
    cdef uint32_t n = min(length, c.snd.len - off) if off < c.snd.len else 0
    cdef uint8_t flags = TCP_ACK
    cdef bint fin = c.fin_queued and seq_gt(c.snd_max, c.fin_seq()) and off + n == c.snd.len \
        and length > n
    if n and off + n == c.snd.len:
        flags |= TCP_PSH
    if fin:
        flags |= TCP_FIN
    if n == 0 and not fin:
        return 0
    c.rtt_active = False                           # Karn: never time a retransmission
    if not send_segment(L, c, seq, n, flags, now):
        return 0
    if not timer_armed(&c.t_retransmit):           # RFC 6298 §5.1
        L.wheel.arm(&c.t_retransmit, now + c.rto_ns)
    arm_loss_probe(L, c, now)
    cc_on_send(&c.cc, now)
    return n + (1 if fin else 0)


cdef uint32_t _send_next(TcpLayerBase L, TcpConnection c, uint32_t seg_max, uint32_t pipe,
                         uint64_t now) noexcept:
    """One segment at SND.NXT, as far as cwnd (against pipe: what is in the network), the
    peer's window (against the sequence space in use), Nagle and SWS avoidance allow.
    Returns the sequence space it took; 0 when nothing went."""
    cdef uint32_t off, unsent, usable, n, hole
    cdef bint fin, hole_cut = False
    cdef uint8_t flags
    cdef bint resending = c.sack_ok and c.sb.n and seq_lt(c.snd_nxt, c.snd_max)
    if resending:                                  # going back after an RTO: skip what the
        c.snd_nxt = sack_skip(&c.sb, c.snd_nxt)    # peer SACKed since (RFC 6675 §5.1)
    off = c.snd_nxt - c.snd_una
    unsent = c.snd.len - off if off < c.snd.len else 0
    usable = min(c.snd_wnd - off if c.snd_wnd > off else 0,
                 c.cc.cwnd - pipe if c.cc.cwnd > pipe else 0)
    n = min(unsent, seg_max, usable)
    if resending:
        hole = sack_hole_len(&c.sb, c.snd_nxt)
        if hole < n:
            n = hole
            hole_cut = True
    fin = c.fin_queued and off + n == c.snd.len and seq_le(c.snd_nxt, c.fin_seq())
    if n == 0 and not fin:
        return 0
    if n < seg_max and not hole_cut and not _may_send_short(c, n, unsent, off, fin):
        return 0
    flags = TCP_ACK
    if n and n == unsent:
        flags |= TCP_PSH
    if fin:
        flags |= TCP_FIN
    if not send_segment(L, c, c.snd_nxt, n, flags, now):
        return 0
    if not c.rtt_active and not c.ts_ok and seq_ge(c.snd_nxt, c.snd_max) and n:
        c.rtt_active = True                        # Karn: time only new data (RFC 6298 §3)
        c.rtt_seq = c.snd_nxt
        c.rtt_start = now
    c.snd_nxt += n + (1 if fin else 0)
    if seq_gt(c.snd_nxt, c.snd_max):
        c.snd_max = c.snd_nxt
    if not timer_armed(&c.t_retransmit):
        L.wheel.arm(&c.t_retransmit, now + c.rto_ns)
    arm_loss_probe(L, c, now)
    cc_on_send(&c.cc, now)
    return n + (1 if fin else 0)


cdef uint32_t send_new_segment(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """One new segment whatever cwnd says (a loss probe, RFC 8985 §7.3); the peer's window,
    Nagle and SWS avoidance still hold. Returns the sequence space sent."""
    return _send_next(L, c, segment_payload_max(c), 0, now)


cdef void _sack_recovery_output(TcpLayerBase L, TcpConnection c, uint32_t seg_max,
                                uint64_t now) noexcept:
    """RFC 6675 §5 (C): while cwnd - pipe >= 1 SMSS, send what NextSeg() chooses."""
    cdef uint32_t pipe = sack_pipe(&c.sb, c.snd_una, c.snd_max, c.mss)
    cdef uint32_t n, sent
    cdef seq_t seq
    cdef SackRule rule
    while <uint64_t>c.cc.cwnd >= <uint64_t>pipe + c.mss:
        rule = sack_next_seg(&c.sb, c.snd_una, seg_max, &seq, &n)
        if rule != SACK_RULE_LOST:                 # rule (2), new data, comes before (3)
            sent = _send_next(L, c, seg_max, pipe, now)
            if sent:
                pipe += sent                       # (C.3), (C.4)
                continue
        if rule == SACK_NONE:                      # rule (4): HighRxt stays (C.2)
            if not sack_rescue(&c.sb, c.snd_una, c.snd_max, c.recover, seg_max, &seq, &n):
                return
            sent = send_range(L, c, seq, n, now)
            L.stats[TCP_RETRANSMITS_RESCUE] += 1
        else:                                      # rules (1) and (3)
            sent = send_range(L, c, seq, n, now)
            c.sb.high_rxt = seq + sent             # (C.2)
            c.sb.rxt_ns = now
            L.stats[TCP_RETRANSMITS_SACK] += 1
        if sent == 0:
            return
        pipe += sent                               # (C.4)


cdef void tcp_output(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """Send what the peer's window, cwnd, Nagle and the state allow, then an owed ACK."""
    cdef uint32_t seg_max = segment_payload_max(c)
    cdef uint32_t pipe
    cdef int st = c.state
    if st == ESTABLISHED or st == CLOSE_WAIT or st == FIN_WAIT_1 or st == CLOSING \
            or st == LAST_ACK:
        if c.sack_ok and c.in_recovery:
            _sack_recovery_output(L, c, seg_max, now)
        else:
            while True:
                # outside recovery, pipe is what was sent and neither ACKed nor SACKed
                # (RFC 6675 §5 step (3): limited transmit governed by cwnd - pipe)
                pipe = c.snd_nxt - c.snd_una
                if c.sack_ok and c.sb.n:
                    pipe = sack_unsacked(&c.sb, c.snd_una, c.snd_nxt)
                if _send_next(L, c, seg_max, pipe, now) == 0:
                    break
        # data waiting, nothing in flight to bring an ACK: a zero window is probed (RFC 9293
        # §3.8.6.1), a window held back by SWS avoidance is overridden (RFC 1122 §4.2.3.4)
        if c.snd.len > c.snd_nxt - c.snd_una and c.snd_nxt == c.snd_una \
                and not timer_armed(&c.t_retransmit) and not timer_armed(&c.t_persist):
            L.wheel.arm(&c.t_persist, now + c.rto_ns)
    if c.ack_pending:
        send_ack(L, c, now)
