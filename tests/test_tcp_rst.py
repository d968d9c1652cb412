"""Segment scripts: resets and blind attacks (RFC 9293 §3.10.7.4 second; RFC 5961)."""
import errno

from tcp_script import ctx, seg, flags, seq, ack, length, script_fixture

limited = script_fixture(challenge_ack_limit=2)


def test_rst_at_rcv_nxt_resets_the_connection(ctx):
    """RFC 5961 §3.2: a RST whose sequence number is exactly RCV.NXT resets; the user hears
    ECONNRESET (RFC 9293 §3.10.7.4 second, ESTABLISHED) and nothing is sent."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("R", 5001, 0), at=0.2)
    ctx.expect_nothing()
    assert app.closed_with == errno.ECONNRESET
    assert ctx.tcp.counters()["established_resets"] == 1
    ctx.assert_clean()


def test_in_window_rst_gets_a_challenge_ack(ctx):
    """RFC 5961 §3.2: a RST in the window but not at RCV.NXT earns a challenge ACK
    <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and changes nothing; the genuine peer answers with a
    RST at the acknowledged number, which is accepted."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("R", 5001 + 1000, 0), at=0.2)
    ch = ctx.expect(flags("A"), seq(1001), ack(5001), length(0))
    assert c.state_name == "ESTABLISHED" and ctx.tcp.counters()["challenge_acks"] == 1
    ctx.send(seg("RA", ch.ack, 1001), at=0.21)
    ctx.expect_nothing()
    assert app.closed_with == errno.ECONNRESET


def test_out_of_window_rst_is_dropped_silently(ctx):
    """RFC 5961 §3.2 / RFC 9293 §3.10.7.4 first: a RST outside the window is dropped, with
    no ACK in reply (that would help a blind attacker)."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    for s in (5000, 5001 + 65535, 5001 + 10**6, 5001 - 10**6):
        ctx.send(seg("R", s, 0), at=0.2)
    ctx.expect_nothing()
    assert c.state_name == "ESTABLISHED"


def test_syn_in_a_synchronized_state_gets_a_challenge_ack(ctx):
    """RFC 5961 §4.2: any SYN in a synchronized state (in window or not) is answered by a
    challenge ACK and dropped; the connection survives."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("S", 5001 + 100, 0, mss=1460), at=0.2)
    ctx.expect(flags("A"), seq(1001), ack(5001))
    ctx.send(seg("S", 5001, 0, mss=1460), at=0.3)
    ctx.expect(flags("A"), seq(1001), ack(5001))
    assert c.state_name == "ESTABLISHED" and app.events == ["established"]


def test_blind_data_injection_with_an_unacceptable_ack_is_refused(ctx):
    """RFC 5961 §5.2: data is accepted only if (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT;
    otherwise a challenge ACK, and the data is dropped."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("PA", 5001, 1001 + 50, payload=b"evil"), at=0.2)      # ACKs unsent data
    ctx.expect(flags("A"), seq(1001), ack(5001))
    ctx.send(seg("PA", 5001, 1001 - 65535 - 10, payload=b"evil"), at=0.3)   # too old
    ctx.expect(flags("A"), seq(1001), ack(5001))
    assert app.received == b"" and c.info()["rcv_nxt"] == 5001
    ctx.send(seg("PA", 5001, 1001 - 65535, payload=b"good"), at=0.4)   # old, but in range
    ctx.expect(flags("A"), ack(5005))
    assert app.received == b"good"


def test_segment_without_ack_is_dropped(ctx):
    """RFC 9293 §3.10.7.4 fifth: if the ACK bit is off, drop the segment."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("P", 5001, 0, payload=b"noack"), at=0.2)
    ctx.expect_nothing()
    assert app.received == b""


def test_challenge_acks_are_rate_limited(limited):
    """RFC 5961 §7: challenge ACKs are limited per second (here 2)."""
    ctx = limited
    c, app = ctx.open_active(iss=1000, irs=5000)
    for _ in range(4):
        ctx.send(seg("R", 5500, 0), at=1.0)
    ctx.expect(flags("A"), ack(5001))
    ctx.expect(flags("A"), ack(5001))
    ctx.expect_nothing()
    assert ctx.tcp.counters()["challenge_acks_limited"] == 2
    ctx.send(seg("R", 5500, 0), at=2.0)
    ctx.expect(flags("A"), ack(5001))


def test_rst_in_syn_received_drops_the_half_open_connection(ctx):
    """RFC 9293 §3.10.7.4 second, SYN-RECEIVED from a passive open: a RST (at RCV.NXT)
    returns it to LISTEN: the half-open connection goes, the listener stays."""
    ctx.listen()
    ctx.send(seg("S", 7000, 0, mss=1460), at=0)
    ctx.expect(flags("SA"), ack(7001))
    ctx.send(seg("R", 7001, 0), at=0.1)
    ctx.expect_nothing()
    assert ctx.tcp.connection_list() == [] and ctx.accepted == []
    ctx.send(seg("S", 8000, 0, mss=1460), at=0.2)
    ctx.expect(flags("SA"), ack(8001))


def test_rst_whose_data_overlaps_rcv_nxt_is_not_exact(ctx):
    """RFC 5961 §3.2: only a RST whose SEG.SEQ is exactly RCV.NXT resets. One that starts
    before RCV.NXT and carries data reaching past it is in the window (RFC 9293 §3.10.7.4
    first check) but not exact: trimming its front must not make it so (that would widen a
    blind attacker's target by the payload length)."""
    c, app = ctx.open_active(iss=1000, irs=5000)
    ctx.send(seg("R", 5001 - 10, 0, payload=b"x" * 20), at=0.2)
    ctx.expect(flags("A"), seq(1001), ack(5001))
    assert c.state_name == "ESTABLISHED"
