# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Loss recovery with SACK (RFC 6675 §5), the ACK side, for connections with sack_ok.

input.pyx calls sack_ack_update() for every acceptable ACK, then sack_cumulative_ack() when
it acknowledged new data and sack_duplicate_ack() when it counts as a duplicate; output.pyx
sends what NextSeg() picks while in recovery (§5 (C)), and timers.pyx calls sack_on_rto().
Connections without SACK keep NewReno (RFC 6582) in input.pyx.

RFC 6675 cannot see a retransmission lost again, nor a loss at the tail of a flight: only
the RTO does, at 200 ms or more and a window of one segment each time, which at 5% loss is
most of a transfer's time (at that loss rate cwnd settles near 5 segments, too few for
three duplicate ACKs after a tail loss). Two rules from RACK-TLP (RFC 8985) fill the gap:

- Lost retransmissions (RFC 8985 §6.2's idea, per recovery round rather than per segment):
  once every retransmission of this recovery left at least srtt * 5/4 ago (an RTT plus
  §6.2's reordering window of srtt/4), an ACK that still leaves SND.UNA's hole lost shows
  they did not all arrive: HighRxt goes back to SND.UNA and NextSeg() rule (1) resends the
  holes that remain. The loss probe timer below applies the same rule when no ACK comes.
- The loss probe timer (RFC 8985 §7): PTO = 2*SRTT after the last transmission (output.pyx
  arm_loss_probe). When it fires, whatever was sent is older than 2*SRTT, so by RACK's
  time rule (§6.2) the segment at SND.UNA is lost: in recovery it is sent again at once
  (with a window of 3-5 segments, IsLost() may never hold for it); after an RTO (SND.UNA
  below RecoveryPoint, no new recovery allowed, RFC 6675 §5.1) the resending goes back to
  it. Outside recovery, if the peer has SACKed anything (sent after SND.UNA's segment, and
  delivered), SND.UNA is lost by the same rule and fast recovery begins (§6.2, §7.4: RACK
  marks it lost, the sender enters recovery). Otherwise it is a tail loss probe (§7.3): a
  new segment, or the last one again, once per ACK, so that the peer's SACK for it starts a
  fast recovery instead of waiting for the RTO.

And Early Retransmit (RFC 5827) for flights too small to ever bring DupThresh duplicates.
"""
from fastloop.net.tcp.seq cimport seq_t, seq_lt, seq_gt, seq_ge
from fastloop.net.tcp.sack cimport (
    DUP_THRESH, sack_clear, sack_update, sack_advance, sack_is_lost, sack_hole_len)
from fastloop.net.tcp.congestion cimport cc_on_congestion, cc_on_recovery_exit
from fastloop.net.tcp.output cimport (
    segment_payload_max, send_range, send_new_segment, arm_loss_probe, tcp_output)
from fastloop.net.tcp.counters cimport *
from fastloop.net.tcp.tcb cimport *


cdef uint32_t sack_ack_update(TcpLayerBase L, TcpConnection c, TcpHeader *h) noexcept:
    """RFC 6675 §4 Update() for an acceptable ACK (SND.UNA <= SEG.ACK <= SND.MAX): what it
    acknowledges cumulatively leaves the scoreboard, its SACK blocks enter it. Returns the
    octets newly SACKed (new SACK information makes a duplicate ACK, RFC 6675 §2)."""
    cdef uint32_t bogus = c.sb.bogus, dsack = c.sb.dsack, added = 0
    if seq_gt(h.ack, c.snd_una):
        sack_advance(&c.sb, h.ack)
    if h.opt.sack_count:
        added = sack_update(&c.sb, h.opt.sack, h.opt.sack_count, h.ack, c.snd_max)
        L.stats[TCP_SACK_BLOCKS_BOGUS] += c.sb.bogus - bogus
        L.stats[TCP_DSACK_BLOCKS_IN] += c.sb.dsack - dsack
    return added


cdef void sack_cumulative_ack(TcpLayerBase L, TcpConnection c, seq_t ack, uint64_t now) noexcept:
    """SND.UNA advanced to ack (the caller updates it after)."""
    c.sb.probe_sent = False                        # RFC 8985 §7.3: one probe per ACK
    arm_loss_probe(L, c, now)                      # RFC 8985 §7.2: re-armed on an ACK
    if not c.in_recovery:
        c.dupacks = 0                              # §5 step (1)
        return
    if seq_ge(ack, c.recover):                     # §5 (A): RecoveryPoint is covered
        c.in_recovery = False                      # the scoreboard above ack stays (§5 (A))
        c.dupacks = 0
        cc_on_recovery_exit(&c.cc, now)
        return
    _lost_retransmissions(L, c, ack, now)
    c.schedule_output()                            # §5 (B), then (C) in output.pyx


cdef void sack_duplicate_ack(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """A duplicate ACK in RFC 6675 §2's sense (with new SACK information, whether or not it
    is also cumulative); SND.UNA is up to date."""
    L.stats[TCP_DUPACKS_IN] += 1
    if c.in_recovery:                              # §5 (B): SetPipe() and (C) in output
        _lost_retransmissions(L, c, c.snd_una, now)
        c.schedule_output()
        return
    if c.snd_una == c.snd_max:
        return
    c.dupacks += 1                                 # §5 step (2)
    # (2.1) DupThresh duplicates, or (2.2) IsLost(HighACK + 1); and no new recovery before
    # the one an RTO ended is acknowledged (§5.1)
    if (c.dupacks >= DUP_THRESH or sack_is_lost(&c.sb, c.snd_una, c.mss)
            or _early_retransmit(c)) and seq_ge(c.snd_una, c.recover):
        _enter_recovery(L, c, now)
    else:
        c.schedule_output()                        # (2.3) limited transmit: cwnd - pipe


cdef bint _early_retransmit(TcpConnection c) noexcept:
    """RFC 5827 §3.2 with SACK: fewer than DupThresh + 1 segments out and no new data can
    go (so no more duplicates will come): ER_thresh = oseg - 1, i.e. all but the segment at
    SND.UNA has been SACKed."""
    cdef uint32_t flight = c.flight()
    cdef uint32_t pipe = flight - c.sb.sacked
    cdef uint32_t oseg = (flight + c.mss - 1) // c.mss
    if oseg > DUP_THRESH or c.sb.sacked == 0 or pipe > c.mss:
        return False
    return not (c.snd.len > flight and c.cc.cwnd >= pipe + c.mss
                and c.snd_wnd >= flight + c.mss)


cdef void _enter_recovery(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """RFC 6675 §5 step (4)."""
    cdef uint32_t n
    c.recover = c.snd_max                          # (4.1) RecoveryPoint = HighData
    c.in_recovery = True
    c.snd_nxt = c.snd_max
    cc_on_congestion(&c.cc, c.flight(), now)       # (4.2) ssthresh = cwnd = FlightSize/2
    c.sb.rescue_valid = False                      # one rescue per recovery (NextSeg (4))
    L.stats[TCP_SACK_RECOVERIES] += 1
    L.stats[TCP_RETRANSMITS_FAST] += 1
    # (4.3) the first segment presumed lost, at SND.UNA; HighRxt is its end
    n = min(sack_hole_len(&c.sb, c.snd_una), segment_payload_max(c))
    c.sb.high_rxt = c.snd_una + send_range(L, c, c.snd_una, n, now)
    c.sb.rxt_ns = now
    c.schedule_output()                            # (4.4) SetPipe() and (4.5) step (C)


cdef void _lost_retransmissions(TcpLayerBase L, TcpConnection c, seq_t una,
                                uint64_t now) noexcept:
    """RACK's rule (module docstring): every retransmission had srtt * 5/4 to be
    acknowledged, and SND.UNA's hole is still lost: send the holes again."""
    if c.srtt_ns == 0 or not seq_gt(c.sb.high_rxt, una):
        return
    if now - c.sb.rxt_ns < c.srtt_ns + c.srtt_ns // 4:
        return
    if not sack_is_lost(&c.sb, una, c.mss):
        return
    c.sb.high_rxt = una
    L.stats[TCP_SACK_LOST_RETRANSMITS] += 1


cdef void sack_on_rto(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """RFC 6675 §5.1: the RTO ends recovery (the caller sets RecoveryPoint = HighData), and
    the SACK information gathered is discarded, as RFC 2018 §8 says a sender SHOULD, since
    the timeout may mean the receiver reneged. Update() goes on with the ACKs that follow,
    and the resending after the RTO skips what they SACK (output.pyx, §5.1's last
    paragraphs)."""
    sack_clear(&c.sb)
    c.sb.high_rxt = c.snd_una
    c.sb.rxt_ns = now                              # SND.UNA's segment goes again now
    c.sb.probe_sent = False
    L.wheel.cancel(&c.t_loss_probe)


cdef void loss_probe_timer(TcpLayerBase L, TcpConnection c, uint64_t now) noexcept:
    """PTO expired: nothing was sent for 2*SRTT and data is outstanding (module docstring)."""
    cdef uint32_t n
    cdef int st = c.state
    if c.snd_una == c.snd_max or not (st == ESTABLISHED or st == CLOSE_WAIT or
                                      st == FIN_WAIT_1 or st == CLOSING or st == LAST_ACK):
        return
    if c.sb.probe_sent:                            # once per ACK: an outage is the RTO's
        return
    c.sb.probe_sent = True
    if c.in_recovery:
        if seq_gt(c.sb.high_rxt, c.snd_una):
            L.stats[TCP_SACK_LOST_RETRANSMITS] += 1    # its retransmission is lost
            c.sb.high_rxt = c.snd_una
        n = send_range(L, c, c.snd_una, min(sack_hole_len(&c.sb, c.snd_una),
                                            segment_payload_max(c)), now)
        if seq_gt(c.snd_una + n, c.sb.high_rxt):
            c.sb.high_rxt = c.snd_una + n
        c.sb.rxt_ns = now
        L.stats[TCP_RETRANSMITS_SACK] += 1
        tcp_output(L, c, now)
        return
    if seq_lt(c.snd_una, c.recover):               # resending after an RTO
        if seq_gt(c.snd_nxt, c.snd_una):
            c.snd_nxt = c.snd_una                  # SND.UNA's resend is lost: back to it
            L.stats[TCP_SACK_LOST_RETRANSMITS] += 1
            tcp_output(L, c, now)
        return
    if c.sb.sacked:                                # RACK: SND.UNA is lost
        _enter_recovery(L, c, now)
        tcp_output(L, c, now)
        return
    L.stats[TCP_LOSS_PROBES] += 1                  # RFC 8985 §7.3: new data, or the last
                                                   # segment again
    if send_new_segment(L, c, now):
        return
    n = min(c.snd_max - c.snd_una, segment_payload_max(c))
    send_range(L, c, c.snd_max - n, n, now)
