"""UDP wire format (fastloop/net/wire/udp.pxd through codec): scapy fixtures, malformed forms,
checksums (zero means none, a computed zero goes out as all ones), properties on a guard page."""
import ipaddress
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import IP, UDP

from fastloop.net.wire import codec
from wire_guard import guarded

SRC, DST = "10.77.0.1", "10.77.0.2"


def scapy_datagram(payload=b"", src=SRC, dst=DST, **udp):
    pkt = IP(bytes(IP(src=src, dst=dst) / UDP(**udp) / payload))
    return bytes(pkt[UDP]), pkt[UDP]


@pytest.mark.parametrize("payload", [b"", b"q", b"dns?", b"\xff" * 1471, bytes(range(256)) * 3])
def test_parse_and_emit_match_scapy(payload):
    dg, u = scapy_datagram(payload, sport=5353, dport=53)
    err, h = codec.udp_parse(guarded(dg), SRC, DST)
    assert err == codec.UDP_OK
    assert h == {"src_port": u.sport, "dst_port": u.dport, "length": u.len, "checksum": u.chksum}
    assert h["length"] == 8 + len(payload)
    assert codec.udp_emit(h, payload, src=SRC, dst=DST) == dg
    assert codec.udp_checksum(SRC, DST, dg[:6] + b"\0\0" + dg[8:]) == u.chksum


def test_bytes_past_length_are_not_the_datagram():
    dg, _ = scapy_datagram(b"abc", sport=1, dport=2)
    err, h = codec.udp_parse(guarded(dg + b"\0\0\0pad"), SRC, DST)   # Ethernet padding
    assert err == codec.UDP_OK and h["length"] == 11


@pytest.mark.parametrize("n", range(8))
def test_truncated(n):
    dg, _ = scapy_datagram(b"x", sport=1, dport=2)
    assert codec.udp_parse(guarded(dg[:n]), SRC, DST) == (codec.UDP_TRUNCATED, None)


@pytest.mark.parametrize("length,n", [(0, 8), (7, 8), (1, 20), (9, 8), (21, 20), (0xffff, 100)])
def test_bad_length(length, n):
    dg = struct.pack("!HHHH", 1, 2, length, 0) + bytes(n - 8)
    assert codec.udp_parse(guarded(dg), SRC, DST, verify_checksum=False)[0] == codec.UDP_BAD_LENGTH


def test_bad_checksum():
    dg, _ = scapy_datagram(b"payload", sport=1, dport=2)
    for i in range(len(dg)):
        if i in (4, 5):
            continue                    # the length field: a different error or a shorter datagram
        bad = bytearray(dg)
        bad[i] ^= 0x01
        assert codec.udp_parse(guarded(bytes(bad)), SRC, DST)[0] == codec.UDP_BAD_CHECKSUM, i
    assert codec.udp_parse(guarded(dg), SRC, "10.77.0.9")[0] == codec.UDP_BAD_CHECKSUM
    bad = bytearray(dg)
    bad[-1] ^= 1
    assert codec.udp_parse(guarded(bytes(bad)), SRC, DST, verify_checksum=False)[0] == codec.UDP_OK


def test_zero_checksum_means_none():
    dg, _ = scapy_datagram(b"unchecked", sport=1, dport=2, chksum=0)
    err, h = codec.udp_parse(guarded(dg), SRC, DST)
    assert err == codec.UDP_OK and h["checksum"] == 0
    err, _ = codec.udp_parse(guarded(dg[:-1] + b"X"), SRC, DST)
    assert err == codec.UDP_OK


def _payload_summing_to_zero_checksum():
    """A 2-byte payload that makes the computed checksum 0 (found by the inverse of the sum)."""
    base = codec.udp_checksum(SRC, DST, struct.pack("!HHHH", 1, 2, 10, 0) + b"\0\0")
    # adding word w to the sum turns checksum c into c - w (ones' complement): w = c gives 0
    return base.to_bytes(2, "big")


def test_computed_zero_is_sent_as_all_ones():
    payload = _payload_summing_to_zero_checksum()
    dg = codec.udp_emit({"src_port": 1, "dst_port": 2}, payload, src=SRC, dst=DST)
    assert dg[6:8] == b"\xff\xff"
    s, u = scapy_datagram(payload, sport=1, dport=2)
    assert u.chksum == 0xffff and s == dg                 # scapy agrees (RFC 768)
    err, h = codec.udp_parse(guarded(dg), SRC, DST)
    assert err == codec.UDP_OK and h["checksum"] == 0xffff


@pytest.mark.parametrize("src,dst,length", [(SRC, DST, 8), ("1.2.3.4", "5.6.7.8", 1473),
                                            ("255.255.255.255", "0.0.0.0", 65515)])
def test_pseudo_header_sum_is_dpdks(src, dst, length):
    ip = bytes(IP(src=src, dst=dst, proto=17, len=20 + length))[:20]
    assert codec.udp_pseudo_header_sum(src, dst, length) == codec.ipv4_phdr_cksum_dpdk(ip)
    assert codec.udp_pseudo_header_sum(src, dst, length) != codec.tcp_pseudo_header_sum(
        src, dst, length)


u16 = st.integers(0, 0xffff)


@settings(max_examples=300, deadline=None)
@given(u16, u16, st.binary(max_size=200), st.integers(0, 0xffffffff), st.integers(0, 0xffffffff))
def test_emit_then_parse_round_trips(sport, dport, payload, src, dst):
    dg = codec.udp_emit({"src_port": sport, "dst_port": dport}, payload, src=src, dst=dst)
    err, h = codec.udp_parse(guarded(dg), src, dst)
    assert err == codec.UDP_OK
    assert (h["src_port"], h["dst_port"], h["length"]) == (sport, dport, 8 + len(payload))
    assert h["checksum"] != 0
    u = UDP(dg)
    assert u.chksum == h["checksum"]
    ip = IP(src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)))
    assert bytes(ip / UDP(sport=sport, dport=dport) / payload)[20:] == dg


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40), st.booleans())
def test_random_bytes_never_crash_nor_read_past_n(data, verify):
    err, h = codec.udp_parse(guarded(data), SRC, DST, verify_checksum=verify)
    if len(data) < 8:
        assert err == codec.UDP_TRUNCATED
    elif not 8 <= struct.unpack("!H", data[4:6])[0] <= len(data):
        assert err == codec.UDP_BAD_LENGTH
    elif err == codec.UDP_OK:
        assert h["length"] <= len(data)
    else:
        assert verify and err == codec.UDP_BAD_CHECKSUM
