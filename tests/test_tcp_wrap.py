"""Segment scripts with sequence numbers about to wrap (RFC 9293 §3.4: all arithmetic is
modulo 2**32): the key behaviours again, with ISS and IRS just below 2**32 so the numbers
wrap mid-transfer."""
import errno

from tcp_script import ctx, seg, flags, seq, ack, window, length, payload, options, sent_at

M = 1 << 32


def test_handshake_at_the_very_top(ctx):
    """RFC 9293 §3.4: ISS = IRS = 2**32 - 1; the SYNs' sequence numbers wrap to 0."""
    c, app = ctx.open_active(iss=M - 1, irs=M - 1)
    assert (c.info()["snd_nxt"], c.info()["rcv_nxt"]) == (0, 0)
    ctx.do(lambda: c.send(b"x"), at=0.2)
    ctx.expect(flags("PA"), seq(0), ack(0), payload(b"x"))
    ctx.send(seg("PA", 0, 1, payload=b"y"), at=0.3)
    ctx.expect(flags("A"), seq(1), ack(1))


def test_data_out_and_its_acks_across_the_wrap(ctx):
    iss = M - 1500
    c, app = ctx.open_active(iss=iss, irs=5000, mss=1000)
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    for s in (iss + 1, iss + 1001, iss + 2001):
        ctx.expect(seq(s), length(1000))
    ctx.send(seg("A", 5001, iss + 1001), at=0.3)
    ctx.send(seg("A", 5001, iss + 3001), at=0.31)
    ctx.expect_nothing()
    assert c.info()["unacked"] == 0 and c.info()["snd_una"] == (iss + 3001) % M
    assert c.info()["timers"] == []


def test_data_in_out_of_order_and_sack_blocks_across_the_wrap(ctx):
    """RFC 2018 §4 blocks whose edges straddle 2**32; reassembly in order (RFC 9293 §3.10.7.4)."""
    irs = M - 600
    c, app, iss = ctx.open_passive(irs=irs, sack_perm=True)
    ctx.send(seg("A", irs + 1 + 500, iss + 1, payload=b"B" * 500), at=0.2)
    ctx.expect(flags("A"), ack(irs + 1), options(sack=[(irs + 501, irs + 1001)]))
    ctx.send(seg("A", irs + 1 + 1500, iss + 1, payload=b"D" * 500))
    ctx.expect(flags("A"), ack(irs + 1),
               options(sack=[(irs + 1501, irs + 2001), (irs + 501, irs + 1001)]))
    ctx.send(seg("A", irs + 1, iss + 1, payload=b"A" * 500))
    ctx.expect(flags("A"), ack(irs + 1001), options(sack=[(irs + 1501, irs + 2001)]))
    ctx.send(seg("A", irs + 1001, iss + 1, payload=b"C" * 500))
    ctx.expect(flags("A"), ack(irs + 2001), options(sack=None))
    assert app.received == b"A" * 500 + b"B" * 500 + b"C" * 500 + b"D" * 500
    ctx.send(seg("A", irs + 1, iss + 1, payload=b"A" * 500))          # old: duplicate
    ctx.expect(flags("A"), ack(irs + 2001))
    assert len(app.received) == 2000


def test_receive_window_trim_across_the_wrap(ctx):
    """RFC 9293 §3.10.7.4 first check with RCV.NXT + RCV.WND past 2**32."""
    from tcp_script import TcpScript
    irs = M - 100
    c, app, iss = ctx.open_passive(irs=irs, auto_read=False)
    edge = irs + 1 + 65535
    ctx.send(seg("A", edge - 10, iss + 1, payload=b"z" * 100), at=0.2)
    ctx.expect(flags("A"), ack(irs + 1))
    assert c.info()["out_of_order"] == 10
    ctx.send(seg("A", edge, iss + 1, payload=b"z" * 100))            # beyond the window
    ctx.expect(flags("A"), ack(irs + 1))
    assert c.info()["out_of_order"] == 10


def test_window_update_rule_across_the_wrap(ctx):
    """RFC 9293 §3.10.7.4 fifth: SND.WL1/SND.WL2 compared modulo 2**32."""
    irs = M - 3
    c, app = ctx.open_active(iss=M - 2, irs=irs, peer_window=1000)
    ctx.send(seg("PA", irs + 1, M - 1, 4000, b"abcdef"), at=0.2)   # SEG.SEQ wraps past 0
    ctx.expect(flags("A"), ack(irs + 7))
    ctx.send(seg("A", irs + 1, M - 1, 10), at=0.21)                 # older: ignored
    ctx.expect(flags("A"), ack(irs + 7))                             # (and a duplicate)
    assert c.info()["snd_wnd"] == 4000


def test_rto_and_fast_retransmit_across_the_wrap(ctx):
    """RFC 6298 §5.4 and RFC 5681 §3.2 / RFC 6582 with SND.UNA just below 2**32."""
    iss = M - 2001
    c, app = ctx.open_active(iss=iss, irs=5000, mss=1000)
    ctx.do(lambda: c.send(bytes(6000)), at=0.2)
    for k in range(6):
        ctx.expect(seq(iss + 1 + 1000 * k), length(1000))
    for t in (0.30, 0.31, 0.32, 0.33):                  # segment 2 (iss+1001) lost
        ctx.send(seg("A", 5001, iss + 1001), at=t)
    ctx.expect(seq(iss + 1001), length(1000), sent_at(0.33))
    ctx.send(seg("A", 5001, iss + 3001), at=0.4)        # partial: segment 4 lost too
    ctx.expect(seq(iss + 3001), length(1000), sent_at(0.4))
    ctx.advance(0.7)                                    # its ACK never comes: RTO
    r = ctx.expect(seq(iss + 3001), length(1000))
    assert r.t > 0.4 and ctx.tcp.counters()["retransmits_rto"] == 1
    ctx.send(seg("A", 5001, iss + 6001), at=0.8)
    ctx.expect_nothing(until=5)
    assert c.info()["snd_una"] == (iss + 6001) % M and not c.info()["in_recovery"]


def test_fin_takes_the_last_sequence_number(ctx):
    """RFC 9293 §3.4: the FIN at 2**32 - 1 is acknowledged with 0."""
    c, app = ctx.open_active(iss=M - 2, irs=M - 2)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"), seq(M - 1), ack(M - 1))
    ctx.send(seg("FA", M - 1, 0), at=0.3)
    ctx.expect(flags("A"), seq(0), ack(0))
    assert c.state_name == "TIME_WAIT"


def test_rst_rules_across_the_wrap(ctx):
    """RFC 5961 §3.2 with RCV.NXT = 0: a RST at 2**32 - 1 is out of the window (silence), in
    the window off RCV.NXT a challenge ACK, at RCV.NXT a reset."""
    c, app = ctx.open_active(iss=M - 1, irs=M - 1)
    ctx.send(seg("R", M - 1, 0), at=0.2)
    ctx.expect_nothing()
    ctx.send(seg("R", 100, 0), at=0.3)
    ctx.expect(flags("A"), seq(0), ack(0))
    ctx.send(seg("R", 0, 0), at=0.4)
    ctx.expect_nothing()
    assert app.closed_with == errno.ECONNRESET


def test_blind_ack_range_across_the_wrap(ctx):
    """RFC 5961 §5.2: (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT, with SND.UNA = 10 so the
    lower bound is below 0."""
    c, app = ctx.open_active(iss=9, irs=5000)
    ctx.send(seg("PA", 5001, 10 - 65535, payload=b"ok"), at=0.2)
    ctx.expect(flags("A"), ack(5003))
    ctx.send(seg("PA", 5003, 10 - 65536, payload=b"no"), at=0.3)
    ctx.expect(flags("A"), ack(5003))
    assert app.received == b"ok"


def test_paws_across_the_tsval_wrap(ctx):
    """RFC 7323 §5.2: timestamps are compared modulo 2**32 too: 5 is newer than 2**32 - 10."""
    c, app, iss = ctx.open_passive(irs=5000, ts=(M - 11, 0))   # its ACK carries M - 10
    ctx.send(seg("PA", 5001, iss + 1, payload=b"new", ts=(5, 0)), at=0.2)
    ctx.expect(flags("A"), ack(5004), options(ts=(None, 5)))
    ctx.send(seg("PA", 5004, iss + 1, payload=b"old", ts=(M - 20, 0)), at=0.3)
    ctx.expect(flags("A"), ack(5004), options(ts=(None, 5)))
    assert app.received == b"new" and ctx.tcp.counters()["paws_dropped"] == 1


def test_time_wait_reuse_across_the_wrap(ctx):
    """RFC 6191 §2: a SYN at 5 is above RCV.NXT = 2**32 - 10 modulo 2**32: a new incarnation."""
    irs = M - 12
    c, app, iss = ctx.open_passive(irs=irs)
    ctx.do(c.shutdown, at=0.2)
    ctx.expect(flags("FA"))
    ctx.send(seg("FA", irs + 1, iss + 2), at=0.3)
    ctx.expect(flags("A"), ack(M - 10))
    ctx.send(seg("S", 5, 0, mss=1460), at=1)
    ctx.expect(flags("SA"), ack(6))
    assert c.state_name == "CLOSED"


def test_probes_below_the_window_across_the_wrap(ctx):
    """Zero-window probe and keep-alive use SND.UNA - 1: 2**32 - 1 when SND.UNA is 0."""
    c, app = ctx.open_active(iss=M - 1, irs=5000, peer_window=0)
    c.set_keepalive(5, 1, 1)
    ctx.do(lambda: c.send(b"data"), at=0.2)
    ctx.advance(0.5)
    ctx.expect(flags("A"), seq(M - 1), ack(5001), length(0), sent_at(0.5))
    ctx.send(seg("A", 5001, 0, 100), at=0.6)
    ctx.expect(seq(0), payload(b"data"), sent_at(0.6))
    ctx.send(seg("A", 5001, 4, 100), at=0.7)
    ctx.advance(5.7)
    ctx.expect(flags("A"), seq(3), ack(5001), length(0), sent_at(5.7))   # keep-alive
