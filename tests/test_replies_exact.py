"""Exact replies, smoltcp style: a small fixture goes in, the exact frame is expected back.

A Stack sits on side a of a real DPDK net_ring pair; side b is a raw end that sends and
receives bytes (`testing.send_frames` / `recv_all`). Expected frames are built with scapy and
checked with an RFC 1071 checksum written here, never with the stack's own emit code.
Fields the stack chooses (IP ident, TTL, DF) are asserted one by one before the whole frame
is compared.
"""
import struct
import time

import pytest
from scapy.layers.inet import ICMP, IP, IPOption_RR
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.testing import recv_all, send_frames
from fastloop.stack import Stack
from frames import csum, ip4

US_MAC, US = "02:00:00:00:aa:01", "10.9.6.1"
PEER_MAC, PEER = "02:00:00:00:bb:02", "10.9.6.2"
NEIGH_MAC, NEIGH = "02:00:00:00:dd:04", "10.9.6.40"
BCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
TTL = 64                 # the stack's default TTL (RFC 1700's recommendation)
DF = 0x4000


def mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


class RawEnd:
    """The stack on ring side a, and side b as bytes in, bytes out."""

    def __init__(self, prefix=24, **config):
        self.a, self.b = ring_pair()
        self.stack = Stack(StackConfig(address=f"{US}/{prefix}", tap_peer=None, mac=US_MAC,
                                       **config), device=self.a)
        self.at_creation = recv_all(self.b)

    def send(self, *frames):
        assert send_frames(self.b, [bytes(f) for f in frames]) == len(frames)

    def exchange(self, *frames, polls=3):
        """Send frames from the raw end, run the stack, return what it sent."""
        if frames:
            self.send(*frames)
        for _ in range(polls):
            self.stack.poll()
        return recv_all(self.b)

    def learn_peer(self):
        """The peer asks for us, so we know it (RFC 826) and can answer it without ARP."""
        out = self.exchange(arp_request(PEER_MAC, PEER, US))
        assert len(out) == 1 and self.stack.iface.arp_entries()[PEER][0] == PEER_MAC

    def drops(self):
        return {k: v for k, v in self.stack.counters()["drops"].items() if v}

    def close(self):
        self.stack.close()
        self.b.close()


@pytest.fixture
def raw(eal):
    r = RawEnd()
    yield r
    r.close()


def arp_request(sha, spa, tpa, dst=BCAST):
    return Ether(dst=dst, src=sha, type=0x0806) / ARP(
        hwtype=1, ptype=0x0800, hwlen=6, plen=4, op=1, hwsrc=sha, psrc=spa,
        hwdst=ZERO_MAC, pdst=tpa)


def arp_reply(sha, spa, tha, tpa):
    return Ether(dst=tha, src=sha, type=0x0806) / ARP(
        hwtype=1, ptype=0x0800, hwlen=6, plen=4, op=2, hwsrc=sha, psrc=spa, hwdst=tha, pdst=tpa)


def split_ipv4(frame: bytes, proto: int):
    """Assert the Ethernet and 20-byte IPv4 header fields the stack always sends; return
    (ident, src, dst, dst_mac, payload)."""
    assert frame[12:14] == b"\x08\x00"
    ver_ihl, tos, tl, ident, frag, ttl, p, _c, src, dst = struct.unpack("!BBHHHBBH4s4s",
                                                                        frame[14:34])
    assert ver_ihl == 0x45                 # version 4, no options
    assert tos == 0
    assert tl == len(frame) - 14           # no padding on the ring: the frame is the datagram
    assert frag == DF                      # DF, offset 0: we never fragment
    assert ttl == TTL
    assert p == proto
    assert csum(frame[14:34]) == 0         # header checksum, independently
    return ident, src, dst, frame[:6], frame[34:]


# ---- ARP ------------------------------------------------------------------------------------
def test_gratuitous_arp_on_creation_is_an_rfc5227_announcement(raw):
    """RFC 5227 §2.3/§3: a broadcast ARP request, sender and target IP both ours, target
    hardware address zero."""
    assert raw.at_creation == [bytes(
        Ether(dst=BCAST, src=US_MAC, type=0x0806) / ARP(
            hwtype=1, ptype=0x0800, hwlen=6, plen=4, op=1, hwsrc=US_MAC, psrc=US,
            hwdst=ZERO_MAC, pdst=US))]
    f = raw.at_creation[0]
    assert f[:6] == b"\xff" * 6 and f[6:12] == mac(US_MAC) and f[12:14] == b"\x08\x06"
    assert f[14:22] == bytes.fromhex("0001 0800 06 04 0001")
    assert f[22:28] == mac(US_MAC) and f[28:32] == ip4(US)
    assert f[32:38] == bytes(6) and f[38:42] == ip4(US) and len(f) == 42
    assert raw.stack.counters()["arp_gratuitous_out"] == 1


@pytest.mark.parametrize("tail", [b"", b"\0" * 18, b"\xaa" * 18], ids=["42", "60", "60-junk"])
def test_arp_request_for_us_gets_the_exact_reply(raw, tail):
    out = raw.exchange(bytes(arp_request(PEER_MAC, PEER, US)) + tail)
    assert out == [bytes(arp_reply(US_MAC, US, PEER_MAC, PEER))]
    assert raw.stack.iface.arp_entries() == {PEER: (PEER_MAC, "reachable")}
    assert raw.drops() == {}


def test_arp_request_unicast_to_our_mac_gets_the_exact_reply(raw):
    """RFC 1122 §2.3.2.1: unicast requests (re-validation) are answered too."""
    out = raw.exchange(arp_request(PEER_MAC, PEER, US, dst=US_MAC))
    assert out == [bytes(arp_reply(US_MAC, US, PEER_MAC, PEER))]


def test_arp_request_for_another_ip_gets_nothing(raw):
    assert raw.exchange(arp_request(PEER_MAC, PEER, "10.9.6.99")) == []
    assert raw.stack.iface.arp_entries() == {}
    assert raw.drops() == {"arp_not_for_us": 1}


def test_send_echo_to_unknown_neighbour_arps_then_sends_the_queued_request(raw):
    stack = raw.stack
    stack.iface.send_echo(NEIGH, 7, 56)
    out = raw.exchange()
    assert out == [bytes(arp_request(US_MAC, US, NEIGH))], "one broadcast who-has"
    assert raw.exchange() == []                        # no retry before a second passes
    assert stack.counters()["held_mbufs"]["arp_queues"] == 1

    out = raw.exchange(arp_reply(NEIGH_MAC, NEIGH, US_MAC, US))
    assert len(out) == 1
    ident, src, dst, dst_mac, msg = split_ipv4(out[0], 1)
    assert (src, dst, dst_mac) == (ip4(US), ip4(NEIGH), mac(NEIGH_MAC))
    assert ident == 1                                  # the stack's first IP datagram
    assert msg[:2] == b"\x08\x00" and csum(msg) == 0
    assert struct.unpack("!HH", msg[4:8]) == (stack.iface.ident, 7)
    data = msg[8:]
    assert len(data) == 56 and data[8:] == bytes(i & 0xff for i in range(8, 56))
    assert out[0] == bytes(
        Ether(dst=NEIGH_MAC, src=US_MAC) / IP(id=1, flags="DF", ttl=TTL, src=US, dst=NEIGH)
        / ICMP(type=8, code=0, id=stack.iface.ident, seq=7) / Raw(data))   # data[:8]: send time
    assert stack.counters()["held_mbufs"]["arp_queues"] == 0

    # the neighbour answers; the stack matches the reply to its ping
    raw.exchange(Ether(dst=US_MAC, src=NEIGH_MAC) / IP(src=NEIGH, dst=US, flags="DF")
                 / ICMP(type=0, id=stack.iface.ident, seq=7) / Raw(data))
    replies, count = stack.iface.echo_replies()
    assert count == 1 and replies[0][:3] == (NEIGH, 7, 56)
    assert raw.drops() == {}


@pytest.mark.parametrize("limit", [1, 4, 64])
def test_arp_queue_is_bounded(eal, limit):
    raw = RawEnd(arp_queue=limit)
    try:
        iface = raw.stack.iface
        for seq in range(limit + 1):
            iface.send_echo(NEIGH, seq, 16)
        assert raw.drops() == {"arp_queue_full": 1}
        assert raw.stack.counters()["held_mbufs"]["arp_queues"] == limit
        assert raw.exchange() == [bytes(arp_request(US_MAC, US, NEIGH))]
        out = raw.exchange(arp_reply(NEIGH_MAC, NEIGH, US_MAC, US))
        assert len(out) == limit
        for seq, frame in enumerate(out):              # the first `limit`, in order
            _, _, dst, dst_mac, msg = split_ipv4(frame, 1)
            assert (dst, dst_mac) == (ip4(NEIGH), mac(NEIGH_MAC))
            assert msg[0] == 8 and struct.unpack("!H", msg[6:8])[0] == seq and csum(msg) == 0
        assert raw.stack.counters()["held_mbufs"]["arp_queues"] == 0
        assert raw.drops() == {"arp_queue_full": 1}
    finally:
        raw.close()


def test_arp_queues_have_one_bound_for_all_neighbours(eal):
    raw = RawEnd(arp_queue=4, arp_queue_total=6)
    try:
        iface = raw.stack.iface
        for seq in range(4):
            iface.send_echo(NEIGH, seq, 16)
        for seq in range(4):
            iface.send_echo(PEER, seq, 16)
        assert raw.drops() == {"arp_queues_full": 2}               # the last two to PEER
        assert raw.stack.counters()["held_mbufs"]["arp_queues"] == 6
        assert len(raw.exchange()) == 2                             # who-has NEIGH, PEER
        out = raw.exchange(arp_reply(NEIGH_MAC, NEIGH, US_MAC, US))
        assert len(out) == 4 and all(f[:6] == mac(NEIGH_MAC) for f in out)
        assert raw.stack.counters()["held_mbufs"]["arp_queues"] == 2
        iface.send_echo(PEER, 4, 16)                                # room again, up to 4 for PEER
        iface.send_echo(PEER, 5, 16)
        iface.send_echo(PEER, 6, 16)
        assert raw.drops() == {"arp_queues_full": 2, "arp_queue_full": 1}
        assert raw.stack.counters()["held_mbufs"]["arp_queues"] == 4
    finally:
        raw.close()


def test_spoofed_syn_flood_cannot_fill_the_pool_with_frames_waiting_for_arp(eal):
    """SYNs from 3000 spoofed on-link sources: every SYN-ACK would wait for an ARP answer
    that never comes. The ARP table, the queues and the mempool stay bounded, what does not
    fit is counted, and when the requests time out everything is freed."""
    from fastloop.net.tcp.pysink import CallbackListener
    from scapy.layers.inet import TCP
    raw = RawEnd(prefix=16)
    try:
        stack = raw.stack
        listener = stack.tcp.listen(80, CallbackListener(lambda c: None))
        t0 = time.monotonic_ns()                                    # the stack's clock
        stack.poll(t0)
        base = eal.mempool.in_use
        sources = [f"10.9.{100 + i // 250}.{1 + i % 250}" for i in range(3000)]
        peak = 0
        for k in range(0, len(sources), 32):
            raw.send(*[Ether(dst=US_MAC, src=PEER_MAC) / IP(src=src, dst=US)
                       / TCP(sport=1024 + k, dport=80, flags="S", seq=k) for src in sources[k:k + 32]])
            stack.poll(t0)
            recv_all(raw.b)                                         # the who-has requests
            peak = max(peak, eal.mempool.in_use - base)
        c = stack.counters()
        assert c["held_mbufs"]["arp_queues"] == 256                 # arp_queue_total's default
        assert c["drops"]["arp_queues_full"] + c["drops"]["arp_table_full"] == 3000 - 256
        assert c["drops"]["arp_table_full"] > 0                     # 3/4 of 1024 slots at most
        assert peak <= 256 + 32 + 64, peak                          # queued + one burst + slack
        for s in range(1, 300):                   # ARP gives up after 3 tries a second apart;
            stack.poll(t0 + s * 10**9)            # the half-open connections' SYN-ACK
            recv_all(raw.b)                       # retransmissions, after theirs
            peak = max(peak, eal.mempool.in_use - base)
        c = stack.counters()
        assert c["held_mbufs"]["arp_queues"] == 0 and stack.iface.arp_entries() == {}
        assert c["drops"]["arp_unresolved"] >= 256
        assert stack.tcp.connection_list() == [] and peak <= 256 + 32 + 64, peak
        listener.close()
    finally:
        raw.close()


# ---- ICMP echo ------------------------------------------------------------------------------
def expected_echo_reply(request: bytes, ident: int) -> bytes:
    """The reply to an echo request frame, built by scapy (checksums computed by scapy)."""
    req = Ether(request)
    return bytes(Ether(dst=PEER_MAC, src=US_MAC) / IP(
        version=4, ihl=5, tos=0, id=ident, flags="DF", frag=0, ttl=TTL, proto=1,
        src=US, dst=PEER) / ICMP(type=0, code=0, id=req[ICMP].id, seq=req[ICMP].seq)
        / Raw(bytes(req[ICMP].payload)))


def check_echo_reply(frame: bytes, request: bytes, ident: int):
    got_ident, src, dst, dst_mac, msg = split_ipv4(frame, 1)
    assert (src, dst, dst_mac) == (ip4(US), ip4(PEER), mac(PEER_MAC))
    assert got_ident == ident
    ihl = (request[14] & 0x0f) * 4
    req = request[14 + ihl:14 + struct.unpack("!H", request[16:18])[0]]
    assert msg[0] == 0 and msg[1] == 0                  # echo reply, code 0
    assert msg[4:] == req[4:]                           # identifier, sequence and data
    assert csum(msg) == 0                               # verifies, independently
    assert frame == expected_echo_reply(request, ident)


def test_echo_request_gets_the_exact_reply(raw):
    raw.learn_peer()
    for n, ident in ((0, 1), (1, 2)):
        req = bytes(Ether(dst=US_MAC, src=PEER_MAC) / IP(src=PEER, dst=US, id=0x9999, ttl=3)
                    / ICMP(type=8, id=0x1234, seq=n) / Raw(b"0123456789abcdef" * (n + 1)))
        out = raw.exchange(req)
        assert len(out) == 1
        check_echo_reply(out[0], req, ident)           # ident: one more per datagram sent
    assert raw.drops() == {}


def test_echo_request_with_record_route_gets_a_reply_without_options(raw):
    raw.learn_peer()
    req = bytes(Ether(dst=US_MAC, src=PEER_MAC)
                / IP(src=PEER, dst=US, options=[IPOption_RR(routers=["0.0.0.0"] * 3)])
                / ICMP(type=8, id=7, seq=9) / Raw(b"options"))
    out = raw.exchange(req)
    assert len(out) == 1
    check_echo_reply(out[0], req, 1)
    assert raw.stack.counters()["ip_options_seen"] == 1


def craft_echo_request(payload: bytes, request_cksum):
    """An echo request whose ICMP checksum field is `request_cksum` (None: whatever it is),
    steered by the identifier: the one's complement sum is linear in it (RFC 1071 §2)."""
    body = struct.pack("!BBHHH", 8, 0, 0, 0, 0x5151) + payload
    if request_cksum is None:
        ident = 0x3c3c
    else:
        target = 0 if request_cksum == 0xffff else request_cksum   # 0xffff: -0, see below
        s0 = ~csum(body) & 0xffff                       # the sum without the identifier
        ident = ((~target & 0xffff) - s0) % 0xffff      # one's complement subtraction
    msg = bytearray(struct.pack("!BBHHH", 8, 0, 0, ident, 0x5151) + payload)
    c = csum(bytes(msg))
    if request_cksum is not None:
        assert c == (0 if request_cksum == 0xffff else request_cksum)
        if request_cksum == 0xffff:
            c = 0xffff   # the other zero: a sum of all ones verifies the same (RFC 1624 §3)
    msg[2:4] = struct.pack("!H", c)
    assert csum(bytes(msg)) == 0
    ip = IP(src=PEER, dst=US, id=0x0101, flags="DF", proto=1)
    return bytes(Ether(dst=US_MAC, src=PEER_MAC) / ip / Raw(bytes(msg)))


@pytest.mark.parametrize("length", [0, 1, 2, 3, 17, 55, 56, 1471, 1472])
@pytest.mark.parametrize("request_cksum", [None, 0x0000, 0xffff, 0x0001, 0xfffe, 0xf7ff,
                                           0xf800, 0xf7fe, 0x07ff, 0x0800],
                         ids=lambda c: "natural" if c is None else f"{c:04x}")
def test_echo_reply_checksum_update_is_exact(raw, length, request_cksum):
    """The reply's checksum is the request's updated for the type change (RFC 1624 eqn 3);
    it must equal a from-scratch computation, for odd lengths and at the 0x0000/0xffff edge
    (0xf7ff + 0x0800 is where a naive update lands on 0xffff)."""
    raw.learn_peer()
    payload = bytes((i * 7 + length) & 0xff for i in range(length))
    req = craft_echo_request(payload, request_cksum)
    out = raw.exchange(req)
    assert len(out) == 1
    check_echo_reply(out[0], req, 1)
    assert raw.drops() == {}


def test_echo_request_padded_to_60_bytes_is_answered_at_its_own_length(raw):
    raw.learn_peer()
    req = bytes(Ether(dst=US_MAC, src=PEER_MAC) / IP(src=PEER, dst=US) / ICMP(id=3, seq=4))
    assert len(req) == 42
    out = raw.exchange(req + b"\xee" * 18)
    assert len(out) == 1 and len(out[0]) == 42
    check_echo_reply(out[0], req, 1)
