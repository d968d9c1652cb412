"""Segment scripts: the persist timer and silly window syndrome avoidance (RFC 9293 §3.8.6.1,
§3.8.6.2; RFC 1122 §4.2.2.17, §4.2.3.3, §4.2.3.4)."""
from tcp_script import ctx, seg, flags, seq, ack, window, length, sent_at, script_fixture

small = script_fixture(rcvbuf=4096)


def test_zero_window_is_probed_with_exponential_backoff(ctx):
    """RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17: with data waiting and a zero window, probe
    every RTO, backing off exponentially, as long as the peer answers; a window update
    releases the data at once."""
    c, app = ctx.open_active(iss=1000, irs=5000, mss=1000, peer_window=1000)
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    ctx.expect(seq(1001), length(1000))
    ctx.send(seg("A", 5001, 2001, 0), at=0.3)        # RTT 100 ms again: RTO 250 ms
    assert c.info()["rto_ms"] == 250 and c.info()["timers"] == ["persist"]
    for t in (0.55, 1.05, 2.05, 4.05):
        ctx.expect_nothing(until=t - 0.001)
        ctx.advance(t)
        # a segment below the window (SND.UNA - 1, no data) makes the peer show its window
        ctx.expect(flags("A"), seq(2000), ack(5001), length(0), sent_at(t))
        ctx.send(seg("A", 5001, 2001, 0), at=t)     # still closed
    assert ctx.tcp.counters()["window_probes"] == 4
    ctx.send(seg("A", 5001, 2001, 2000), at=4.5)
    ctx.expect(seq(2001), length(1000), sent_at(4.5))
    ctx.expect(seq(3001), length(1000), sent_at(4.5))
    assert c.info()["timers"] == ["retransmit"]


def test_a_closed_window_with_nothing_to_send_is_not_probed(ctx):
    c, app = ctx.open_active(iss=1000, irs=5000, peer_window=0)
    ctx.expect_nothing(until=10)
    assert c.info()["timers"] == []


def test_sender_sws_avoidance_holds_a_small_window_until_the_override_timeout(ctx):
    """RFC 9293 §3.8.6.2.1: with more data than a small usable window, wait until the window
    is at least half the largest seen (or an MSS); RFC 1122 §4.2.3.4: after the override
    timeout send what fits."""
    c, app = ctx.open_active(iss=1000, irs=5000, mss=1000, peer_window=65535)
    ctx.send(seg("A", 5001, 1001, 400), at=0.15)     # the peer's window shrinks to 400
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    ctx.expect_nothing(until=0.49)
    ctx.advance(0.5)
    ctx.expect(seq(1001), length(400), sent_at(0.5))
    ctx.send(seg("A", 5001, 1401, 3000), at=0.6)
    ctx.expect(seq(1401), length(1000), sent_at(0.6))
    ctx.expect(seq(2401), length(1000), sent_at(0.6))
    ctx.expect_nothing()                             # the 600 left: Nagle, data in flight


def test_receiver_sws_avoidance_does_not_advertise_a_small_opening(small):
    """RFC 9293 §3.8.6.2.2 / RFC 1122 §4.2.3.3: the right edge moves only by
    min(RCV.BUFF/2, MSS) or more; smaller openings are not advertised."""
    ctx = small
    c, app, iss = ctx.open_passive(irs=5000, auto_read=False)
    ctx.send(seg("A", 5001, iss + 1, payload=b"a" * 1400),
             seg("A", 6401, iss + 1, payload=b"b" * 1400),
             seg("A", 7801, iss + 1, payload=b"c" * 1296), at=0.2)
    ctx.expect(flags("A"), ack(9097), window(0))
    ctx.do(lambda: c.recv(1000), at=0.3)
    ctx.expect_nothing()
    ctx.send(seg("A", 9097, iss + 1, payload=b"p"), at=0.4)      # a probe: the window is 0
    ctx.expect(flags("A"), ack(9097), window(0))
    ctx.do(lambda: c.recv(460), at=0.5)
    ctx.expect(flags("A"), ack(9097), window(1460))


def test_window_shrunk_to_zero_under_data_in_flight_is_probed_not_timed_out(ctx):
    """RFC 9293 §3.8.6: the peer acknowledges part of what is in flight and shrinks its
    window to zero. The retransmission timer alone runs for the data in flight; when it
    fires, the data beyond the right edge is not lost (no retransmission into a closed
    window, no backoff toward R2): the window is probed in the standard way (MUST-35) for
    as long as the peer answers, and the connection is never timed out for it (SHLD-17).
    When the window opens, everything after SND.UNA goes again."""
    ctx.tcp.retries_max = 3
    c, app = ctx.open_active(iss=1000, irs=5000, mss=1000, peer_window=4000)
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    for s in (1001, 2001, 3001):
        ctx.expect(seq(s), length(1000))
    ctx.send(seg("A", 5001, 2001, 0), at=0.3)        # one segment acknowledged, window 0
    assert c.info()["rto_ms"] == 250 and c.info()["timers"] == ["retransmit"]
    ctx.expect_nothing(until=0.549)
    ctx.advance(0.55)                                 # the RTO: a probe, not a retransmission
    ctx.expect(flags("A"), seq(2000), ack(5001), length(0), sent_at(0.55))
    assert c.info()["timers"] == ["persist"]
    t, gap = 0.55, 0.5
    for _ in range(8):                                # many more probes than retries_max
        ctx.send(seg("A", 5001, 2001, 0), at=t)       # still closed (3 such: no fast rexmit)
        t += gap
        ctx.expect_nothing(until=t - 0.001)
        ctx.advance(t)
        ctx.expect(flags("A"), seq(2000), ack(5001), length(0), sent_at(t))
        assert c.info()["timers"] == ["persist"]
        gap = min(gap * 2, 60.0)
    assert c.state_name == "ESTABLISHED" and app.closed_with is None
    counters = ctx.tcp.counters()
    assert counters["window_probes"] == 9 and counters["timeouts"] == 0
    assert counters["retransmits_rto"] == 0 and counters["retransmits_fast"] == 0
    ctx.send(seg("A", 5001, 2001, 4000), at=t + 0.1)  # open: 2001.. again, then on
    ctx.expect(seq(2001), length(1000), sent_at(t + 0.1))
    ctx.expect(seq(3001), length(1000), sent_at(t + 0.1))
    assert c.info()["timers"] == ["retransmit"]
    ctx.send(seg("A", 5001, 4001, 4000), at=t + 0.2)
    ctx.expect_nothing()
    assert c.info()["timers"] == []


def test_a_fin_alone_in_flight_under_a_zero_window_is_retransmitted(ctx):
    """A FIN takes no room in the window (RFC 9293 §3.10.7.4 sixth check accepts it at the
    right edge), so with only the FIN unacknowledged the retransmission timer goes on."""
    c, app = ctx.open_active(iss=1000, irs=5000, mss=1000, peer_window=0)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(1001))
    assert c.info()["rto_ms"] == 300 and c.info()["timers"] == ["retransmit"]
    ctx.expect_nothing(until=0.499)
    ctx.advance(0.5)
    ctx.expect(flags("FA"), seq(1001), sent_at(0.5))
    assert c.info()["timers"] == ["retransmit"]
    ctx.send(seg("A", 5001, 1002, 0), at=0.6)
    assert c.state_name == "FIN_WAIT_2" and c.info()["timers"] != ["retransmit"]
