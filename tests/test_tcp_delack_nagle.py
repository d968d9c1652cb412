"""Segment scripts: delayed ACKs (RFC 1122 §4.2.3.2, RFC 5681 §4.2) and Nagle's algorithm
(RFC 1122 §4.2.3.4, RFC 896)."""
from tcp_script import ctx, seg, flags, seq, ack, length, payload, sent_at


def _past_quickacks(ctx):
    """An established connection whose 16 quick ACKs (the first segments, ACKed at once to
    speed up slow start, as Linux) are used up."""
    c, app, iss = ctx.open_passive(irs=5000)
    for i in range(16):
        ctx.send(seg("PA", 5001 + i, iss + 1, payload=b"q"), at=0.2)
        ctx.expect(flags("A"), ack(5002 + i), sent_at(0.2))
    return c, app, iss, 5017


def test_first_segments_are_acked_at_once_then_acks_are_delayed(ctx):
    """RFC 1122 §4.2.3.2: an ACK may be delayed, but less than 0.5 s (40 ms here), and at
    least every second segment must be ACKed (RFC 5681 §4.2)."""
    c, app, iss, nxt = _past_quickacks(ctx)
    ctx.send(seg("PA", nxt, iss + 1, payload=b"x" * 1000), at=1.0)
    ctx.expect_nothing(until=1.039)
    ctx.advance(1.04)
    ctx.expect(flags("A"), ack(nxt + 1000), sent_at(1.04))
    assert ctx.tcp.counters()["delayed_acks"] == 1
    ctx.send(seg("PA", nxt + 1000, iss + 1, payload=b"y" * 1000), at=2.0)
    ctx.expect_nothing()
    ctx.send(seg("PA", nxt + 2000, iss + 1, payload=b"z" * 1000), at=2.01)
    ctx.expect(flags("A"), ack(nxt + 3000), sent_at(2.01))
    ctx.expect_nothing(until=3)


def test_a_delayed_ack_rides_on_data(ctx):
    """RFC 1122 §4.2.3.2: the delayed ACK goes with the application's reply if there is one;
    the timer is then cancelled."""
    c, app, iss, nxt = _past_quickacks(ctx)
    ctx.send(seg("PA", nxt, iss + 1, payload=b"req"), at=1.0)
    ctx.do(lambda: c.send(b"resp"), at=1.01)
    ctx.expect(flags("PA"), seq(iss + 1), ack(nxt + 3), payload(b"resp"), sent_at(1.01))
    ctx.expect_nothing(until=1.2)


def test_segments_arriving_together_get_one_ack(ctx):
    """Output runs once per poll step, so two segments of one burst bring one ACK."""
    c, app, iss, nxt = _past_quickacks(ctx)
    ctx.send(seg("PA", nxt, iss + 1, payload=b"a" * 500),
             seg("PA", nxt + 500, iss + 1, payload=b"b" * 500), at=1.0)
    ctx.expect(flags("A"), ack(nxt + 1000), sent_at(1.0))
    ctx.expect_nothing(until=1.1)


def test_nagle_holds_small_segments_while_data_is_unacknowledged(ctx):
    """RFC 1122 §4.2.3.4: a short segment is sent only when nothing is unacknowledged; the
    small writes made meanwhile leave together when the ACK comes."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(lambda: c.send(b"a"), at=0.2)
    ctx.expect(flags("PA"), seq(iss + 1), payload(b"a"))
    ctx.do(lambda: c.send(b"b"), at=0.21)
    ctx.do(lambda: c.send(b"c"), at=0.22)
    ctx.expect_nothing()
    ctx.send(seg("A", 5001, iss + 2), at=0.3)
    ctx.expect(flags("PA"), seq(iss + 2), payload(b"bc"), sent_at(0.3))


def test_nagle_does_not_hold_a_full_segment(ctx):
    """RFC 1122 §4.2.3.4: a full-sized segment goes even with data outstanding."""
    c, app, iss = ctx.open_passive(irs=5000)
    ctx.do(lambda: c.send(b"a"), at=0.2)
    ctx.expect(payload(b"a"))
    ctx.do(lambda: c.send(bytes(1460 + 10)), at=0.21)
    ctx.expect(seq(iss + 2), length(1460), sent_at(0.21))
    ctx.expect_nothing()


def test_nodelay_sends_every_write_at_once(ctx):
    """TCP_NODELAY (RFC 1122 §4.2.3.4: the application may disable Nagle)."""
    c, app, iss = ctx.open_passive(irs=5000)
    c.nodelay = True
    ctx.do(lambda: c.send(b"a"), at=0.2)
    ctx.do(lambda: c.send(b"b"), at=0.21)
    ctx.do(lambda: c.send(b"c"), at=0.22)
    ctx.expect(seq(iss + 1), payload(b"a"), sent_at(0.2))
    ctx.expect(seq(iss + 2), payload(b"b"), sent_at(0.21))
    ctx.expect(seq(iss + 3), payload(b"c"), sent_at(0.22))
