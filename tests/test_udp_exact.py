"""UDP on crafted frames, exact replies: scapy builds what goes in and what must come out, an
RFC 1071 checksum written here checks it independently, never the stack's own emit code.

A Stack sits on side a of a real DPDK net_ring pair (optionally behind a middleware playing a
NIC's checksum offload or its rx verdict); side b is a raw end of bytes in, bytes out.
"""
import errno
import struct

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from fastloop.dev.offload_testing import OffloadingNic, RxL4Verdict
from udp_util import (UdpRawEnd, csum, ip4, udp_sum_ok, nonzero, to_us,
                      with_udp_checksum, US_MAC, US, PEER_MAC, PEER, NEIGH_MAC, NEIGH,
                      SUBNET_BCAST, BCAST, BCAST_MAC, TTL)


@pytest.fixture
def raw(eal):
    r = UdpRawEnd()
    yield r
    r.close()


# ---- receiving ------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [b"", b"x", b"hello world", bytes(range(256)) * 5 + b"z" * 192])
def test_datagram_to_a_bound_port_is_delivered_with_address_and_payload(raw, payload):
    ep, t = raw.bind(7777)
    assert raw.exchange(to_us(payload)) == []
    assert t.got == [(payload, (PEER, 4000))]
    assert raw.counters() == nonzero({"datagrams_in": 1, "bytes_in": len(payload)})
    assert raw.drops() == {}


def test_checksum_zero_means_none_and_is_accepted(raw):
    _, t = raw.bind(7777)
    frame = with_udp_checksum(to_us(b"no checksum"), 0)
    assert raw.exchange(frame) == []
    assert t.got == [(b"no checksum", (PEER, 4000))]
    assert raw.counters() == {"datagrams_in": 1, "bytes_in": 11, "no_checksum_in": 1}


def test_checksum_all_ones_verifies(raw):
    """A sum of zero is sent as 0xffff (RFC 768); find a payload whose checksum is that."""
    _, t = raw.bind(7777)
    base = bytes(to_us(b"ab\0\0", sport=4000))
    dg = bytearray(base[34:])
    dg[6:8] = b"\0\0"
    pseudo = ip4(PEER) + ip4(US) + struct.pack("!BBH", 0, 17, len(dg))
    s0 = (~csum(pseudo + bytes(dg))) & 0xffff           # sum without the last word
    dg[10:12] = struct.pack("!H", (0xffff - s0) % 0xffff or 0xffff)
    assert csum(pseudo + bytes(dg)) in (0, 0xffff)
    dg[6:8] = b"\xff\xff"
    assert udp_sum_ok(PEER, US, bytes(dg))
    assert raw.exchange(base[:34] + bytes(dg)) == []
    assert t.got == [(bytes(dg[8:]), (PEER, 4000))]


def test_bytes_past_the_udp_length_are_not_delivered(raw):
    """The IP payload is longer than the UDP length: the rest is not the datagram."""
    _, t = raw.bind(7777)
    dg = bytes(UDP(sport=4000, dport=7777, len=13, chksum=0) / Raw(b"hello"))
    frame = Ether(dst=US_MAC, src=PEER_MAC) / IP(src=PEER, dst=US, proto=17) / Raw(dg + b"trailer")
    assert raw.exchange(frame) == []
    assert t.got == [(b"hello", (PEER, 4000))]


def malformed_cases():
    good = bytes(to_us(b"payload!"))
    ip_hdr = good[14:34]

    def frame_with(dgram):
        ip = IP(ip_hdr)
        ip.len, ip.chksum = 20 + len(dgram), None
        return bytes(Ether(dst=US_MAC, src=PEER_MAC) / ip / Raw(dgram))

    dg = good[34:]
    yield "bad-checksum", with_udp_checksum(good, struct.unpack("!H", good[40:42])[0] ^ 0x0101), \
        "in_bad_checksum"
    yield "bad-checksum-payload-flip", good[:-1] + bytes([good[-1] ^ 1]), "in_bad_checksum"
    for n in (0, 1, 4, 7):
        yield f"short-{n}", frame_with(dg[:n]), "in_short"
    yield "length-past-frame", frame_with(dg[:4] + struct.pack("!H", len(dg) + 1) + dg[6:]), \
        "in_bad_length"
    yield "length-65535", frame_with(dg[:4] + b"\xff\xff" + dg[6:]), "in_bad_length"
    for n in (0, 7):
        yield f"length-{n}", frame_with(dg[:4] + struct.pack("!H", n) + dg[6:]), "in_bad_length"


@pytest.mark.parametrize("frame, reason", [pytest.param(f, r, id=i) for i, f, r in malformed_cases()])
def test_malformed_datagrams_are_dropped_and_counted(raw, frame, reason):
    _, t = raw.bind(7777)
    assert raw.exchange(frame) == []                   # no ICMP about a broken datagram
    assert t.got == []
    c = raw.counters()
    assert c == {reason: 1, "in_errors": 1}
    assert raw.stack.counters()["icmp_unreach_out"] == 0
    assert raw.drops() == {}


def test_unbound_port_gets_the_exact_port_unreachable_quoting_the_datagram(raw):
    req = to_us(b"anyone there?" * 3, dport=9)
    out = raw.exchange(req)
    assert len(out) == 1
    f = out[0]
    assert f[12:14] == b"\x08\x00" and csum(f[14:34]) == 0
    ident = struct.unpack("!H", f[18:20])[0]
    quote = bytes(req)[14:14 + 28]                     # RFC 792: IP header + 8 data bytes
    msg = f[34:]
    assert msg[:2] == b"\x03\x03" and msg[4:8] == bytes(4) and msg[8:] == quote
    assert csum(msg) == 0
    assert f == bytes(Ether(dst=PEER_MAC, src=US_MAC) / IP(
        id=ident, flags="DF", ttl=TTL, proto=1, src=US, dst=PEER) / ICMP(type=3, code=3)
        / Raw(quote))
    assert raw.counters() == {"no_port": 1}
    assert raw.stack.counters()["icmp_unreach_out"] == 1


def test_a_connected_endpoint_hears_only_its_peer(raw):
    ep, t = raw.bind(7777)
    ep.connect(PEER, 4000)
    assert ep.local == (US, 7777) and ep.remote == (PEER, 4000)
    assert raw.exchange(to_us(b"peer", sport=4000)) == []
    out = raw.exchange(to_us(b"stranger", sport=4001))  # as Linux: no socket for it
    assert len(out) == 1 and out[0][34:36] == b"\x03\x03"
    assert t.got == [(b"peer", (PEER, 4000))]
    assert raw.counters() == {"datagrams_in": 1, "bytes_in": 4, "no_port": 1}


@pytest.mark.parametrize("dst", [BCAST, SUBNET_BCAST])
def test_broadcast_to_an_unbound_port_gets_no_icmp(raw, dst):
    assert raw.exchange(to_us(dst=dst, mac=BCAST_MAC)) == []   # RFC 1122 §4.1.3.1
    assert raw.counters() == {"ignored_broadcast": 1}
    assert raw.stack.counters()["icmp_unreach_out"] == 0


@pytest.mark.parametrize("dst", [BCAST, SUBNET_BCAST])
def test_broadcast_reaches_a_wildcard_endpoint_only(raw, dst):
    _, wild = raw.bind(7777)
    _, specific = raw.bind(7778, host=US)
    assert raw.exchange(to_us(b"all", dst=dst, mac=BCAST_MAC),
                        to_us(b"all", dport=7778, dst=dst, mac=BCAST_MAC)) == []
    assert wild.got == [(b"all", (PEER, 4000))]
    assert specific.got == []
    assert raw.counters() == {"datagrams_in": 1, "bytes_in": 3, "ignored_broadcast": 1}


def test_multicast_is_not_delivered(raw):
    _, t = raw.bind(7777)
    assert raw.exchange(to_us(dst="224.0.0.251")) == []      # we join no group
    assert t.got == [] and raw.counters() == {"ignored_broadcast": 1}


@pytest.mark.parametrize("good", [True, False], ids=["pmd-good", "pmd-bad"])
def test_the_pmd_checksum_verdict_is_trusted(eal, good):
    """Flagged good: not checked again (a wrong checksum gets through, proving it); flagged
    bad: dropped even though it verifies; checksum 0 is none whatever the PMD says."""
    r = UdpRawEnd(wrap=lambda d: RxL4Verdict(d, good))
    try:
        _, t = r.bind(7777)
        right = bytes(to_us(b"right"))
        wrong = with_udp_checksum(to_us(b"wrong"), 0x1234)
        none = with_udp_checksum(to_us(b"none"), 0)
        assert r.exchange(right, wrong, none) == []
        if good:
            assert [d for d, _ in t.got] == [b"right", b"wrong", b"none"]
        else:
            assert [d for d, _ in t.got] == [b"none"]
            assert r.counters()["in_bad_checksum"] == 2
    finally:
        r.close()


# ---- sending --------------------------------------------------------------------------------
def check_sent(frame: bytes, payload: bytes, sport: int, dport: int, dst=PEER, dst_mac=PEER_MAC):
    assert frame[:6] == bytes.fromhex(dst_mac.replace(":", ""))
    ident = struct.unpack("!H", frame[18:20])[0]
    assert frame[20:22] == b"\x40\x00" and frame[22] == TTL and frame[23] == 17
    assert csum(frame[14:34]) == 0
    dg = frame[34:]
    assert struct.unpack("!HHH", dg[:6]) == (sport, dport, 8 + len(payload))
    assert dg[6:8] != b"\0\0" and udp_sum_ok(US, dst, dg)
    assert dg[8:] == payload
    assert frame == bytes(Ether(dst=dst_mac, src=US_MAC) / IP(
        id=ident, flags="DF", ttl=TTL, src=US, dst=dst) / UDP(sport=sport, dport=dport)
        / Raw(payload))


@pytest.mark.parametrize("nic", [False, True], ids=["cksum-software", "cksum-offload"])
@pytest.mark.parametrize("payload", [b"", b"q", b"odd length", bytes(range(256)) * 5 + b"!" * 192])
def test_sendto_builds_the_exact_datagram(eal, nic, payload):
    r = UdpRawEnd(wrap=OffloadingNic if nic else None)
    try:
        assert r.stack.iface.tx_l4_cksum is nic
        ep, _ = r.bind(5000)
        ep.sendto(payload, PEER, 53)
        out = r.exchange()
        assert len(out) == 1
        check_sent(out[0], payload, 5000, 53)
        assert r.counters() == nonzero({"datagrams_out": 1, "bytes_out": len(payload)})
    finally:
        r.close()


@pytest.mark.parametrize("nic", [False, True], ids=["cksum-software", "cksum-offload"])
def test_a_computed_zero_checksum_is_sent_as_all_ones(eal, nic):
    r = UdpRawEnd(wrap=OffloadingNic if nic else None)
    try:
        ep, _ = r.bind(5000)
        payload = bytearray(b"zz\0\0")
        hdr = struct.pack("!HHHH", 5000, 53, 12, 0)
        pseudo = ip4(US) + ip4(PEER) + struct.pack("!BBH", 0, 17, 12)
        s0 = (~csum(pseudo + hdr + bytes(payload))) & 0xffff
        payload[2:4] = struct.pack("!H", (0xffff - s0) % 0xffff)
        assert csum(pseudo + hdr + bytes(payload)) in (0, 0xffff)   # the sum is all ones
        ep.sendto(payload, PEER, 53)
        out = r.exchange()
        assert out[0][40:42] == b"\xff\xff"
        assert udp_sum_ok(US, PEER, out[0][34:])
    finally:
        r.close()


def test_connected_endpoint_sends_to_its_peer_from_its_address(raw):
    ep, _ = raw.bind(0)
    ep.connect(PEER, 53)
    ep.sendto(b"q1")
    ep.sendto(b"q2", NEIGH, 54)                         # an explicit address still goes there
    out = raw.exchange()
    check_sent(out[0], b"q1", ep.local_port, 53)
    assert out[1] == bytes(Ether(dst=BCAST_MAC, src=US_MAC, type=0x0806) / ARP(
        op=1, hwsrc=US_MAC, psrc=US, hwdst="00:00:00:00:00:00", pdst=NEIGH))
    assert raw.stack.counters()["held_mbufs"]["arp_queues"] == 1   # waits for the neighbour
    out = raw.exchange(Ether(dst=US_MAC, src=NEIGH_MAC) / ARP(
        op=2, hwsrc=NEIGH_MAC, psrc=NEIGH, hwdst=US_MAC, pdst=US))
    assert len(out) == 1
    check_sent(out[0], b"q2", ep.local_port, 54, dst=NEIGH, dst_mac=NEIGH_MAC)


@pytest.mark.parametrize("dst", [BCAST, SUBNET_BCAST])
def test_sending_to_broadcast_goes_to_the_broadcast_mac(raw, dst):
    ep, _ = raw.bind(6000)
    ep.sendto(b"hello all", dst, 6000)
    out = raw.exchange()
    assert len(out) == 1
    check_sent(out[0], b"hello all", 6000, 6000, dst=dst, dst_mac=BCAST_MAC)


def test_sending_to_our_own_address_loops_inside_the_stack(raw):
    a, ta = raw.bind(6000)
    b, tb = raw.bind(6001, host=US)
    a.sendto(b"to myself", US, 6001)
    assert raw.exchange() == []                         # nothing reached the device
    assert tb.got == [(b"to myself", (US, 6000))]
    assert raw.stack.counters()["loopback_frames"] == 1


# ---- ICMP errors about what we sent -------------------------------------------------------
def icmp_about(sport, dport, type_, code, dst=PEER):
    sent = IP(src=US, dst=dst, flags="DF", id=7) / UDP(sport=sport, dport=dport) / Raw(b"abcd")
    quote = bytes(sent)[:28]
    return Ether(dst=US_MAC, src=PEER_MAC) / IP(src=PEER, dst=US) / ICMP(
        type=type_, code=code) / Raw(quote)


@pytest.mark.parametrize("type_, code, err", [
    (3, 3, errno.ECONNREFUSED), (3, 1, errno.EHOSTUNREACH), (3, 0, errno.ENETUNREACH),
    (3, 4, errno.EMSGSIZE), (3, 13, errno.EHOSTUNREACH), (11, 0, errno.EHOSTUNREACH),
    (11, 1, errno.EHOSTUNREACH)])
@pytest.mark.parametrize("connected", [False, True], ids=["unconnected", "connected"])
def test_icmp_errors_reach_the_sending_endpoint_as_errno(raw, type_, code, err, connected):
    ep, t = raw.bind(5000)
    if connected:
        ep.connect(PEER, 53)
    assert raw.exchange(icmp_about(5000, 53, type_, code)) == []
    assert len(t.errs) == 1
    exc, addr = t.errs[0]
    assert isinstance(exc, OSError) and exc.errno == err and addr == (PEER, 53)
    if err == errno.ECONNREFUSED:
        assert isinstance(exc, ConnectionRefusedError)
    assert raw.counters() == {"icmp_errors_in": 1}


def test_icmp_errors_about_no_endpoint_of_ours_are_counted(raw):
    ep, t = raw.bind(5000)
    ep.connect(PEER, 53)
    assert raw.exchange(icmp_about(5001, 53, 3, 3),    # another port
                        icmp_about(5000, 54, 3, 3),    # another peer port of a connected one
                        icmp_about(5000, 53, 3, 3, dst=NEIGH)) == []
    assert t.errs == []
    assert raw.counters() == {"icmp_errors_unmatched": 3}


def test_icmp_error_with_a_malformed_quote_is_counted(raw):
    _, t = raw.bind(5000)
    quote = bytearray(bytes(IP(src=US, dst=PEER) / UDP(sport=5000, dport=53))[:28])
    quote[0] = 0x4f                                     # IHL 60: the UDP ports are not there
    frame = Ether(dst=US_MAC, src=PEER_MAC) / IP(src=PEER, dst=US) / ICMP(type=3, code=3) / Raw(
        bytes(quote))
    assert raw.exchange(frame) == []
    assert t.errs == [] and raw.counters() == {"icmp_errors_unmatched": 1}
