# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Loss recovery with SACK (RFC 6675 §5), the ACK side, for connections with sack_ok.

input.pyx calls sack_ack_update() for every acceptable ACK, then sack_cumulative_ack() when
it acknowledged new data and sack_duplicate_ack() when it counts as a duplicate; output.pyx
sends what NextSeg() picks while in recovery (§5 (C)), and timers.pyx calls sack_on_rto().
Connections without SACK keep NewReno (RFC 6582) in input.pyx.

Beyond RFC 6675, which cannot see a retransmission being lost again (only the RTO can), one
rule from RACK (RFC 8985 §6.2): once every retransmission of this recovery left at least
an RTT and a quarter ago (RFC 8985 §6.2 step 4's reordering window, srtt/4), an ACK that still
leaves SND.UNA's hole lost shows those retransmissions did not all arrive, so HighRxt goes
back to SND.UNA and NextSeg() rule (1) resends the holes that remain. Without it, each
lost retransmission costs an RTO (200 ms and a window of 1 SMSS), which at 5% loss is most
of a transfer's time.
"""
from fastloop.net.tcp.seq cimport seq_t, seq_gt, seq_ge
from fastloop.net.tcp.sack cimport (
    DUP_THRESH, sack_clear, sack_update, sack_advance, sack_is_lost, sack_hole_len)
from fastloop.net.tcp.congestion cimport cc_on_congestion, cc_on_recovery_exit
from fastloop.net.tcp.output cimport send_range
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
    if (c.dupacks >= DUP_THRESH or sack_is_lost(&c.sb, c.snd_una, c.mss)) \
            and seq_ge(c.snd_una, c.recover):
        _enter_recovery(L, c, now)
    else:
        c.schedule_output()                        # (2.3) limited transmit: cwnd - pipe


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
    n = min(sack_hole_len(&c.sb, c.snd_una), <uint32_t>c.mss)
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


cdef void sack_on_rto(TcpConnection c) noexcept:
    """RFC 6675 §5.1: the RTO ends recovery (the caller sets RecoveryPoint = HighData), and
    the SACK information gathered is discarded, as RFC 2018 §8 says a sender SHOULD, since
    the timeout may mean the receiver reneged. Update() goes on with the ACKs that follow,
    and the resending after the RTO skips what they SACK (output.pyx, §5.1's last
    paragraphs)."""
    sack_clear(&c.sb)
    c.sb.high_rxt = c.snd_una
