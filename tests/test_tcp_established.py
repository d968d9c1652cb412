"""Segment scripts: data transfer in ESTABLISHED (RFC 9293 §3.8, §3.10.7.4)."""
from tcp_script import (ctx, seg, flags, seq, ack, window, payload, length, sent_at,
                        script_fixture)

small = script_fixture(rcvbuf=4096)


def test_data_in_is_acknowledged_and_delivered(ctx):
    """RFC 9293 §3.10.7.4 seventh: in-order text goes to the user, RCV.NXT advances, an ACK
    <SEQ=SND.NXT><ACK=RCV.NXT> goes out (at once: the connection's first segments)."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("PA", 5001, iss + 1, payload=b"hello"), at=0.2)
    # the right edge moves by less than an MSS: it stays (receiver SWS, RFC 1122 §4.2.3.3)
    ctx.expect(flags("A"), seq(iss + 1), ack(5006), window(65530), length(0))
    ctx.send(seg("PA", 5006, iss + 1, payload=b" world"), at=0.3)
    ctx.expect(flags("A"), ack(5012), window(65524))
    assert app.received == b"hello world" and app.events == ["established", "data", "data"]
    assert ctx.tcp.counters()["bytes_in"] == 11


def test_data_out_is_segmented_by_mss_and_acknowledged(ctx):
    """RFC 9293 §3.7.1: segments of at most the peer's MSS; PSH on the last (§3.9.1);
    the retransmission timer stops when all is acknowledged (RFC 6298 §5.2)."""
    c, app = ctx.open_active(iss=1000, irs=5000, mss=1000)
    data = bytes(range(256)) * 10
    ctx.do(lambda: c.send(data), at=0.2)
    ctx.expect(flags("A"), seq(1001), ack(5001), payload(data[:1000]))
    ctx.expect(flags("A"), seq(2001), payload(data[1000:2000]))
    ctx.expect_nothing()             # the short tail waits for the ACKs (Nagle, RFC 1122 §4.2.3.4)
    assert c.info()["timers"] == ["retransmit"]
    ctx.send(seg("A", 5001, 2001), at=0.25)
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, 3001), at=0.3)
    ctx.expect(flags("PA"), seq(3001), payload(data[2000:]), sent_at(0.3))
    ctx.send(seg("A", 5001, 3561), at=0.4)
    ctx.expect_nothing()
    assert c.info()["unacked"] == 0 and c.info()["timers"] == [] and c.unsent() == 0
    ctx.expect_nothing(until=10)


def test_send_window_limits_data_and_a_window_update_releases_it(ctx):
    """RFC 9293 §3.8.6: no more than SND.UNA + SND.WND is sent; a later ACK opening the
    window (SND.WL1/WL2 rule, §3.10.7.4 fifth) lets the rest go at once."""
    c, app = ctx.open_active(iss=1000, irs=5000, peer_window=1000)
    ctx.do(lambda: c.send(bytes(2500)), at=0.2)
    ctx.expect(flags("A"), seq(1001), length(1000))
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, 2001, 0), at=0.25)      # all acknowledged, window closed
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, 2001, 3000), at=0.26)   # a pure window update
    ctx.expect(flags("A"), seq(2001), length(1460))
    ctx.send(seg("A", 5001, 3461, 3000), at=0.3)
    ctx.expect(flags("PA"), seq(3461), length(40))


def test_an_old_segment_does_not_move_the_send_window(ctx):
    """RFC 9293 §3.10.7.4 fifth: SND.WND is taken only from a segment with SND.WL1 < SEG.SEQ,
    or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK: a reordered older ACK is ignored."""
    c, app, iss = ctx.open_passive(irs=5000, peer_window=1000)
    ctx.do(lambda: c.send(b"x" * 100), at=0.2)
    ctx.expect(flags("PA"), seq(iss + 1), length(100))
    ctx.send(seg("A", 5001, iss + 101, 4000), at=0.3)
    ctx.send(seg("A", 5001, iss + 1, 10), at=0.31)  # reordered: older than the one above
    ctx.expect_nothing()
    assert c.info()["snd_wnd"] == 4000


def test_out_of_order_data_is_reassembled(ctx):
    """RFC 9293 §3.10.7.4 seventh / RFC 5681 §4.2: a segment beyond RCV.NXT is kept and
    answered by an immediate duplicate ACK; the one filling the hole is ACKed at once and
    everything is delivered in order."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("PA", 5101, iss + 1, payload=b"B" * 100), at=0.2)
    ctx.expect(flags("A"), ack(5001))
    ctx.send(seg("PA", 5301, iss + 1, payload=b"D" * 100))
    ctx.expect(flags("A"), ack(5001))
    assert app.received == b"" and c.info()["out_of_order"] == 200
    ctx.send(seg("PA", 5001, iss + 1, payload=b"A" * 100), at=0.3)
    ctx.expect(flags("A"), ack(5201))
    ctx.send(seg("PA", 5201, iss + 1, payload=b"C" * 100), at=0.4)
    ctx.expect(flags("A"), ack(5401))
    assert app.received == b"A" * 100 + b"B" * 100 + b"C" * 100 + b"D" * 100
    assert c.info()["out_of_order"] == 0


def test_out_of_order_data_is_bounded_by_the_receive_window(small):
    """RFC 9293 §3.10.7.4 (first check): only the part of a segment inside RCV.WND is
    kept, also when it is out of order; a segment wholly beyond it is dropped and ACKed."""
    ctx = small
    c, app, iss = ctx.open_passive(irs=5000, auto_read=False)
    assert c.info()["rcv_nxt"] == 5001
    ctx.send(seg("A", 5001 + 3000, iss + 1, payload=b"z" * 1400), at=0.2)
    ctx.expect(flags("A"), ack(5001), window(4096))
    assert c.info()["out_of_order"] == 1096         # trimmed to the right edge, 5001 + 4096
    ctx.send(seg("A", 5001 + 4096, iss + 1, payload=b"y" * 100))
    ctx.expect(flags("A"), ack(5001), window(4096))
    assert c.info()["out_of_order"] == 1096
    for i in range(3):
        ctx.send(seg("A", 5001 + 1000 * i, iss + 1, payload=b"a" * 1000))
        ctx.expect(flags("A"), ack(5001 + 1000 * (i + 1) + (1096 if i == 2 else 0)))
    assert c.readable() == 4096 and c.info()["out_of_order"] == 0
    assert c.info()["rcv_nxt"] == 5001 + 4096


def test_duplicate_segment_is_acknowledged_and_not_delivered_twice(ctx):
    """RFC 9293 §3.10.7.4 first: an old segment (SEG.SEQ+SEG.LEN =< RCV.NXT) is not
    acceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, dropped."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("PA", 5001, iss + 1, payload=b"abc"), at=0.2)
    ctx.expect(flags("A"), ack(5004))
    ctx.send(seg("PA", 5001, iss + 1, payload=b"abc"), at=0.3)
    ctx.expect(flags("A"), seq(iss + 1), ack(5004))
    ctx.send(seg("PA", 5002, iss + 1, payload=b"bcdef"), at=0.4)    # overlapping: new part
    ctx.expect(flags("A"), ack(5007))
    assert app.received == b"abcdef"
    assert ctx.tcp.counters()["duplicate_segments_in"] == 1


def test_advertised_window_follows_the_space_the_application_left(small):
    """RFC 9293 §3.8.6.2.2: the window is the buffer space left; an application that does
    not read closes it; reading reopens it (a window update) once it can grow by
    min(half the buffer, MSS) (receiver SWS avoidance)."""
    ctx = small
    c, app, iss = ctx.open_passive(irs=5000, auto_read=False)
    ctx.send(seg("A", 5001, iss + 1, payload=b"a" * 1000), at=0.2)
    ctx.expect(flags("A"), ack(6001), window(3096))
    ctx.send(seg("A", 6001, iss + 1, payload=b"b" * 1000))
    ctx.expect(flags("A"), ack(7001), window(2096))
    ctx.send(seg("A", 7001, iss + 1, payload=b"c" * 1000))
    ctx.send(seg("A", 8001, iss + 1, payload=b"d" * 1096))
    ctx.expect(flags("A"), ack(8001), window(1096))
    ctx.expect(flags("A"), ack(9097), window(0))
    ctx.send(seg("A", 9097, iss + 1, payload=b"e" * 10), at=0.3)   # beyond a zero window
    ctx.expect(flags("A"), ack(9097), window(0))
    assert ctx.do(lambda: c.recv(1000), at=0.4) == b"a" * 1000
    ctx.expect_nothing()                          # 1000 < min(2048, 1460): no update yet
    assert len(ctx.do(lambda: c.recv(500))) == 500
    ctx.expect(flags("A"), seq(iss + 1), ack(9097), window(1500))
    assert c.readable() == 2596


def test_reading_paused_defers_delivery_but_data_is_acknowledged(ctx):
    """The application's flow control (reading_paused) stops on_data callbacks; the data is
    held and acknowledged."""
    c, app, iss = ctx.open_passive(irs=5000)
    c.reading_paused = True
    ctx.send(seg("PA", 5001, iss + 1, payload=b"q" * 100), at=0.2)
    ctx.expect(flags("A"), ack(5101), window(65435))
    assert app.events == ["established"] and c.readable() == 100


def test_fin_ahead_of_a_hole_waits_for_the_data(small):
    """RFC 9293 §3.10.7.4 eighth: the FIN is processed only when RCV.NXT reaches it; data
    and EOF are then delivered in order."""
    ctx = small
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("FA", 5011, iss + 1, payload=b"tail"), at=0.2)
    ctx.expect(flags("A"), ack(5001))
    assert c.state_name == "ESTABLISHED" and "eof" not in app.events
    ctx.send(seg("A", 5001, iss + 1, payload=b"head------"), at=0.3)
    ctx.expect(flags("A"), ack(5016))
    assert app.received == b"head------tail" and app.events[-2:] == ["data", "eof"]
    assert c.state_name == "CLOSE_WAIT"


def test_urgent_data_is_delivered_inline(ctx):
    """RFC 6093 §4 (and RFC 9293 §3.9.1.3): urgent data is part of the stream; the urgent
    pointer is not acted on."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("UPA", 5001, iss + 1, payload=b"abc!", urgent=4), at=0.2)
    ctx.expect(flags("A"), ack(5005))
    assert app.received == b"abc!"


def test_ecn_bits_are_ignored(ctx):
    """RFC 3168 is not negotiated (our SYNs carry no ECE/CWR): ECE and CWR on data change
    nothing."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.send(seg("ECPA", 5001, iss + 1, payload=b"e"), at=0.2)
    ctx.expect(flags("A"), ack(5002))
    assert app.received == b"e"


def test_out_of_order_queue_is_bounded_in_segments(ctx):
    """Hostile reordering (RFC 9293 §3.10.7.4 leaves the reassembly bound to us): at most
    256 out-of-order segments are held per connection, the rest dropped and counted; what
    is held drains in order as the holes fill."""
    c, app, iss = ctx.open_passive(irs=5000)
    for k in range(0, 300, 25):                    # odd offsets: 300 one-byte islands
        ctx.send(*[seg("A", 5002 + 2 * i, iss + 1, payload=b"o") for i in range(k, k + 25)],
                 at=0.2)
        ctx.expect(flags("A"), ack(5001))
    assert c.info()["out_of_order"] == 256
    assert ctx.stack.counters()["held_mbufs"]["tcp"] == 256
    assert ctx.tcp.counters()["out_of_order_dropped"] == 44
    for k in range(0, 300, 25):                    # fill the holes; island 256 was dropped
        ctx.send(*[seg("A", 5001 + 2 * i, iss + 1, payload=b"i") for i in range(k, k + 25)],
                 at=0.3)
        ctx.expect(flags("A"), ack(min(5001 + 2 * (k + 25), 5001 + 2 * 256 + 1)))
    assert len(app.received) == 513 and c.info()["out_of_order"] == 43
