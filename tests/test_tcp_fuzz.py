"""Hostile input at the TCP input path: hypothesis drives random and mutated segments (flags,
sequence and acknowledgment numbers near the windows, well-formed and malformed options,
lengths, header bytes) at a listener and at established connections, interleaved with the
application's calls and with virtual time that fires every timer.

After every step: every frame the stack sent is a well-formed TCP segment with good
checksums (tcp_script.parse_frame), the connection table and the timers stay bounded and
each connection's sequence variables are consistent. After every example: every connection
aborted, no connection and no timer left, and the mempool back where the example started.
Examples are derandomized so the suite is reproducible; raise FUZZ_EXAMPLES to search more.
"""
import os
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from fastloop.dev.eal import current_eal
from tcp_script import (TcpScript, seg, tcp_frame, tcp_options, flags, PEER_PORT, US_PORT)

M = 1 << 32
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# ---- strategies ------------------------------------------------------------------------------
u32 = st.integers(0, M - 1)
near = st.one_of(st.integers(-3, 3), st.integers(-70000, 70000), u32)
flag_bits = st.one_of(
    st.sampled_from([0x02, 0x10, 0x18, 0x11, 0x19, 0x04, 0x14, 0x12, 0x01, 0x06, 0x03, 0x00]),
    st.integers(0, 255))
well_formed_options = st.builds(
    tcp_options,
    mss=st.one_of(st.none(), st.integers(0, 65535)),
    wscale=st.one_of(st.none(), st.integers(0, 255)),
    sack_perm=st.booleans(),
    ts=st.one_of(st.none(), st.tuples(u32, u32)),
    sack=st.one_of(st.none(), st.lists(st.tuples(u32, u32), max_size=4)))
malformed_options = st.one_of(
    st.binary(max_size=40),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=12)),
             max_size=6).map(lambda opts: b"".join(bytes([k, n]) + v for k, n, v in opts)[:40]))
option_bytes = st.one_of(well_formed_options, malformed_options)
header_mutations = st.lists(st.tuples(st.integers(0, 59), st.integers(0, 255)), max_size=3)


@st.composite
def segments(draw, rcv_nxt, snd_una, sport):
    """A segment aimed at one connection: (frame, payload length)."""
    n = draw(st.sampled_from([0, 0, 1, 10, 100, 536, 1400]))
    o = draw(option_bytes)[:40]
    o += b"\0" * (-len(o) % 4)
    tcp = struct.pack("!HHIIBBHHH", draw(st.sampled_from([sport, sport, sport + 1])), US_PORT,
                      (rcv_nxt + draw(near)) % M, (snd_una + draw(near)) % M,
                      (5 + len(o) // 4) << 4, draw(flag_bits), draw(st.integers(0, 65535)), 0,
                      draw(st.integers(0, 65535))) + o + bytes(n)
    tcp = bytearray(tcp)
    for off, b in draw(header_mutations):          # including the data offset and flags
        if off < len(tcp):
            tcp[off] = b
    return tcp_frame(bytes(tcp), fix_checksum=draw(st.integers(0, 9)) > 0)


raw_frame_mutations = st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)),
                               min_size=1, max_size=4)

ACTIONS = ("segment", "segment", "segment", "segment", "mutated_frame", "advance", "send",
           "recv", "shutdown", "close", "pause")


# ---- invariants ------------------------------------------------------------------------------
def _check_consistent(ctx, max_connections):
    conns = ctx.tcp.connection_list()
    assert len(conns) <= max_connections
    assert ctx.tcp.counters()["timers_armed"] <= 5 * len(conns)
    for c in conns:
        i = c.info()
        assert (i["snd_nxt"] - i["snd_una"]) % M <= i["unacked"] <= i["unsent"] + 2, i
        assert i["readable"] + i["out_of_order"] <= ctx.tcp.rcvbuf_size, i
        assert 52 <= i["mss"] <= 1460 and i["cwnd"] > 0, i


def _drain(ctx):
    ctx.pending.clear()


def _end_example(ctx, in_use):
    for c in ctx.tcp.connection_list():
        c.abort()
    ctx.advance(ctx.t + 0.001)
    _drain(ctx)
    assert ctx.tcp.connection_list() == []
    assert ctx.tcp.counters()["timers_armed"] == 0
    assert current_eal().mempool.in_use == in_use


def _step(ctx, data, c, sport):
    action = data.draw(st.sampled_from(ACTIONS))
    if c.state_name == "CLOSED" and action in ("send", "recv", "shutdown", "close", "pause"):
        action = "segment"
    if action in ("segment", "mutated_frame"):
        i = c.info()
        frame = data.draw(segments(i["rcv_nxt"], i["snd_una"], sport))
        if action == "mutated_frame":               # anywhere: Ethernet, IP, TCP
            frame = bytearray(frame)
            for off, b in data.draw(raw_frame_mutations):
                if off < len(frame):
                    frame[off] = b
            frame = bytes(frame)
        ctx.send(frame, at=ctx.t + data.draw(st.sampled_from([0, 0, 0.001, 0.05])))
    elif action == "advance":
        ctx.advance(ctx.t + data.draw(st.sampled_from([0.04, 0.2, 1.0, 5.0, 61.0])))
    elif action == "send":
        try:
            ctx.do(lambda: c.send(bytes(data.draw(st.integers(1, 5000)))))
        except BrokenPipeError:
            pass
    elif action == "recv":
        ctx.do(lambda: c.recv(data.draw(st.integers(1, 70000))))
    elif action == "shutdown":
        ctx.do(c.shutdown)
    elif action == "close":
        ctx.do(c.close)
    else:
        c.reading_paused = not c.reading_paused
    _drain(ctx)


# ---- the tests -------------------------------------------------------------------------------
def _example(body, **kw):
    """One example on a fresh stack, so examples are independent (hypothesis shrinks them)."""
    in_use = current_eal().mempool.in_use
    ctx = TcpScript(**kw)
    try:
        body(ctx)
        _end_example(ctx, in_use)
    finally:
        ctx.close()
    assert current_eal().mempool.in_use == in_use


@FUZZ
@given(data=st.data())
def test_fuzz_established_connection(eal, data):
    def body(ctx):
        ctx.listen()
        sport = PEER_PORT
        opts = data.draw(st.fixed_dictionaries({
            "mss": st.sampled_from([None, 536, 1460, 9000]),
            "wscale": st.sampled_from([None, 0, 7, 14]),
            "sack_perm": st.booleans(),
            "ts": st.sampled_from([None, (100, 0), (M - 5, 0)])}))
        irs = data.draw(st.sampled_from([5000, M - 700, M - 1]))
        ctx.send(seg("S", irs, 0, 65535, sport=sport, **opts), at=0.01)
        sa = ctx.expect(flags("SA"))
        ts = None if opts["ts"] is None else (opts["ts"][0] + 1, sa.ts[0])
        ctx.send(seg("A", irs + 1, sa.seq + 1, 65535, sport=sport, ts=ts), at=0.02)
        c = ctx.accepted[-1].conn
        c.set_keepalive(data.draw(st.sampled_from([0, 1, 30])), 1, 2)
        ctx.accepted[-1].auto_read = data.draw(st.booleans())
        for step in range(1, data.draw(st.integers(1, 25)) + 1):
            _step(ctx, data, c, sport)
            # a mutated port may open another connection: at most one per step
            _check_consistent(ctx, max_connections=1 + step)
    _example(body, rcvbuf=65536)


@FUZZ
@given(data=st.data())
def test_fuzz_listener(eal, data):
    def body(ctx):
        ctx.listen(backlog=4)
        sports = data.draw(st.lists(st.integers(1024, 1100), min_size=1, max_size=6))
        for sent in range(1, data.draw(st.integers(1, 30)) + 1):
            sport = data.draw(st.sampled_from(sports))
            frame = data.draw(segments(data.draw(u32), data.draw(u32), sport))
            ctx.send(frame, at=ctx.t + data.draw(st.sampled_from([0, 0.01, 1.0, 7.0])))
            _drain(ctx)
            # at most a connection per segment; the half-open queue is bounded
            _check_consistent(ctx, max_connections=sent)
            half_open = sum(c.state_name == "SYN_RECEIVED" and c.info()["unacked"] == 1
                            for c in ctx.tcp.connection_list())
            assert half_open <= 4
    _example(body, rcvbuf=65536)


@FUZZ
@given(o=option_bytes, seq0=u32)
def test_fuzz_malformed_options_on_a_syn(eal, o, seq0):
    """Any option bytes on a SYN: the listener answers a SYN-ACK, or drops and counts."""
    def body(ctx):
        ctx.listen()
        ctx.send(seg("S", seq0, 0, opts=o[:40]), at=0.01)
        out = list(ctx.pending)
        _drain(ctx)
        dropped = ctx.tcp.counters()["bad_header"]
        assert (len(out), dropped) in ((1, 0), (0, 1)), (out, dropped)
        if out:
            assert out[0].flags == "SA" and out[0].ack == (seq0 + 1) % M
    _example(body)
