"""Segment scripts: closing (RFC 9293 §3.6, §3.10.4, §3.10.7.4 eighth; RFC 1337; RFC 6191)."""
from tcp_script import (ctx, seg, flags, seq, ack, length, payload, sent_at, script_fixture,
                        PEER_PORT)


def test_active_close_fin_wait_1_2_time_wait(ctx):
    """RFC 9293 §3.6 case 1: FIN → FIN-WAIT-1; its ACK → FIN-WAIT-2; the peer's FIN is
    ACKed → TIME-WAIT, which lasts 2*MSL (60 s here) and then the connection is gone."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1), ack(5001), length(0))
    assert c.state_name == "FIN_WAIT_1"
    ctx.send(seg("A", 5001, iss + 2), at=0.3)
    ctx.expect_nothing()
    assert c.state_name == "FIN_WAIT_2" and c.info()["timers"] == []
    ctx.send(seg("FA", 5001, iss + 2), at=0.4)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))
    assert c.state_name == "TIME_WAIT" and app.events == ["established", "eof", ("closed", 0)]
    ctx.expect_nothing(until=60.39)
    assert len(ctx.tcp.connection_list()) == 1
    ctx.advance(60.4)
    ctx.expect_nothing()
    ctx.assert_clean()


def test_fin_is_retransmitted(ctx):
    """RFC 9293 §3.10.4 / RFC 6298 §5: the FIN occupies sequence space and is retransmitted
    like data, with backoff."""
    c, app, iss = ctx.open_passive(irs=5000)          # SRTT 100 ms: RTO 300 ms
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1), sent_at(0.2))
    ctx.advance(1.1)
    ctx.expect(flags("FA"), seq(iss + 1), ack(5001), sent_at(0.5))
    ctx.expect(flags("FA"), seq(iss + 1), sent_at(1.1))
    ctx.send(seg("A", 5001, iss + 2), at=1.15)
    ctx.expect_nothing(until=5)
    assert c.state_name == "FIN_WAIT_2"


def test_simultaneous_close_goes_through_closing(ctx):
    """RFC 9293 §3.6 case 3 (figure 13): FIN-WAIT-1 gets a FIN that does not ACK ours →
    CLOSING; the ACK of our FIN → TIME-WAIT."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1), ack(5001))
    ctx.send(seg("FA", 5001, iss + 1), at=0.21)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))
    assert c.state_name == "CLOSING"
    ctx.send(seg("A", 5002, iss + 2), at=0.3)
    ctx.expect_nothing()
    assert c.state_name == "TIME_WAIT" and app.closed_with == 0


def test_fin_and_the_ack_of_ours_together_go_straight_to_time_wait(ctx):
    """RFC 9293 §3.10.7.4 eighth, FIN-WAIT-1: if our FIN has been ACKed (by this segment),
    enter TIME-WAIT."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1))
    ctx.send(seg("FA", 5001, iss + 2), at=0.3)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))
    assert c.state_name == "TIME_WAIT"


def test_passive_close_close_wait_last_ack(ctx):
    """RFC 9293 §3.6 case 2: the peer's FIN → ACK, CLOSE-WAIT, EOF to the application, which
    may still send (half-close, §3.6); its close sends FIN → LAST-ACK; the ACK of the FIN
    → CLOSED, with no TIME-WAIT."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("FA", 5001, iss + 1), at=0.2)
    ctx.expect(flags("A"), seq(iss + 1), ack(5002))
    assert c.state_name == "CLOSE_WAIT" and app.events == ["established", "eof"]

    def reply_and_close():
        c.send(b"bye")
        c.close()
    ctx.do(reply_and_close, at=0.3)
    ctx.expect(flags("FPA"), seq(iss + 1), ack(5002), payload(b"bye"))   # FIN rides along
    assert c.state_name == "LAST_ACK"
    ctx.send(seg("A", 5002, iss + 5), at=0.4)
    ctx.expect_nothing()
    assert app.closed_with == 0
    ctx.assert_clean()


def test_half_close_ours_the_peer_keeps_sending(ctx):
    """RFC 9293 §3.6: after our FIN, FIN-WAIT-2 still receives data until the peer's FIN."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1))
    ctx.send(seg("PA", 5001, iss + 2, payload=b"more"), at=0.3)
    ctx.expect(flags("A"), seq(iss + 2), ack(5005))
    assert c.state_name == "FIN_WAIT_2" and app.received == b"more"
    ctx.send(seg("FPA", 5005, iss + 2, payload=b"!"), at=0.4)
    ctx.expect(flags("A"), ack(5007))
    assert app.received == b"more!" and c.state_name == "TIME_WAIT"


def test_orphaned_fin_wait_2_is_bounded(ctx):
    """An application that closed (not just shut down) cannot read: FIN-WAIT-2 waits for
    the peer's FIN a bounded time (RFC 9293 §3.10.7.4 leaves it open; Linux's
    tcp_fin_timeout, 60 s here)."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.close, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1))
    ctx.send(seg("A", 5001, iss + 2), at=0.3)
    assert c.state_name == "FIN_WAIT_2"
    ctx.expect_nothing(until=60.29)
    assert c.state_name == "FIN_WAIT_2"
    ctx.advance(60.3)
    ctx.expect_nothing()
    ctx.assert_clean()


def _into_time_wait(ctx):
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1))
    ctx.send(seg("FA", 5001, iss + 2), at=0.3)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))
    assert c.state_name == "TIME_WAIT"
    return c, iss


def test_time_wait_acks_a_retransmitted_fin_and_restarts_2msl(ctx):
    """RFC 9293 §3.10.7.4 eighth, TIME-WAIT: a retransmitted FIN is acknowledged and the
    2 MSL timeout restarted."""
    c, iss = _into_time_wait(ctx)
    ctx.send(seg("FA", 5001, iss + 2), at=30)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))
    ctx.expect_nothing(until=89.99)
    assert c.state_name == "TIME_WAIT"
    ctx.advance(90)
    ctx.assert_clean()


def test_rst_in_time_wait_is_ignored(ctx):
    """RFC 1337 §3 (TIME-WAIT assassination, fix F1): a RST in TIME-WAIT is ignored."""
    c, iss = _into_time_wait(ctx)
    ctx.send(seg("R", 5002, 0), at=1)
    ctx.send(seg("RA", 5002, iss + 2), at=1)
    ctx.expect_nothing()
    assert c.state_name == "TIME_WAIT"


def test_time_wait_is_reused_by_a_syn_with_a_higher_sequence_number(ctx):
    """RFC 9293 §3.10.7.4 / RFC 6191 §2 (without timestamps): a SYN whose sequence number is
    above RCV.NXT ends TIME-WAIT and opens a new incarnation; a lower one gets an ACK."""
    c, iss = _into_time_wait(ctx)
    ctx.send(seg("S", 4000, 0, mss=1460), at=1)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))
    assert c.state_name == "TIME_WAIT"
    ctx.send(seg("S", 90000, 0, mss=1460), at=2)
    sa = ctx.expect(flags("SA"), ack(90001))
    assert c.state_name == "CLOSED" and ctx.tcp.counters()["time_wait_reused"] == 1
    (new,) = ctx.tcp.connection_list()
    assert new.state_name == "SYN_RECEIVED" and sa.seq != iss


def test_time_wait_reuse_with_timestamps_needs_a_newer_tsval(ctx):
    """RFC 6191 §2: with timestamps, a SYN ends TIME-WAIT only with a TSval greater than
    TS.Recent, whatever its sequence number."""
    c, app, iss = ctx.open_passive(irs=5000, ts=(100, 0))
    ctx.do(c.shutdown, at=0.2)
    fin = ctx.expect(flags("FA"), seq(iss + 1))
    ctx.send(seg("FA", 5001, iss + 2, ts=(200, fin.ts[0])), at=0.3)
    ctx.expect(flags("A"), ack(5002))
    ctx.send(seg("S", 90000, 0, mss=1460, ts=(150, 0)), at=1)
    ctx.expect(flags("A"), seq(iss + 2), ack(5002))       # older TSval: stays TIME-WAIT
    ctx.send(seg("S", 10, 0, mss=1460, ts=(300, 0)), at=2)
    ctx.expect(flags("SA"), ack(11))
    assert c.state_name == "CLOSED"


def test_close_with_unread_data_resets(ctx):
    """RFC 9293 §3.10.4 / RFC 2525 §2.17: closing with data not yet read sends RST (the
    peer must know it was not delivered) and the connection is gone at once."""
    c, app, iss = ctx.open_passive(irs=5000, auto_read=False)
    ctx.send(seg("PA", 5001, iss + 1, payload=b"unread"), at=0.2)
    ctx.expect(flags("A"), ack(5007))
    ctx.do(c.close, at=0.3)
    ctx.expect(flags("RA"), seq(iss + 1), ack(5007), length(0))
    ctx.assert_clean()
    ctx.send(seg("A", 5007, iss + 1), at=0.4)          # the connection is gone: RST
    ctx.expect(flags("R"), seq(iss + 1))


def test_abort_sends_rst_and_reports(ctx):
    """RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST>; queued data is dropped."""
    import errno
    c, app, iss = ctx.open_passive(irs=5000, peer_window=0)
    ctx.do(lambda: c.send(b"x" * 100), at=0.2)
    ctx.do(c.abort, at=0.3)
    ctx.expect(flags("RA"), seq(iss + 1), ack(5001))
    assert app.closed_with == errno.ECONNABORTED
    ctx.assert_clean()


def test_shutdown_during_a_simultaneous_open(ctx):
    """RFC 9293 §3.10.4 CLOSE in SYN-RECEIVED: queue the FIN until established, then
    FIN-WAIT-1; the FIN's ACK then leads to FIN-WAIT-2."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"))
    ctx.send(seg("S", 5000, 0, mss=1460), at=0.01)
    ctx.expect(flags("SA"), seq(1000), ack(5001))
    ctx.do(c.shutdown, at=0.02)
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, 1001), at=0.03)
    ctx.expect(flags("FA"), seq(1001), ack(5001))
    assert c.state_name == "FIN_WAIT_1"
    ctx.send(seg("A", 5001, 1002), at=0.04)
    assert c.state_name == "FIN_WAIT_2"


def test_data_after_close_is_answered_by_rst(ctx):
    """RFC 1122 §4.2.2.13: if new data arrives after CLOSE (nobody will read it), send RST
    to show it was lost, rather than acknowledge it (as Linux, TCPAbortOnData)."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.close, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1), ack(5001))
    ctx.send(seg("A", 5001, iss + 2), at=0.3)
    assert c.state_name == "FIN_WAIT_2"
    ctx.send(seg("PA", 5001, iss + 2, payload=b"late"), at=0.4)
    ctx.expect(flags("RA"), seq(iss + 2))
    ctx.assert_clean()


def test_data_after_shutdown_is_still_delivered(ctx):
    """Half-close is not close: after shutdown() the application still reads (RFC 9293
    §3.6); covered in FIN-WAIT-1 here."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(iss + 1))
    ctx.send(seg("PA", 5001, iss + 1, payload=b"late"), at=0.3)
    ctx.expect(flags("A"), ack(5005))
    assert app.received == b"late" and c.state_name == "FIN_WAIT_1"


tw_capped = script_fixture(time_wait_max=1)


def test_time_wait_beyond_its_bound_closes_at_once(tw_capped):
    """Memory stays bounded under connection churn: with time_wait_max entries in TIME-WAIT
    the next connection to get there is forgotten at once and counted (as Linux past
    tcp_max_tw_buckets); its peer's retransmitted FIN then meets no connection (a RST)."""
    ctx = tw_capped
    first, iss1 = _into_time_wait(ctx)
    assert ctx.tcp.counters()["time_wait"] == 1
    ctx.send(seg("S", 7000, 0, mss=1460, sport=PEER_PORT + 1), at=1)
    sa = ctx.expect(flags("SA"), ack(7001))
    ctx.send(seg("A", 7001, sa.seq + 1, sport=PEER_PORT + 1), at=1.1)
    second = ctx.accepted[-1]
    ctx.do(second.conn.shutdown, at=1.2)
    ctx.expect(flags("FA"), seq(sa.seq + 1))
    ctx.send(seg("FA", 7001, sa.seq + 2, sport=PEER_PORT + 1), at=1.3)
    ctx.expect(flags("A"), seq(sa.seq + 2), ack(7002))
    counters = ctx.tcp.counters()
    assert second.conn.state_name == "CLOSED" and second.events[-1] == ("closed", 0)
    assert counters["time_wait_overflows"] == 1 and counters["time_wait"] == 1
    assert ctx.tcp.connection_list() == [first]
    ctx.send(seg("FA", 7001, sa.seq + 2, sport=PEER_PORT + 1), at=2)
    ctx.expect(flags("R"), seq(sa.seq + 2))
    ctx.advance(60.4)                                 # the first one's 2*MSL ends
    assert ctx.tcp.counters()["time_wait"] == 0
    ctx.assert_clean()
