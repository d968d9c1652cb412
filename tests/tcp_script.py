"""Segment scripts for TCP, gVisor netstack style: feed a segment at virtual time t, expect
exactly these segments back.

A Stack sits on side a of a real DPDK net_ring pair, on a virtual clock (`Stack(start_ns=)`,
`poll(now_ns)`); side b is the fake peer, which sends frames built here (struct, checksums by
an RFC 1071 sum written here, never the stack's own emit code) and captures every frame the
stack transmits. The peer is in the ARP cache from the start, so segments leave at once.

    ctx.listen(5000)
    ctx.send(seg("S", seq=100, mss=1460), at=0)
    synack = ctx.expect(flags("SA"), ack(101), options(mss=1460))
    ctx.advance(1.0)                         # timers due by then fire, each at its own time
    ctx.expect(flags("SA"), sent_at(1.0))    # the SYN-ACK again, RTO 1 s (RFC 6298 §2.1)

Times are seconds from the start of the script. Every emitted segment must be expected:
the fixture fails a test that leaves one unread, then aborts what is left and checks that
no connection and no timer remain and (conftest) that the mempool is where it started.
"""
import struct

import pytest

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.testing import recv_all, send_frames
from fastloop.net.tcp.pysink import CallbackListener, CallbackSink
from fastloop.stack import Stack
from frames import csum, ip4

US_MAC, US = "02:00:00:00:ab:01", "10.9.7.1"
PEER_MAC, PEER = "02:00:00:00:ab:02", "10.9.7.2"
US_PORT, PEER_PORT = 5000, 40000
START_NS = 1_000_000_000_000          # the virtual clock starts at 1000 s
NS = 1_000_000_000
FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40,
             "C": 0x80}


def _mac(s):
    return bytes.fromhex(s.replace(":", ""))




def flag_bits(f):
    bits = 0
    for ch in f:
        bits |= FLAG_BITS[ch]
    return bits


def flag_str(bits):
    return "".join(ch for ch, b in FLAG_BITS.items() if bits & b)


# ---- building the peer's segments ----------------------------------------------------------
def tcp_options(mss=None, wscale=None, sack_perm=False, ts=None, sack=None):
    """Option bytes laid out as Linux does (NOPs to 4-byte alignment)."""
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if sack_perm and ts is not None:
        out += struct.pack("!BBBBII", 4, 2, 8, 10, ts[0], ts[1])
    else:
        if sack_perm:
            out += b"\x01\x01\x04\x02"
        if ts is not None:
            out += struct.pack("!BBBBII", 1, 1, 8, 10, ts[0], ts[1])
    if wscale is not None:
        out += struct.pack("!BBBB", 1, 3, 3, wscale)
    if sack:
        out += struct.pack("!BBBB", 1, 1, 5, 2 + 8 * len(sack))
        for left, right in sack:
            out += struct.pack("!II", left & 0xffffffff, right & 0xffffffff)
    return out


def seg(flags, seq, ack=0, window=65535, payload=b"", *, mss=None, wscale=None,
        sack_perm=False, ts=None, sack=None, opts=None, sport=PEER_PORT, dport=US_PORT,
        urgent=0, bad_checksum=False, src=PEER, dst=US):
    """One Ethernet frame from the peer: a TCP segment with these fields. `opts` (raw bytes,
    padded to 4) replaces the options built from mss/wscale/sack_perm/ts/sack."""
    o = tcp_options(mss, wscale, sack_perm, ts, sack) if opts is None else opts
    o += b"\0" * (-len(o) % 4)
    bits = flag_bits(flags) if isinstance(flags, str) else flags
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                      (5 + len(o) // 4) << 4, bits, window, 0, urgent) + o
    tcp = hdr + payload
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(pseudo + tcp) ^ (0x5555 if bad_checksum else 0)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    return ip_frame(tcp, src=src, dst=dst)


def tcp_frame(tcp, src=PEER, dst=US, fix_checksum=True):
    """A frame from raw TCP bytes (header, options, payload), the checksum filled in."""
    if fix_checksum and len(tcp) >= 18:
        tcp = tcp[:16] + b"\0\0" + tcp[18:]
        pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    return ip_frame(tcp, src=src, dst=dst)


def ip_frame(l4, proto=6, src=PEER, dst=US):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0,
                     ip4(src), ip4(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return _mac(US_MAC) + _mac(PEER_MAC) + b"\x08\x00" + ip + l4


# ---- what the stack sent ---------------------------------------------------------------------
class Segment:
    """A segment the stack transmitted, parsed (checksums verified) with the time it left."""
    __slots__ = ("t", "sport", "dport", "seq", "ack", "flags", "window", "urgent", "options",
                 "payload", "raw_options")

    def __repr__(self):
        return (f"<{self.flags or '.'} seq={self.seq} ack={self.ack} win={self.window} "
                f"len={len(self.payload)} opts={self.options} t={self.t:.6f}>")

    @property
    def ts(self):
        return self.options.get("ts")

    @property
    def end(self):
        """SEG.SEQ + SEG.LEN."""
        return (self.seq + len(self.payload) + ("S" in self.flags) + ("F" in self.flags)) \
            & 0xffffffff


def parse_options(o):
    out = {}
    i = 0
    while i < len(o):
        kind = o[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        length = o[i + 1]
        body = o[i + 2:i + length]
        if kind == 2:
            out["mss"] = struct.unpack("!H", body)[0]
        elif kind == 3:
            out["wscale"] = body[0]
        elif kind == 4:
            out["sack_perm"] = True
        elif kind == 8:
            out["ts"] = struct.unpack("!II", body)
        elif kind == 5:
            out["sack"] = [struct.unpack("!II", body[j:j + 8]) for j in range(0, len(body), 8)]
        else:
            out.setdefault("unknown", []).append(kind)
        i += length
    return out


def parse_frame(frame, t):
    """A frame from the stack: must be IPv4/TCP from us to the peer with good checksums."""
    assert frame[:6] == _mac(PEER_MAC) and frame[6:12] == _mac(US_MAC), frame[:14].hex()
    assert frame[12:14] == b"\x08\x00", f"not IPv4: {frame.hex()}"
    ip = frame[14:34]
    assert ip[0] == 0x45 and ip[9] == 6, f"not TCP: {frame.hex()}"
    assert csum(ip) == 0, "bad IPv4 header checksum"
    assert ip[12:16] == ip4(US) and ip[16:20] == ip4(PEER)
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = frame[34:14 + total]
    assert csum(ip4(US) + ip4(PEER) + struct.pack("!BBH", 0, 6, len(tcp)) + tcp) == 0, \
        "bad TCP checksum"
    s = Segment()
    s.t = t
    (s.sport, s.dport, s.seq, s.ack, off, bits, s.window, _c,
     s.urgent) = struct.unpack("!HHIIBBHHH", tcp[:20])
    hl = (off >> 4) * 4
    s.flags = flag_str(bits)
    s.raw_options = tcp[20:hl]
    s.options = parse_options(s.raw_options)
    s.payload = tcp[hl:]
    return s


# ---- checkers: each takes a Segment and asserts one thing -------------------------------------
def flags(f):
    def check(s):
        assert set(s.flags) == set(f), f"flags {s.flags!r}, expected {f!r}: {s}"
    return check


def seq(x):
    def check(s):
        assert s.seq == x & 0xffffffff, f"seq {s.seq}, expected {x & 0xffffffff}: {s}"
    return check


def ack(y):
    def check(s):
        assert "A" in s.flags and s.ack == y & 0xffffffff, \
            f"ack {s.ack}, expected {y & 0xffffffff}: {s}"
    return check


def window(w):
    def check(s):
        assert s.window == w, f"window {s.window}, expected {w}: {s}"
    return check


def payload(data):
    def check(s):
        assert s.payload == data, f"payload {s.payload[:40]!r}... ({len(s.payload)}), " \
                                  f"expected {data[:40]!r}... ({len(data)}): {s}"
    return check


def length(n):
    def check(s):
        assert len(s.payload) == n, f"payload length {len(s.payload)}, expected {n}: {s}"
    return check


def sent_at(t):
    """Left at virtual time t (seconds), to the millisecond tick."""
    def check(s):
        assert abs(s.t - t) < 1e-6, f"sent at {s.t:.6f}, expected {t:.6f}: {s}"
    return check


_ABSENT = object()


def options(**want):
    """options(mss=1460, wscale=7, sack_perm=True, ts=(val, ecr), sack=[(l, r)]): each named
    option as given; None means absent. ts=(None, ecr) checks the echo only."""
    def check(s):
        for k, v in want.items():
            got = s.options.get(k)
            if v is None:
                assert got is None, f"option {k}={got}, expected absent: {s}"
            elif k == "ts" and v[0] is None:
                assert got is not None and got[1] == v[1] & 0xffffffff, \
                    f"ts {got}, expected ecr {v[1]}: {s}"
            elif k == "sack":
                want_blocks = [(a & 0xffffffff, b & 0xffffffff) for a, b in v]
                assert got == want_blocks, f"sack {got}, expected {want_blocks}: {s}"
            else:
                assert got == v, f"option {k}={got}, expected {v}: {s}"
    return check


def no_options():
    def check(s):
        assert s.options == {}, f"options {s.options}, expected none: {s}"
    return check


# ---- the application's side: a recording target for CallbackSink ------------------------------
class App:
    """Records what the connection reports; reads everything unless paused."""

    def __init__(self, ctx, auto_read=True):
        self.ctx = ctx
        self.auto_read = auto_read
        self.events = []
        self.received = bytearray()
        self.errors = []
        self.conn = None

    def established(self, c):
        self.conn = c
        self.events.append("established")

    def data(self, c):
        self.events.append("data")
        if self.auto_read:
            self.received += c.recv(1 << 22)

    def eof(self, c):
        self.events.append("eof")

    def send_space(self, c):
        self.events.append("send_space")

    def closed(self, c, error):
        self.events.append(("closed", error))

    @property
    def closed_with(self):
        for e in self.events:
            if isinstance(e, tuple) and e[0] == "closed":
                return e[1]
        return None


# ---- the script --------------------------------------------------------------------------------
class TcpScript:
    def __init__(self, *, mtu=None, rcvbuf=65535 * 4, sndbuf=262144, delayed_ack=0.04,
                 time_wait=60.0, congestion="newreno", syncookies=True, reassembly_mbufs=None,
                 rcvbuf_max=None, sndbuf_max=None, **layer):
        """Buffers are fixed at rcvbuf/sndbuf (the scripts check exact windows) unless
        *_max asks for autotuning."""
        self.a, self.b = ring_pair()
        self.t = 0.0
        cfg = StackConfig(address=f"{US}/24", tap_peer=None, mac=US_MAC, mtu=mtu,
                          arp_timeout=1e7, tcp_rcvbuf=rcvbuf, tcp_sndbuf=sndbuf,
                          tcp_rcvbuf_max=rcvbuf_max or rcvbuf, tcp_sndbuf_max=sndbuf_max or sndbuf,
                          tcp_delayed_ack=delayed_ack, tcp_time_wait=time_wait,
                          tcp_congestion=congestion, tcp_syncookies=syncookies,
                          tcp_reassembly_mbufs=reassembly_mbufs)
        self.stack = Stack(cfg, device=self.a, start_ns=START_NS)
        self.tcp = self.stack.tcp
        for k, v in layer.items():                 # e.g. rto_min_ns, challenge_ack_limit
            setattr(self.tcp, k, v)
        self.pending = []
        self.accepted = []                         # App of every accepted connection
        self.listeners = []
        # the peer asks for us: we learn it (RFC 826) and answer; both ARP frames are noise
        arp = (_mac(US_MAC) + _mac(PEER_MAC) + b"\x08\x06"
               + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + _mac(PEER_MAC) + ip4(PEER)
               + bytes(6) + ip4(US))
        assert send_frames(self.b, [arp]) == 1
        self.stack.poll(START_NS)
        assert len(recv_all(self.b)) == 2          # gratuitous ARP, our reply
        assert self.stack.iface.arp_entries()[PEER][0] == PEER_MAC

    # ---- time --------------------------------------------------------------------------------
    def _ns(self, t):
        return START_NS + int(round(t * NS))

    def _poll(self, t):
        self.stack.poll(self._ns(t))
        for f in recv_all(self.b):
            self.pending.append(parse_frame(f, t))

    def advance(self, to):
        """Move the clock to `to` seconds, firing every timer due by then at its own time."""
        assert to >= self.t - 1e-12, f"time goes forward: {to} < {self.t}"
        end = self._ns(to)
        for _ in range(100000):
            nxt = self.tcp.next_timer_ns()
            if nxt is None or nxt > end:
                break
            t = max((nxt - START_NS) / NS, self.t)
            self._poll(t)
            self.t = t
        else:
            raise AssertionError("timers keep firing without the clock moving")
        self.t = to
        self._poll(to)

    def at(self, t=None):
        """Advance to t (None: stay), return the clock."""
        if t is not None:
            self.advance(t)
        return self.t

    # ---- the peer's side -----------------------------------------------------------------------
    def send(self, *frames, at=None):
        """The peer's frames arrive together at time `at` (one poll step: one rx burst)."""
        assert len(frames) <= 32, "one rx burst takes 32 frames"
        self.at(at)
        assert send_frames(self.b, list(frames)) == len(frames)
        self._poll(self.t)

    def expect(self, *checkers):
        """The next segment the stack sent, which must pass every checker; returned."""
        if not self.pending:
            self._poll(self.t)
        assert self.pending, f"expected a segment by t={self.t}, got nothing"
        s = self.pending.pop(0)
        for check in checkers:
            check(s)
        return s

    def expect_nothing(self, until=None):
        """Nothing sent by now (or, with until, by that time)."""
        self.at(until)
        self._poll(self.t)
        assert not self.pending, f"expected nothing by t={self.t}, got {self.pending}"

    # ---- the application's side -----------------------------------------------------------------
    def do(self, fn, at=None):
        """Run fn() at time `at`, then one poll step (what it asked for goes out)."""
        self.at(at)
        r = fn()
        self._poll(self.t)
        return r

    def listen(self, port=US_PORT, backlog=128, auto_read=True, refuse=False):
        def accept(c):
            if refuse:
                return None
            app = App(self, auto_read)
            app.conn = c
            self.accepted.append(app)
            return app
        lst = self.tcp.listen(port, CallbackListener(accept), backlog=backlog)
        self.listeners.append(lst)
        return lst

    def connect(self, iss, at=None, port=PEER_PORT, local_port=US_PORT, auto_read=True):
        """Active open with our ISS = iss; returns (connection, App)."""
        self.at(at)
        app = App(self, auto_read)
        c = self.tcp.connect(PEER, port, CallbackSink(app), local_port=local_port,
                             now_ns=self._ns(self.t), iss=iss)
        app.conn = c
        self._poll(self.t)
        return c, app

    def conn(self):
        (c,) = self.tcp.connection_list()
        return c

    # ---- common openings -------------------------------------------------------------------------
    def open_active(self, iss=1000, irs=5000, at=0.0, rtt=0.1, peer_window=65535, mss=1460,
                    wscale=None, sack_perm=False, ts=None, auto_read=True):
        """connect() at `at`; the peer's SYN-ACK `rtt` later (so SRTT = rtt and the RTO is
        rtt + 4 * rtt/2, at least 200 ms); returns (connection, App) in ESTABLISHED, with the
        handshake's segments consumed. ts: the peer's (TSval, TSecr) on its SYN-ACK."""
        c, app = self.connect(iss, at=at, auto_read=auto_read)
        syn = self.expect(flags("S"), seq(iss))
        if ts is not None and ts[1] is None:
            ts = (ts[0], syn.ts[0])
        self.send(seg("SA", irs, iss + 1, peer_window, mss=mss, wscale=wscale,
                      sack_perm=sack_perm, ts=ts), at=at + rtt)
        self.expect(flags("A"), seq(iss + 1), ack(irs + 1))
        assert c.state_name == "ESTABLISHED" and app.events == ["established"]
        return c, app

    def open_passive(self, irs=5000, at=0.0, rtt=0.1, peer_window=65535, mss=1460,
                     wscale=None, sack_perm=False, ts=None, auto_read=True, backlog=128):
        """listen(); the peer's SYN at `at`, our SYN-ACK, the peer's ACK `rtt` later; returns
        (connection, App, our ISS). ts: the peer's (TSval, _) on its SYN; its ACK carries
        TSval + 1 and echoes ours."""
        self.listen(auto_read=auto_read, backlog=backlog)
        self.send(seg("S", irs, 0, peer_window, mss=mss, wscale=wscale, sack_perm=sack_perm,
                      ts=ts), at=at)
        sa = self.expect(flags("SA"), ack(irs + 1))
        ecr = None if ts is None else (ts[0] + 1, sa.ts[0])
        self.send(seg("A", irs + 1, sa.seq + 1, peer_window, ts=ecr), at=at + rtt)
        self.expect_nothing()
        app = self.accepted[-1]
        assert app.conn.state_name == "ESTABLISHED" and app.events == ["established"]
        return app.conn, app, sa.seq

    # ---- the end -----------------------------------------------------------------------------------
    def assert_clean(self):
        """No connection and no timer left (the connection ended by itself)."""
        assert self.tcp.connection_list() == [], self.tcp.connection_list()
        assert self.tcp.counters()["timers_armed"] == 0

    def close(self):
        for c in self.tcp.connection_list():
            c.abort()
        for lst in self.listeners:
            lst.close()
        self._poll(self.t)
        self.pending.clear()
        try:
            assert self.tcp.connection_list() == []
            assert self.tcp.counters()["timers_armed"] == 0, "a timer outlived its connection"
        finally:
            self.stack.close()
            self.b.close()


def script_fixture(**kw):
    """A pytest fixture yielding a TcpScript; it fails a test that left a segment unexpected."""
    @pytest.fixture
    def fixture(eal, request):
        ctx = TcpScript(**kw)
        yield ctx
        leftover = list(ctx.pending)
        ctx.close()
        assert not leftover, f"segments sent and never expected: {leftover}"
    return fixture


ctx = script_fixture()
