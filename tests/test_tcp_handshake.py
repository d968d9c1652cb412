"""Segment scripts: opening a connection (RFC 9293 §3.5, §3.10.7.1-3; RFC 6298; RFC 4987)."""
import errno

from tcp_script import (ctx, seg, flags, seq, ack, window, options, no_options, payload,
                        sent_at, length, PEER_PORT, US_PORT, script_fixture)

nocookies = script_fixture(syncookies=False)


def test_active_open_offers_every_option_and_acks_the_syn_ack(ctx):
    """RFC 9293 §3.5 (three-way handshake) and §3.10.7.3: SYN <SEQ=ISS>, then on the SYN-ACK
    <SEQ=ISS+1><ACK=IRS+1><CTL=ACK>. RFC 7323 §2.2/§3.2, RFC 2018 §2: WS, TS, SACK-permitted
    offered on the SYN; its window is never scaled."""
    c, app = ctx.connect(iss=1000, at=0)
    syn = ctx.expect(flags("S"), seq(1000), window(65535),
                     options(mss=1460, wscale=2, sack_perm=True), sent_at(0))
    assert syn.ts[1] == 0 and c.state_name == "SYN_SENT"
    ctx.send(seg("SA", 5000, 1001, 30000, mss=1400), at=0.05)
    ctx.expect(flags("A"), seq(1001), ack(5001), window(65535), no_options())
    assert c.state_name == "ESTABLISHED" and app.events == ["established"]
    info = c.info()
    assert (info["mss"], info["snd_wnd"], info["timestamps"], info["sack"],
            info["snd_wscale"]) == (1400, 30000, False, False, None)
    assert info["srtt_us"] == 50000                # RFC 6298 §2.2: the first sample
    ctx.expect_nothing(until=5)


def test_passive_open_answers_only_the_options_offered(ctx):
    """RFC 9293 §3.10.7.2: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>; RFC 7323 §1.3 / RFC 2018 §2:
    WS, TS and SACK-permitted only in reply to the peer's."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, 8192, mss=1460), at=0)
    sa = ctx.expect(flags("SA"), ack(7001), window(65535), options(
        mss=1460, wscale=None, sack_perm=None, ts=None))
    assert ctx.accepted == []
    ctx.send(seg("A", 7001, sa.seq + 1, 8192), at=0.02)
    ctx.expect_nothing()
    (app,) = ctx.accepted
    assert app.events == ["established"] and app.conn.info()["snd_wnd"] == 8192
    assert ctx.tcp.counters()["passive_opens"] == 1


def test_passive_open_with_every_option(ctx):
    """RFC 7323 §2.2: our shift in the SYN-ACK, the peer's applies to its later windows;
    RFC 7323 §3.2: TSecr of the SYN-ACK echoes the SYN's TSval."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, 8192, mss=1460, wscale=7, sack_perm=True, ts=(555, 0)), at=0)
    sa = ctx.expect(flags("SA"), ack(7001), window(65535),
                    options(mss=1460, wscale=2, sack_perm=True, ts=(None, 555)))
    ctx.send(seg("A", 7001, sa.seq + 1, 100, ts=(556, sa.ts[0])), at=0.02)
    (app,) = ctx.accepted
    info = app.conn.info()
    assert (info["snd_wnd"], info["mss"], info["timestamps"], info["sack"]) == \
        (100 << 7, 1460 - 12, True, True)
    assert info["srtt_us"] == 20000                # RTTM from the echoed TSval (RFC 7323 §4)


def test_syn_retransmitted_with_exponential_backoff_then_connect_timeout(ctx):
    """RFC 6298 §2.1 initial RTO 1 s, §5.5 doubled per expiry; the connect attempt is bounded
    (75 s, as Linux's connect timeout) and fails with ETIMEDOUT."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"), seq(1000), sent_at(0))
    for t in (1, 3, 7, 15, 31, 63):
        ctx.advance(t)
        ctx.expect(flags("S"), seq(1000), sent_at(t), options(mss=1460, wscale=2))
    ctx.expect_nothing(until=74.9)
    assert c.state_name == "SYN_SENT"
    ctx.advance(75)
    ctx.expect_nothing()
    assert app.closed_with == errno.ETIMEDOUT
    assert ctx.tcp.counters()["failed_connects"] == 1
    ctx.assert_clean()


def test_connect_timeout_is_configurable(ctx):
    ctx.tcp.connect_timeout_ns = 5 * 10**9
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"), sent_at(0))
    ctx.advance(4.5)
    ctx.expect(flags("S"), sent_at(1))
    ctx.expect(flags("S"), sent_at(3))
    ctx.advance(5)
    ctx.expect_nothing()
    assert app.closed_with == errno.ETIMEDOUT
    ctx.assert_clean()


def test_retransmitted_syn_means_an_initial_window_of_one_segment(ctx):
    """RFC 6928 §2 / RFC 5681 §3.1: if the SYN was retransmitted, the initial window is one
    segment; the RTT of a retransmitted SYN is not sampled (Karn, RFC 6298 §3)."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"), sent_at(0))
    ctx.advance(1)
    ctx.expect(flags("S"), sent_at(1))
    ctx.send(seg("SA", 5000, 1001, 65535, mss=1000), at=1.1)
    ctx.expect(flags("A"), ack(5001))
    assert c.info()["srtt_us"] == 0 and c.info()["rto_ms"] == 2000
    ctx.do(lambda: c.send(bytes(5000)))
    ctx.expect(flags("A"), seq(1001), length(1000))
    ctx.expect_nothing()


def test_simultaneous_open(ctx):
    """RFC 9293 §3.5 figure 7: SYN-SENT gets a SYN → SYN-RECEIVED, <SEQ=ISS><ACK=IRS+1>
    <CTL=SYN,ACK>; the peer's SYN-ACK is an old SYN (not acceptable: an ACK in reply), and
    the peer's ACK completes the handshake."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"), seq(1000))
    ctx.send(seg("S", 5000, 0, 65535, mss=1460), at=0.01)
    ctx.expect(flags("SA"), seq(1000), ack(5001), options(mss=1460, wscale=None))
    assert c.state_name == "SYN_RECEIVED"
    ctx.send(seg("SA", 5000, 1001, 65535, mss=1460), at=0.02)
    ctx.expect(flags("A"), seq(1001), ack(5001))
    ctx.send(seg("A", 5001, 1001, 65535), at=0.03)
    assert c.state_name == "ESTABLISHED" and app.events == ["established"]
    ctx.expect_nothing(until=3)


def test_syn_to_a_closed_port_is_reset(ctx):
    """RFC 9293 §3.10.7.1: no ACK → <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; an ACK →
    <SEQ=SEG.ACK><CTL=RST>; a RST gets nothing."""
    ctx.send(seg("S", 7000, 0, payload=b"abc"), at=0)
    ctx.expect(flags("RA"), seq(0), ack(7004), window(0), no_options())
    ctx.send(seg("A", 7000, 123456))
    ctx.expect(flags("R"), seq(123456), window(0))
    ctx.send(seg("FA", 7000, 99, payload=b"xy"))
    ctx.expect(flags("R"), seq(99))
    ctx.send(seg("F", 7000, 0, payload=b"xy"))
    ctx.expect(flags("RA"), seq(0), ack(7003))
    ctx.send(seg("RA", 7000, 99))
    ctx.expect_nothing()
    assert ctx.tcp.counters()["no_listener"] == 5


def test_listener_resets_a_stray_ack_and_ignores_a_stray_rst(nocookies):
    """RFC 9293 §3.10.7.2: in LISTEN an ACK earns <SEQ=SEG.ACK><CTL=RST>, a RST is ignored."""
    ctx = nocookies
    ctx.listen()
    ctx.send(seg("A", 7000, 4242), at=0)
    ctx.expect(flags("R"), seq(4242))
    ctx.send(seg("R", 7000, 0))
    ctx.send(seg("", 7000, 0))                     # no SYN, no ACK, no RST: dropped
    ctx.expect_nothing()


def test_syn_ack_with_an_unacceptable_ack_is_reset_and_the_attempt_goes_on(ctx):
    """RFC 9293 §3.10.7.3: SEG.ACK =< ISS or > SND.NXT → <SEQ=SEG.ACK><CTL=RST>, drop."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"))
    ctx.send(seg("SA", 5000, 5555, mss=1460), at=0.01)
    ctx.expect(flags("R"), seq(5555))
    ctx.send(seg("SA", 5000, 1000, mss=1460))
    ctx.expect(flags("R"), seq(1000))
    assert c.state_name == "SYN_SENT"
    ctx.send(seg("SA", 5000, 1001, mss=1460))
    ctx.expect(flags("A"), ack(5001))
    assert c.state_name == "ESTABLISHED"


def test_rst_to_our_syn_refuses_the_connection(ctx):
    """RFC 9293 §3.10.7.3: an acceptable RST,ACK in SYN-SENT → ECONNREFUSED; a RST without
    ACK is dropped."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"))
    ctx.send(seg("R", 0, 0), at=0.01)
    assert c.state_name == "SYN_SENT"
    ctx.send(seg("RA", 0, 1001))
    ctx.expect_nothing()
    assert app.closed_with == errno.ECONNREFUSED
    ctx.assert_clean()


def test_syn_ack_retransmitted_and_answered_again_for_a_retransmitted_syn(ctx):
    """RFC 6298 §2.1: the SYN-ACK is retransmitted after 1 s; RFC 9293 §3.10.7.4 (fourth, and
    RFC 5961 §4): a retransmission of the peer's SYN gets our SYN-ACK again."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, mss=1460), at=0)
    sa = ctx.expect(flags("SA"), ack(7001), sent_at(0))
    ctx.advance(1)
    ctx.expect(flags("SA"), seq(sa.seq), ack(7001), sent_at(1))
    ctx.send(seg("S", 7000, 0, mss=1460), at=1.5)
    ctx.expect(flags("SA"), seq(sa.seq), ack(7001), sent_at(1.5))
    ctx.send(seg("A", 7001, sa.seq + 1), at=1.6)
    ctx.expect_nothing(until=10)
    assert ctx.accepted[0].events == ["established"]


def test_half_open_connection_is_bounded(ctx):
    """RFC 4987 §3.3: a SYN-RECEIVED connection whose ACK never comes does not live for ever:
    its SYN-ACK is retransmitted (RFC 6298 backoff) and it is dropped, freeing its slot."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, mss=1460), at=0)
    ctx.expect(flags("SA"), sent_at(0))
    for t in (1, 3, 7, 15, 31, 63):
        ctx.advance(t)
        ctx.expect(flags("SA"), sent_at(t))
    ctx.advance(200)
    ctx.expect_nothing()
    ctx.assert_clean()


def test_listen_backlog_bounds_the_half_open_queue(nocookies):
    """The half-open queue holds `backlog` connections (RFC 4987 §3.2); further SYNs are
    dropped and counted (without cookies), and a completed handshake frees a slot."""
    ctx = nocookies
    ctx.listen(backlog=2)
    ctx.send(seg("S", 100, 0, mss=1460, sport=40001), at=0)
    a = ctx.expect(flags("SA"), ack(101))
    ctx.send(seg("S", 200, 0, mss=1460, sport=40002))
    ctx.expect(flags("SA"), ack(201))
    ctx.send(seg("S", 300, 0, mss=1460, sport=40003))
    ctx.expect_nothing()
    assert ctx.tcp.counters()["listen_overflows"] == 1
    ctx.send(seg("A", 101, a.seq + 1, sport=40001), at=0.1)
    ctx.send(seg("S", 300, 0, mss=1460, sport=40003))
    ctx.expect(flags("SA"), ack(301))
    assert len(ctx.accepted) == 1 and len(ctx.tcp.connection_list()) == 3


def test_syn_cookies_when_the_half_open_queue_is_full(ctx):
    """RFC 4987 §3.6: with the queue full the SYN-ACK's ISN is a cookie and no state is kept;
    the ACK that returns it (SEG.ACK - 1) makes the connection. Without timestamps no window
    scale or SACK can be remembered, so none is offered."""
    ctx.listen(backlog=1)
    ctx.send(seg("S", 100, 0, mss=1460, sport=40001), at=0)
    ctx.expect(flags("SA"), ack(101), options(mss=1460))
    ctx.send(seg("S", 900, 0, 4000, mss=1400, wscale=5, sport=40002))
    cookie = ctx.expect(flags("SA"), ack(901), window(65535),
                        options(mss=1460, wscale=None, sack_perm=None, ts=None))
    assert len(ctx.tcp.connection_list()) == 1           # no state for the cookie
    ctx.send(seg("PA", 901, cookie.seq + 1, 4000, b"hello", sport=40002), at=0.05)
    ctx.expect(flags("A"), seq(cookie.seq + 1), ack(906))
    (app,) = ctx.accepted
    assert app.received == b"hello" and app.conn.remote[1] == 40002
    assert app.conn.info()["snd_wnd"] == 4000            # unscaled: WS was not agreed
    counters = ctx.tcp.counters()
    assert counters["syncookies_sent"] == 1 and counters["syncookies_ok"] == 1
    # a forged cookie makes nothing, and is reset (RFC 9293 §3.10.7.2: an ACK in LISTEN)
    ctx.send(seg("A", 901, cookie.seq + 77, sport=40003))
    ctx.expect(flags("R"), seq(cookie.seq + 77))
    assert ctx.tcp.counters()["syncookies_failed"] == 1
    assert len(ctx.tcp.connection_list()) == 2


def test_syn_cookie_with_timestamps_keeps_window_scale_and_sack(ctx):
    """RFC 4987 §3.6 with the options encoded in the TSval (as Linux): the cookie's SYN-ACK
    offers SACK-permitted and window scale 0, and the connection the returning ACK makes
    uses the peer's scale and SACK."""
    ctx.listen(backlog=1)
    ctx.send(seg("S", 100, 0, mss=1460, sport=40001), at=0)
    ctx.expect(flags("SA"), ack(101))
    ctx.send(seg("S", 900, 0, 4000, mss=1460, wscale=6, sack_perm=True, ts=(77, 0),
                 sport=40002))
    ck = ctx.expect(flags("SA"), ack(901), options(mss=1460, wscale=0, sack_perm=True,
                                                   ts=(None, 77)))
    ctx.send(seg("A", 901, ck.seq + 1, 100, ts=(78, ck.ts[0]), sport=40002), at=0.05)
    ctx.expect_nothing()
    (app,) = ctx.accepted
    info = app.conn.info()
    assert (info["snd_wnd"], info["sack"], info["timestamps"], info["rcv_wscale"]) == \
        (100 << 6, True, True, 0)
    ctx.send(seg("A", 1001, ck.seq + 1, 100, b"x" * 10, ts=(79, ck.ts[0]), sport=40002))
    ctx.expect(flags("A"), ack(901), options(sack=[(1001, 1011)], ts=(None, 78)))


def test_the_handshake_ack_may_carry_data(ctx):
    """RFC 9293 §3.10.7.4: the ACK that completes the handshake is processed further: its
    data is delivered (after the application has the connection)."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, mss=1460), at=0)
    sa = ctx.expect(flags("SA"))
    ctx.send(seg("PA", 7001, sa.seq + 1, payload=b"GET /"), at=0.1)
    ctx.expect(flags("A"), seq(sa.seq + 1), ack(7006))
    (app,) = ctx.accepted
    assert app.events == ["established", "data"] and app.received == b"GET /"


def test_an_unacceptable_handshake_ack_is_reset(ctx):
    """RFC 9293 §3.10.7.4 fifth, SYN-RECEIVED: an ACK outside SND.UNA < SEG.ACK =< SND.NXT
    gets <SEQ=SEG.ACK><CTL=RST>; the half-open connection stays for the right one."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, mss=1460), at=0)
    sa = ctx.expect(flags("SA"))
    ctx.send(seg("A", 7001, sa.seq + 5), at=0.1)
    ctx.expect(flags("R"), seq(sa.seq + 5))
    assert ctx.accepted == []
    ctx.send(seg("A", 7001, sa.seq + 1), at=0.2)
    assert len(ctx.accepted) == 1


def test_a_retransmitted_syn_ack_is_acknowledged_again(ctx):
    """Our handshake ACK was lost: the peer's SYN-ACK again is an old duplicate (RFC 9293
    §3.10.7.4 first check), answered by <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("SA", 5000, 1001, mss=1460), at=1.1)
    ctx.expect(flags("A"), seq(1001), ack(5001))
    assert c.state_name == "ESTABLISHED" and app.events == ["established"]


def test_data_written_before_the_handshake_leaves_with_the_third_segment(ctx):
    """RFC 9293 §3.10.7.3: data queued in SYN-SENT is sent once established; the first data
    segment carries the ACK of the SYN-ACK (no separate ACK)."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"))
    assert c.send(b"early") == 5
    ctx.send(seg("SA", 5000, 1001, mss=1460), at=0.1)
    ctx.expect(flags("PA"), seq(1001), ack(5001), payload(b"early"))
    ctx.expect_nothing()


def test_a_closed_listener_resets_new_syns(ctx):
    """RFC 9293 §3.10.7.1: with the listener gone the port is CLOSED."""
    lst = ctx.listen()
    lst.close()
    ctx.send(seg("S", 7000, 0, mss=1460), at=0)
    ctx.expect(flags("RA"), seq(0), ack(7001))


def test_data_and_fin_on_the_syn_ack_are_delivered(ctx):
    """RFC 9293 §3.10.7.3 (SYN-SENT, fourth): after the SYN is taken, "if there are other
    controls or text in the segment, continue processing at the sixth step": the text is
    queued and the FIN processed, so one ACK covers SYN, data and FIN."""
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"), seq(1000))
    ctx.send(seg("FSA", 5000, 1001, 30000, mss=1400, payload=b"banner"), at=0.05)
    ctx.expect(flags("A"), seq(1001), ack(5008))
    assert app.events == ["established", "data", "eof"]
    assert bytes(app.received) == b"banner"
    assert c.state_name == "CLOSE_WAIT"
    ctx.do(c.close, at=0.1)
    ctx.expect(flags("FA"), seq(1001), ack(5008))
    ctx.send(seg("A", 5008, 1002), at=0.15)
    ctx.assert_clean()


def test_refused_or_unacceptable_syn_acks_carrying_data_free_it(ctx):
    """The same drops with text on the segment (the mempool check after the test proves the
    mbufs went back): an unacceptable ACK earns a RST; a RST with its ACK ends the attempt."""
    import errno
    c, app = ctx.connect(iss=1000, at=0)
    ctx.expect(flags("S"))
    ctx.send(seg("FSA", 5000, 5555, mss=1460, payload=b"junk"), at=0.01)
    ctx.expect(flags("R"), seq(5555))
    assert c.state_name == "SYN_SENT" and app.events == []
    ctx.send(seg("RSA", 5000, 1001, payload=b"junk"), at=0.02)
    assert c.state_name == "CLOSED" and app.closed_with == errno.ECONNREFUSED
    ctx.assert_clean()
