"""Out-of-order segments across connections: the layer's reassembly budget.

Each connection holds at most 256 out-of-order segments and its window (test_tcp_established
shows that bound); together, the connections of a layer hold at most `tcp_reassembly_mbufs`
(a quarter of the mempool by default), so many hostile connections that never fill their
holes cannot drain the pool the others receive and send with. What does not fit is dropped
and counted, and the sender's retransmission brings it again (RFC 9293 §3.10.7.4 leaves the
reassembly bound to the receiver).
"""
from tcp_script import PEER_PORT, ack, flags, script_fixture, seg

BUDGET = 8
ctx = script_fixture(reassembly_mbufs=BUDGET)


def open_two(ctx):
    """Two passive connections from the peer's ports PEER_PORT and PEER_PORT + 1."""
    ctx.listen()
    out = []
    for k, irs in enumerate((5000, 9000)):
        sport = PEER_PORT + k
        ctx.send(seg("S", irs, 0, sport=sport), at=0.1 * k)
        sa = ctx.expect(flags("SA"), ack(irs + 1))
        ctx.send(seg("A", irs + 1, sa.seq + 1, sport=sport), at=0.1 * k + 0.05)
        ctx.expect_nothing()
        out.append((ctx.accepted[-1], sa.seq, sport, irs))
    return out


def islands(irs, iss, sport, first, count):
    """One-byte segments at every other offset, from irs + 1 + 2 * first on: all out of order."""
    return [seg("A", irs + 2 + 2 * i, iss + 1, payload=b"o", sport=sport)
            for i in range(first, first + count)]


def test_connections_share_one_bound_and_the_rest_is_dropped_and_counted(ctx):
    (a, a_iss, a_port, a_irs), (b, b_iss, b_port, b_irs) = open_two(ctx)
    ctx.send(*islands(a_irs, a_iss, a_port, 0, BUDGET), at=0.2)     # a takes the whole budget
    ctx.expect(flags("A"), ack(a_irs + 1))                          # one ACK per rx burst
    counters = ctx.tcp.counters()
    assert counters["reassembly_mbufs"] == BUDGET and a.conn.info()["out_of_order"] == BUDGET

    ctx.send(*islands(b_irs, b_iss, b_port, 0, 3), at=0.3)          # b finds none left
    ctx.expect(flags("A"), ack(b_irs + 1))
    counters = ctx.tcp.counters()
    assert counters["reassembly_budget_dropped"] == 3
    assert counters["out_of_order_dropped"] == 0                     # not b's own bound
    assert b.conn.info()["out_of_order"] == 0
    assert ctx.stack.counters()["held_mbufs"]["tcp"] == BUDGET

    # in-order data needs no budget: b keeps receiving
    ctx.send(seg("A", b_irs + 1, b_iss + 1, payload=b"in order", sport=b_port), at=0.4)
    ctx.expect(flags("A"), ack(b_irs + 9))
    assert b.received == b"in order"

    # a fills its first hole: what was held joins the stream, and the budget is free again
    ctx.send(seg("A", a_irs + 1, a_iss + 1, payload=b"i", sport=a_port), at=0.5)
    ctx.expect(flags("A"), ack(a_irs + 3))
    assert a.received == b"io"
    assert ctx.tcp.counters()["reassembly_mbufs"] == BUDGET - 1
    ctx.send(seg("A", b_irs + 10, b_iss + 1, payload=b"x", sport=b_port), at=0.6)
    ctx.expect(flags("A"), ack(b_irs + 9))
    assert b.conn.info()["out_of_order"] == 1
    assert ctx.tcp.counters()["reassembly_mbufs"] == BUDGET


def test_a_connection_that_ends_gives_its_share_back(ctx):
    (a, a_iss, a_port, a_irs), (b, b_iss, b_port, b_irs) = open_two(ctx)
    ctx.send(*islands(a_irs, a_iss, a_port, 0, BUDGET), at=0.2)
    ctx.expect(flags("A"), ack(a_irs + 1))
    ctx.send(seg("R", a_irs + 1, 0, sport=a_port), at=0.3)          # the hostile peer leaves
    assert a.closed_with is not None
    assert ctx.tcp.counters()["reassembly_mbufs"] == 0
    assert ctx.stack.counters()["held_mbufs"]["tcp"] == 0
    ctx.send(*islands(b_irs, b_iss, b_port, 0, BUDGET), at=0.4)     # b may use all of it now
    ctx.expect(flags("A"), ack(b_irs + 1))
    assert b.conn.info()["out_of_order"] == BUDGET
    assert ctx.tcp.counters()["reassembly_budget_dropped"] == 0
