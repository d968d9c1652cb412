"""Segment scripts: retransmission (RFC 6298 RTO, Karn; RFC 5681 §3.1-3.2 loss window and fast
retransmit; RFC 6582 NewReno). SACK is not permitted here: RFC 6675 recovery is tested
elsewhere."""
import errno

from tcp_script import ctx, seg, flags, seq, ack, length, payload, sent_at


def _established(ctx, rtt=0.1, mss=1000, **kw):
    c, app = ctx.open_active(iss=1000, irs=5000, rtt=rtt, mss=mss, **kw)
    return c, app


def test_rto_from_the_handshake_rtt_and_exponential_backoff(ctx):
    """RFC 6298 §2.2: first sample R → SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR
    (0.1 s → 0.3 s); §5.4-5.5: on expiry retransmit the earliest segment and double RTO;
    §5.3: an ACK of everything stops the timer."""
    c, app = _established(ctx)
    assert c.info()["rto_ms"] == 300
    ctx.do(lambda: c.send(b"a" * 100), at=0.2)
    ctx.expect(flags("PA"), seq(1001), payload(b"a" * 100), sent_at(0.2))
    ctx.advance(2.3)
    for t in (0.5, 1.1, 2.3):
        ctx.expect(flags("PA"), seq(1001), ack(5001), payload(b"a" * 100), sent_at(t))
    assert ctx.tcp.counters()["retransmits_rto"] == 3
    ctx.send(seg("A", 5001, 1101), at=2.4)
    ctx.expect_nothing(until=20)
    assert c.info()["timers"] == []


def test_rto_restarts_from_snd_una_with_a_loss_window_of_one_segment(ctx):
    """RFC 5681 §3.1: after a retransmission timeout cwnd is one segment (LW); slow start
    then sends two for the next ACK. RFC 6298 §5.4: the earliest segment is resent."""
    c, app = _established(ctx)
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    for s in (1001, 2001, 3001):
        ctx.expect(seq(s), length(1000), sent_at(0.2))
    ctx.advance(0.5)
    ctx.expect(seq(1001), length(1000), sent_at(0.5))
    ctx.expect_nothing()
    assert c.info()["cwnd"] == 1000
    ctx.send(seg("A", 5001, 2001), at=0.55)
    ctx.expect(seq(2001), length(1000))
    ctx.expect(seq(3001), length(1000))
    ctx.expect_nothing()


def test_karn_no_rtt_sample_from_a_retransmission_and_the_backoff_is_kept(ctx):
    """RFC 6298 §3 (Karn): an ACK of retransmitted data gives no RTT sample, and the
    backed-off RTO stays for the next new data until a valid sample (§5.7 note)."""
    c, app = _established(ctx)
    ctx.do(lambda: c.send(b"a" * 100), at=0.2)
    ctx.expect(seq(1001), sent_at(0.2))
    ctx.advance(0.5)
    ctx.expect(seq(1001), sent_at(0.5))
    ctx.send(seg("A", 5001, 1101), at=0.55)          # 0.35 s after the first send, 0.05 after
    assert c.info()["srtt_us"] == 100000 and c.info()["rto_ms"] == 600
    ctx.do(lambda: c.send(b"b" * 100), at=1.0)
    ctx.expect(seq(1101), sent_at(1.0))
    ctx.advance(1.6)
    ctx.expect(seq(1101), payload(b"b" * 100), sent_at(1.6))     # the kept RTO: 0.6 s
    ctx.send(seg("A", 5001, 1201), at=1.65)
    ctx.do(lambda: c.send(b"c" * 100), at=2.0)
    ctx.expect(seq(1201), sent_at(2.0))
    ctx.send(seg("A", 5001, 1301), at=2.05)          # a valid sample: 50 ms
    info = c.info()
    assert (info["srtt_us"], info["rttvar_us"], info["rto_ms"]) == (93750, 50000, 293)


def test_rto_minimum(ctx):
    """RFC 6298 §2.4: RTO is at least the minimum (200 ms here, as Linux; the RFC says 1 s)."""
    c, app = _established(ctx, rtt=0.01)
    assert c.info()["rto_ms"] == 200
    ctx.do(lambda: c.send(b"a"), at=0.1)
    ctx.expect(seq(1001), sent_at(0.1))
    ctx.advance(0.3)
    ctx.expect(seq(1001), sent_at(0.3))


def test_rto_maximum(ctx):
    """RFC 6298 §2.5: a maximum may be placed on RTO (60 s by default; 1 s here)."""
    ctx.tcp.rto_max_ns = 10**9
    c, app = _established(ctx)
    ctx.do(lambda: c.send(b"a"), at=0.2)
    ctx.expect(sent_at(0.2))
    ctx.advance(4.1)
    for t in (0.5, 1.1, 2.1, 3.1, 4.1):
        ctx.expect(seq(1001), sent_at(t))


def test_too_many_retransmissions_time_the_connection_out(ctx):
    """RFC 1122 §4.2.3.5: after R2 retransmissions the connection is closed (ETIMEDOUT)."""
    ctx.tcp.retries_max = 3
    c, app = _established(ctx)
    ctx.do(lambda: c.send(b"a"), at=0.2)
    ctx.expect(sent_at(0.2))
    ctx.advance(4.69)
    for t in (0.5, 1.1, 2.3):
        ctx.expect(seq(1001), sent_at(t))
    assert c.state_name == "ESTABLISHED"
    ctx.advance(4.7)
    ctx.expect_nothing()
    assert app.closed_with == errno.ETIMEDOUT
    ctx.assert_clean()


def test_rtt_from_timestamps(ctx):
    """RFC 7323 §4.1 (RTTM): the RTT is now - TSecr of the ACK, sampled per ACK, also for an
    ACK of retransmitted data (the echo names the transmission)."""
    c, app = ctx.open_active(iss=1000, irs=5000, rtt=0.1, mss=1000, ts=(10, None))
    assert c.info()["srtt_us"] == 100000
    ctx.do(lambda: c.send(b"a" * 100), at=0.2)
    d = ctx.expect(seq(1001), sent_at(0.2))
    ctx.send(seg("A", 5001, 1101, ts=(11, d.ts[0])), at=0.25)
    info = c.info()
    assert (info["srtt_us"], info["rttvar_us"]) == (93750, 50000)
    ctx.do(lambda: c.send(b"b" * 100), at=0.3)
    ctx.expect(seq(1101), sent_at(0.3))
    ctx.advance(0.594)
    r = ctx.expect(seq(1101), sent_at(0.594))                       # RTO 293.75 ms
    ctx.send(seg("A", 5001, 1201, ts=(12, r.ts[0])), at=0.614)      # 20 ms after the resend
    assert c.info()["srtt_us"] == (7 * 93750 + 20000) // 8


def test_fast_retransmit_on_the_third_duplicate_ack(ctx):
    """RFC 5681 §3.2: the third duplicate ACK (no data, same window, data outstanding)
    retransmits the missing segment at once; ssthresh = max(FlightSize/2, 2*SMSS),
    cwnd = ssthresh + 3*SMSS; the ACK of all new data ends recovery with cwnd = ssthresh."""
    c, app = _established(ctx)
    ctx.do(lambda: c.send(bytes(5000)), at=0.2)
    for s in range(1001, 6001, 1000):
        ctx.expect(seq(s), length(1000))
    ctx.send(seg("A", 5001, 2001), at=0.3)
    ctx.send(seg("A", 5001, 2001), at=0.31)
    ctx.send(seg("A", 5001, 2001), at=0.32)
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, 2001), at=0.33)
    ctx.expect(flags("A"), seq(2001), length(1000), sent_at(0.33))
    info = c.info()
    assert info["in_recovery"] and (info["ssthresh"], info["cwnd"]) == (2000, 5000)
    assert ctx.tcp.counters()["retransmits_fast"] == 1
    ctx.send(seg("A", 5001, 2001), at=0.34)          # a 4th: cwnd inflates, nothing to send
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, 6001), at=0.4)
    ctx.expect_nothing()
    info = c.info()
    assert not info["in_recovery"] and info["cwnd"] == 2000 and info["timers"] == []


def test_duplicate_ack_rules(ctx):
    """RFC 5681 §2: an ACK is a duplicate only if it carries no data, no FIN, does not
    change the window and data is outstanding; others do not count."""
    c, app = _established(ctx)
    ctx.do(lambda: c.send(bytes(5000)), at=0.2)
    for s in range(1001, 6001, 1000):
        ctx.expect(seq(s))
    ctx.send(seg("A", 5001, 2001), at=0.3)
    ctx.send(seg("A", 5001, 2001, 60000), at=0.31)                 # window changed
    ctx.send(seg("PA", 5001, 2001, 60000, b"x"), at=0.32)         # carries data
    ctx.expect(flags("A"), ack(5002))
    ctx.send(seg("A", 5002, 2001, 60000), at=0.33)
    ctx.send(seg("A", 5002, 2001, 60000), at=0.34)
    ctx.expect_nothing()
    assert c.info()["dupacks"] == 2 and not c.info()["in_recovery"]


def test_newreno_partial_ack_retransmits_the_next_hole(ctx):
    """RFC 6582 §3.2 step 5: in recovery, an ACK that covers new data but not `recover` is
    partial: the first unacknowledged segment is retransmitted at once; the ACK of all up
    to `recover` (step 6) ends recovery."""
    c, app = _established(ctx)
    ctx.do(lambda: c.send(bytes(6000)), at=0.2)
    for s in range(1001, 7001, 1000):
        ctx.expect(seq(s))
    # segments 2001 and 4001 are lost; the others bring an ACK (first new, then duplicates)
    for i, t in enumerate((0.30, 0.31, 0.32, 0.33)):
        ctx.send(seg("A", 5001, 2001), at=t)
    ctx.expect(seq(2001), length(1000), sent_at(0.33))
    ctx.send(seg("A", 5001, 4001), at=0.4)           # partial: up to the second hole
    ctx.expect(seq(4001), length(1000), sent_at(0.4))
    assert c.info()["in_recovery"] and ctx.tcp.counters()["retransmits_partial"] == 1
    ctx.send(seg("A", 5001, 7001), at=0.45)
    ctx.expect_nothing(until=5)
    assert not c.info()["in_recovery"]


def test_abort_after_a_timeout_resets_at_the_highest_sequence_sent(ctx):
    """RFC 9293 §3.10.5 ABORT sends <SEQ=SND.NXT><CTL=RST>. After an RTO our go-back pointer
    sits at SND.UNA, but the peer may already hold everything up to the highest byte sent
    (its RCV.NXT is there), where a RST at the old SND.UNA would fall below its window and be
    ignored (RFC 5961 §3.2): the RST carries SND.MAX, RFC 9293's SND.NXT."""
    c, app = _established(ctx)
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    for s in (1001, 2001, 3001):
        ctx.expect(seq(s), length(1000), sent_at(0.2))
    ctx.advance(0.5)
    ctx.expect(seq(1001), length(1000), sent_at(0.5))     # snd_nxt went back to 2001
    ctx.do(c.abort, at=0.6)
    ctx.expect(flags("RA"), seq(4001), ack(5001), length(0))
    ctx.assert_clean()
