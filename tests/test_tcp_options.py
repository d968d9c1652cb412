"""Segment scripts: TCP options (RFC 9293 §3.7.1 MSS; RFC 7323 window scale, timestamps,
PAWS; RFC 2018 SACK)."""
from tcp_script import ctx, seg, flags, seq, ack, window, options, length, script_fixture

mtu1000 = script_fixture(mtu=1000)


def test_mss_announced_is_clamped_to_the_mtu_and_segments_follow_it(mtu1000):
    """RFC 9293 §3.7.1 / RFC 6691: the MSS we announce is MTU - 40; what we send is at most
    min(peer's MSS, our MTU - 40)."""
    ctx = mtu1000
    c, app, iss = ctx.open_passive(irs=5000, mss=1460)
    c2, app2 = ctx.connect(iss=1, at=0.2, port=40001, local_port=5001)
    ctx.expect(flags("S"), options(mss=960))
    c2.abort()
    assert c.info()["mss"] == 960
    ctx.do(lambda: c.send(bytes(2000)), at=0.3)
    ctx.expect(flags("A"), seq(iss + 1), length(960))
    ctx.expect(flags("A"), seq(iss + 961), length(960))
    ctx.expect_nothing()


def test_peer_mss_smaller_than_ours_and_the_536_default(ctx):
    """RFC 9293 §3.7.1: send at most the peer's MSS; without the option, 536
    (RFC 1122 §4.2.2.6)."""
    c, app = ctx.open_active(iss=1000, irs=5000, mss=None)
    assert c.info()["mss"] == 536
    ctx.do(lambda: c.send(bytes(1100)), at=0.2)
    ctx.expect(flags("A"), seq(1001), length(536))
    ctx.expect(flags("A"), seq(1537), length(536))
    ctx.expect_nothing()


def test_window_scale_applies_both_ways_after_the_syns(ctx):
    """RFC 7323 §2.2-2.3: the peer's windows (not on its SYN) are shifted by its scale; ours
    are sent shifted right by our scale (2, enough for 256 KiB)."""
    c, app, iss = ctx.open_passive(irs=5000, wscale=7, peer_window=10)
    assert c.info()["snd_wnd"] == 1280 and c.info()["rcv_wscale"] == 2
    ctx.send(seg("PA", 5001, iss + 1, 10, b"d" * 1000), at=0.2)
    ctx.expect(flags("A"), ack(6001), window((262140 - 1000) >> 2))
    ctx.do(lambda: c.send(bytes(5000)), at=0.3)
    ctx.expect(flags("A"), seq(iss + 1), length(1280))
    ctx.expect_nothing()


def test_window_scale_above_14_is_taken_as_14(ctx):
    """RFC 7323 §2.3: a shift greater than 14 is used as 14."""
    c, app, iss = ctx.open_passive(irs=5000, wscale=20, peer_window=1)
    assert c.info()["snd_wscale"] == 14 and c.info()["snd_wnd"] == 1 << 14


def test_timestamps_are_echoed_and_paws_drops_old_segments(ctx):
    """RFC 7323 §3.2: every segment carries TSval (our 1 ms clock) and echoes TS.Recent;
    §5.3 PAWS: a segment with TSval < TS.Recent is dropped and answered with an ACK;
    §4.3: TS.Recent is taken only from a segment covering RCV.NXT."""
    c, app, iss = ctx.open_passive(irs=5000, ts=(100, 0))
    a = ctx.send(seg("PA", 5001, iss + 1, payload=b"x" * 10, ts=(200, 0)), at=0.5)
    a = ctx.expect(flags("A"), ack(5011), options(ts=(None, 200)))
    ctx.send(seg("PA", 5011, iss + 1, payload=b"y" * 10, ts=(150, 0)), at=0.6)
    b = ctx.expect(flags("A"), ack(5011), options(ts=(None, 200)))
    assert b.ts[0] - a.ts[0] == 100                      # 100 ms later, a 1 ms clock
    assert app.received == b"x" * 10 and ctx.tcp.counters()["paws_dropped"] == 1
    ctx.send(seg("PA", 5111, iss + 1, payload=b"z" * 10, ts=(900, 0)), at=0.7)   # a hole
    ctx.expect(flags("A"), ack(5011), options(ts=(None, 200)))
    ctx.send(seg("PA", 5011, iss + 1, payload=b"w" * 10, ts=(300, 0)), at=0.8)
    ctx.expect(flags("A"), ack(5021), options(ts=(None, 300)))


def test_paws_does_not_apply_to_rst(ctx):
    """RFC 7323 §5.3 R1: the PAWS test is not applied to RST segments... (the RST is then
    judged by RFC 5961 alone)."""
    import errno
    c, app, iss = ctx.open_passive(irs=5000, ts=(100, 0))
    ctx.send(seg("R", 5001, 0, ts=(1, 0)), at=0.2)
    ctx.expect_nothing()
    assert app.closed_with == errno.ECONNRESET


def test_mss_leaves_room_for_the_timestamp_option(ctx):
    """RFC 7323 §3.2 / RFC 6691: with timestamps on every segment the payload is MSS - 12."""
    c, app = ctx.open_active(iss=1000, irs=5000, ts=(7, None))
    ctx.do(lambda: c.send(bytes(3000)), at=0.2)
    ctx.expect(flags("A"), seq(1001), length(1448), options(ts=(None, 7)))
    ctx.expect(flags("A"), seq(2449), length(1448))
    ctx.expect_nothing()


def test_sack_blocks_describe_out_of_order_data(ctx):
    """RFC 2018 §4: with SACK permitted, the ACK for out-of-order data carries SACK blocks,
    the one holding the most recent segment first; none once the holes are filled."""
    c, app, iss = ctx.open_passive(irs=5000, sack_perm=True)
    ctx.send(seg("A", 5101, iss + 1, payload=b"b" * 100), at=0.2)
    ctx.expect(flags("A"), ack(5001), options(sack=[(5101, 5201)]))
    ctx.send(seg("A", 5301, iss + 1, payload=b"d" * 100))
    ctx.expect(flags("A"), ack(5001), options(sack=[(5301, 5401), (5101, 5201)]))
    ctx.send(seg("A", 5201, iss + 1, payload=b"c" * 100))          # joins the two blocks
    ctx.expect(flags("A"), ack(5001), options(sack=[(5101, 5401)]))
    ctx.send(seg("A", 5001, iss + 1, payload=b"a" * 100))
    ctx.expect(flags("A"), ack(5401), options(sack=None))
    assert app.received == b"a" * 100 + b"b" * 100 + b"c" * 100 + b"d" * 100


def test_sack_blocks_with_timestamps_are_at_most_three(ctx):
    """RFC 2018 §3: with timestamps (10 + 2 bytes) at most 3 blocks fit in 40 bytes."""
    c, app, iss = ctx.open_passive(irs=5000, sack_perm=True, ts=(100, 0))
    for i, start in enumerate((5101, 5301, 5501, 5701)):
        ctx.send(seg("A", start, iss + 1, payload=b"x" * 100, ts=(900 + i, 0)), at=0.2)
        s = ctx.expect(flags("A"), ack(5001), options(ts=(None, 101)))   # the ACK's TSval
    assert s.options["sack"] == [(5701, 5801), (5101, 5201), (5301, 5401)]


def test_no_sack_blocks_unless_permitted(ctx):
    """RFC 2018 §2: SACK blocks only after both SYNs carried SACK-permitted."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("A", 5101, iss + 1, payload=b"b" * 100), at=0.2)
    ctx.expect(flags("A"), ack(5001), options(sack=None))


def test_a_tiny_peer_mss_is_floored(ctx):
    """RFC 9293 §3.7.1 sets no floor, but an MSS of 1 (with timestamps: 1 - 12) is an attack
    (Linux: tcp_min_snd_mss, CVE-2019-11479): it is taken as 64."""
    c, app, iss = ctx.open_passive(irs=5000, mss=1, ts=(100, 0))
    assert c.info()["peer_mss"] == 64 and c.info()["mss"] == 52
    ctx.do(lambda: c.send(bytes(100)), at=0.2)
    ctx.expect(flags("A"), seq(iss + 1), length(52))
    ctx.expect_nothing()
