"""Segment scripts: keep-alives (RFC 1122 §4.2.3.6)."""
import errno

from tcp_script import ctx, seg, flags, seq, ack, length, sent_at


def test_keepalive_probes_then_etimedout(ctx):
    """RFC 1122 §4.2.3.6: after `idle` with nothing received, a probe <SEQ=SND.NXT-1> with no
    data (it elicits an ACK even from a peer that ignores zero-length probes); every
    `interval` again; after `count` unanswered probes the connection is dead: ETIMEDOUT."""
    c, app = ctx.open_active(iss=1000, irs=5000)         # established at 0.1
    c.set_keepalive(10, 1, 3)
    ctx.expect_nothing(until=10.099)
    for t in (10.1, 11.1, 12.1):
        ctx.advance(t)
        ctx.expect(flags("A"), seq(1000), ack(5001), length(0), sent_at(t))
        ctx.expect_nothing(until=t + 0.999)
    assert ctx.tcp.counters()["keepalive_probes"] == 3
    ctx.advance(13.1)
    ctx.expect_nothing()
    assert app.closed_with == errno.ETIMEDOUT
    ctx.assert_clean()


def test_an_answered_probe_restarts_the_idle_time(ctx):
    """RFC 1122 §4.2.3.6: any segment from the peer shows it is alive; the next probe comes
    a full idle period after it."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    c.set_keepalive(10, 1, 3)
    ctx.advance(10.1)
    ctx.expect(seq(1000), sent_at(10.1))
    ctx.send(seg("A", 5001, 1001), at=10.15)
    ctx.expect_nothing(until=20.149)
    ctx.advance(20.15)
    ctx.expect(seq(1000), ack(5001), sent_at(20.15))


def test_received_data_defers_the_probe(ctx):
    c, app = ctx.open_active(iss=1000, irs=5000)
    c.set_keepalive(10, 1, 3)
    ctx.send(seg("PA", 5001, 1001, payload=b"hi"), at=5)
    ctx.expect(flags("A"), ack(5003))
    ctx.expect_nothing(until=14.999)
    ctx.advance(15)
    ctx.expect(seq(1000), ack(5003), sent_at(15))


def test_keepalive_on_an_accepted_connection(ctx):
    """Keep-alive switched on after the handshake (as setsockopt on an accepted socket)."""
    c, app, iss = ctx.open_passive(irs=5000)                # established at 0.1
    c.set_keepalive(2, 0.5, 1)
    ctx.advance(2.1)
    ctx.expect(seq(iss), ack(5001), length(0), sent_at(2.1))
    ctx.advance(2.6)
    ctx.expect_nothing()
    assert app.closed_with == errno.ETIMEDOUT


def test_keepalive_off_sends_nothing(ctx):
    c, app = ctx.open_active(iss=1000, irs=5000)
    c.set_keepalive(10, 1, 3)
    c.set_keepalive(0)
    ctx.expect_nothing(until=100)
    assert c.info()["timers"] == []
