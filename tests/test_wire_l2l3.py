"""Ethernet, ARP, IPv4 and ICMP wire formats (fastloop/net/wire/*.pxd through codec), against
scapy fixtures; every malformed form; random bytes on a guard page."""
import ipaddress
import random
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import IP, ICMP, IPOption_RR, IPOption_NOP, IPOption_EOL
from scapy.layers.l2 import ARP, Ether

from fastloop.net.wire import codec
from wire_guard import guarded

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("5254001234ff")


def ip(a):
    return int(ipaddress.IPv4Address(a))


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


# ---- Ethernet ----------------------------------------------------------------------------

@pytest.mark.parametrize("ethertype", [0x0800, 0x0806, 0x86dd, 0x8100, 0x0000, 0xffff])
def test_ethernet_parse_and_emit(ethertype):
    frame = bytes(Ether(dst=mac_str(MAC_B), src=mac_str(MAC_A), type=ethertype) / b"xyz")
    h = codec.eth_parse(guarded(frame))
    assert h == {"dst": MAC_B, "src": MAC_A, "ethertype": ethertype}
    assert codec.eth_emit(h) == frame[:14]


@pytest.mark.parametrize("n", range(14))
def test_ethernet_truncated(n):
    assert codec.eth_parse(guarded(bytes(Ether())[:n])) is None


def test_ethernet_header_only():
    assert codec.eth_parse(guarded(bytes(14))) == {"dst": bytes(6), "src": bytes(6),
                                                   "ethertype": 0}


@pytest.mark.parametrize("mac,kind", [
    ("ff:ff:ff:ff:ff:ff", (True, True, False)), ("01:00:5e:00:00:01", (True, False, False)),
    ("33:33:00:00:00:01", (True, False, False)), ("00:00:00:00:00:00", (False, False, True)),
    ("02:00:00:00:00:01", (False, False, False)), ("ff:ff:ff:ff:ff:fe", (True, False, False))])
def test_mac_predicates(mac, kind):
    assert codec.mac_kind(bytes.fromhex(mac.replace(":", ""))) == kind


# ---- ARP ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [1, 2])
def test_arp_parse_and_emit(op):
    pkt = bytes(ARP(op=op, hwsrc=mac_str(MAC_A), psrc="10.77.0.1", hwdst=mac_str(MAC_B),
                    pdst="10.77.0.254"))
    a = codec.arp_parse(guarded(pkt))
    assert a == {"op": op, "sha": MAC_A, "spa": ip("10.77.0.1"), "tha": MAC_B,
                 "tpa": ip("10.77.0.254")}
    assert codec.arp_emit(a) == pkt


def test_arp_in_a_padded_frame():
    frame = bytes(Ether() / ARP(op=1, psrc="1.2.3.4", pdst="5.6.7.8"))
    frame += bytes(60 - len(frame))
    a = codec.arp_parse(guarded(frame[14:]))
    assert a["spa"] == ip("1.2.3.4") and a["tpa"] == ip("5.6.7.8")


@pytest.mark.parametrize("offset,value", [(0, b"\x00\x06"), (2, b"\x86\xdd"), (4, b"\x08"),
                                          (5, b"\x10"), (6, b"\x00\x00"), (6, b"\x00\x03"),
                                          (6, b"\x01\x01")])
def test_arp_rejects(offset, value):
    pkt = bytearray(bytes(ARP(op=1, psrc="1.2.3.4", pdst="5.6.7.8")))
    assert codec.arp_parse(guarded(bytes(pkt))) is not None
    pkt[offset:offset + len(value)] = value
    assert codec.arp_parse(guarded(bytes(pkt))) is None


@pytest.mark.parametrize("n", range(28))
def test_arp_truncated(n):
    assert codec.arp_parse(guarded(bytes(ARP(op=1))[:n])) is None


# ---- IPv4 --------------------------------------------------------------------------------

def test_ipv4_parse_and_emit():
    pkt = bytes(IP(src="10.77.0.1", dst="10.77.0.2", ttl=63, id=0xbeef, flags="DF", tos=0xb8,
                   proto=6) / (b"p" * 21))
    err, h = codec.ipv4_parse(guarded(pkt))
    assert err == codec.IPV4_OK
    assert h == {"header_len": 20, "tos": 0xb8, "total_len": 41, "ident": 0xbeef,
                 "frag": 0x4000, "ttl": 63, "protocol": 6, "src": ip("10.77.0.1"),
                 "dst": ip("10.77.0.2"), "is_fragment": False}
    assert codec.ipv4_emit(h) == pkt[:20]
    unsummed = codec.ipv4_emit(h, fill_checksum=False)
    assert unsummed[10:12] == b"\0\0" and unsummed[:10] == pkt[:10]
    assert codec.ipv4_parse(guarded(unsummed + pkt[20:]))[0] == codec.IPV4_BAD_CHECKSUM
    assert codec.ipv4_parse(guarded(unsummed + pkt[20:]), verify_checksum=False)[0] == \
        codec.IPV4_OK


@pytest.mark.parametrize("flags,frag,is_frag", [("MF", 0, True), (0, 185, True),
                                                ("DF", 0, False), (0, 0, False)])
def test_ipv4_fragments(flags, frag, is_frag):
    pkt = bytes(IP(src="1.1.1.1", dst="2.2.2.2", flags=flags, frag=frag) / b"data")
    err, h = codec.ipv4_parse(guarded(pkt))
    assert err == codec.IPV4_OK and h["is_fragment"] is is_frag


@pytest.mark.parametrize("options", [
    [IPOption_RR(routers=["1.1.1.1", "2.2.2.2"])],
    [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()],
    [IPOption_RR(routers=["9.9.9.9"] * 9)]])                 # 39 bytes + EOL: IHL 15
def test_ipv4_options(options):
    pkt = bytes(IP(src="1.1.1.1", dst="2.2.2.2", options=options) / b"x")
    err, h = codec.ipv4_parse(guarded(pkt))
    assert err == codec.IPV4_OK
    assert h["header_len"] == (pkt[0] & 15) * 4 > 20


def _ip_with(header_mod=None, payload=b"abcd", ihl_options=b""):
    hdr = bytearray(bytes(IP(src="1.2.3.4", dst="5.6.7.8", proto=17) / payload)[:20])
    if ihl_options:
        hdr[0] = 0x40 | (5 + len(ihl_options) // 4)
        hdr[2:4] = struct.pack("!H", 20 + len(ihl_options) + len(payload))
    if header_mod:
        header_mod(hdr)
    hdr[10:12] = b"\0\0"
    whole = bytes(hdr) + ihl_options
    s = sum(struct.unpack(f"!{len(whole) // 2}H", whole))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return whole[:10] + struct.pack("!H", ~s & 0xffff) + whole[12:] + payload


def test_ipv4_fixture_builder_is_valid():
    assert codec.ipv4_parse(guarded(_ip_with()))[0] == codec.IPV4_OK
    assert codec.ipv4_parse(guarded(_ip_with(ihl_options=b"\x01\x01\x01\x00")))[0] == \
        codec.IPV4_OK


def _set(i, v):
    def mod(h):
        h[i] = v
    return mod


def _set16(i, v):
    def mod(h):
        h[i:i + 2] = struct.pack("!H", v)
    return mod


@pytest.mark.parametrize("pkt,err", [
    (b"", codec.IPV4_TRUNCATED),
    (bytes(IP())[:19], codec.IPV4_TRUNCATED),
    (_ip_with(_set(0, 0x65)), codec.IPV4_BAD_VERSION),
    (_ip_with(_set(0, 0x44)), codec.IPV4_BAD_IHL),
    (_ip_with(_set(0, 0x40)), codec.IPV4_BAD_IHL),
    (_ip_with(_set(0, 0x47)), codec.IPV4_BAD_IHL),               # 28 > 24 bytes
    (_ip_with(_set16(2, 19)), codec.IPV4_BAD_TOTAL_LENGTH),
    (_ip_with(_set16(2, 25)), codec.IPV4_BAD_TOTAL_LENGTH),
    (_ip_with(_set16(2, 0xffff)), codec.IPV4_BAD_TOTAL_LENGTH),
    (_ip_with(ihl_options=b"\x07\x00\x00\x00"), codec.IPV4_BAD_OPTIONS),     # length 0
    (_ip_with(ihl_options=b"\x07\x01\x00\x00"), codec.IPV4_BAD_OPTIONS),     # length 1
    (_ip_with(ihl_options=b"\x01\x01\x07\x03"), codec.IPV4_BAD_OPTIONS),     # past the header
    (_ip_with(ihl_options=b"\x01\x01\x01\x07"), codec.IPV4_BAD_OPTIONS),     # no length byte
])
def test_ipv4_malformed(pkt, err):
    assert codec.ipv4_parse(guarded(pkt))[0] == err


def test_ipv4_bad_checksum():
    pkt = bytearray(_ip_with())
    pkt[8] ^= 1
    assert codec.ipv4_parse(guarded(bytes(pkt)))[0] == codec.IPV4_BAD_CHECKSUM


def test_ipv4_total_length_shorter_than_buffer_is_fine():
    pkt = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / b"abc") + bytes(17)   # Ethernet padding
    err, h = codec.ipv4_parse(guarded(pkt))
    assert err == codec.IPV4_OK and h["total_len"] == 23


# ---- ICMP --------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"", b"a", b"abcdefghijklmnopqrstuvwabcdefghi", bytes(1473)])
def test_icmp_echo_parse_and_emit(body):
    msg = bytes(ICMP(type=8, id=0x1234, seq=7) / body)
    err, h = codec.icmp_parse(guarded(msg))
    assert err == codec.ICMP_OK
    assert h == {"type": 8, "code": 0, "ident": 0x1234, "seq": 7}
    assert codec.icmp_emit(h, body) == msg
    reply = codec.icmp_emit({**h, "type": 0}, body)
    assert reply == bytes(ICMP(type=0, id=0x1234, seq=7) / body)


def test_icmp_unreachable_frag_needed():
    quote = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / b"12345678")
    msg = bytes(ICMP(type=3, code=4, nexthopmtu=1400) / quote)
    err, h = codec.icmp_parse(guarded(msg))
    assert err == codec.ICMP_OK
    assert (h["type"], h["code"], h["seq"]) == (3, 4, 1400)
    assert codec.icmp_emit(h, quote) == msg


@pytest.mark.parametrize("n", range(8))
def test_icmp_truncated(n):
    assert codec.icmp_parse(guarded(bytes(ICMP())[:n]))[0] == codec.ICMP_TRUNCATED


def test_icmp_bad_checksum():
    msg = bytes(ICMP(type=8, id=1, seq=1) / b"odd")
    for i in range(len(msg)):
        bad = bytearray(msg)
        bad[i] ^= 0x80
        assert codec.icmp_parse(guarded(bytes(bad)))[0] == codec.ICMP_BAD_CHECKSUM, i


# ---- IPv4 addresses as text ------------------------------------------------------------

@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_ipv4_text_both_ways_as_ipaddress(a):
    text = str(ipaddress.IPv4Address(a))
    assert codec.ipv4_str(a) == text
    assert codec.ipv4_from_str(text) == a


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789.x -", max_size=17))
def test_ipv4_parser_takes_only_what_ipaddress_takes(s):
    """Anything it takes, ipaddress takes as the same address; what it declines goes to
    ipaddress, so declining a valid form costs time, never correctness."""
    a = codec.ipv4_from_str(s)
    if a is not None:
        assert int(ipaddress.IPv4Address(s)) == a


@pytest.mark.parametrize("s", ["01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3",
                               " 1.2.3.4", "1.2.3.4 ", "", "١.2.3.4"])
def test_ipv4_parser_declines_non_canonical_forms(s):
    assert codec.ipv4_from_str(s) is None


# ---- the Internet checksum (RFC 1071, RFC 1624) -----------------------------------------

def _sum16(data):
    """Ones' complement sum of big-endian words, odd byte padded with zero (RFC 1071)."""
    data = bytes(data) + b"\0" * (len(data) % 2)
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_inet_checksum_is_rfc1071(data):
    c = codec.inet_checksum(guarded(data))
    assert c == ~_sum16(data) & 0xffff
    assert codec.inet_checksum_ok(guarded(data)) == (_sum16(data) == 0xffff)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=4096) | st.integers(0, 4096).map(lambda n: b"\xff" * n))
def test_inet_checksum_is_rfc1071_up_to_a_page(data):
    """The 32-byte steps of the summing loop, at every start alignment (the buffer ends at an
    unmapped page, so a read past the end faults), and all-ones data (every carry)."""
    assert codec.inet_checksum(guarded(data)) == ~_sum16(data) & 0xffff


@settings(max_examples=30, deadline=None)
@given(st.integers(4097, 65535), st.integers(0, 2**32 - 1))
def test_inet_checksum_is_rfc1071_for_jumbo_and_largest_datagrams(n, seed):
    data = random.Random(seed).randbytes(n)
    assert codec.inet_checksum(data) == ~_sum16(data) & 0xffff
    assert codec.inet_checksum(b"\xff" * n) == ~_sum16(b"\xff" * n) & 0xffff


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=2, max_size=100).map(lambda b: b[:len(b) // 2 * 2]),
       st.data())
def test_checksum_adjust16_equals_recomputing(body, data):
    msg = b"\0\0" + body                       # checksum field first, then the words
    msg = struct.pack("!H", codec.inet_checksum(msg)) + body
    assert codec.inet_checksum_ok(msg)
    i = data.draw(st.integers(1, len(msg) // 2 - 1)) * 2 if len(msg) > 2 else None
    if i is None:
        return
    new = data.draw(st.integers(0, 0xffff))
    old = struct.unpack("!H", msg[i:i + 2])[0]
    adjusted = codec.checksum_adjust16(struct.unpack("!H", msg[:2])[0], old, new)
    changed = struct.pack("!H", adjusted) + msg[2:i] + struct.pack("!H", new) + msg[i + 2:]
    assert codec.inet_checksum_ok(changed)


@pytest.mark.parametrize("ident,seq,body", [(5, 6, b"ping"), (0, 0, b""), (0, 0, bytes(56)),
                                            (0xffff, 0xffff, b"\xff")])
def test_echo_reply_adjust_as_iface_does_it(ident, seq, body):
    """iface turns a request into a reply by adjusting the type word 0x0800 -> 0x0000. With
    all-zero id, seq and data, RFC 1624 eqn 3 alone gave 0x0000, which no receiver accepts."""
    req = bytes(ICMP(type=8, code=0, id=ident, seq=seq) / body)
    c = struct.unpack("!H", req[2:4])[0]
    reply = bytes([0]) + req[1:2] + struct.pack("!H", codec.checksum_adjust16(c, 0x0800, 0)) + \
        req[4:]
    assert codec.icmp_parse(guarded(reply))[0] == codec.ICMP_OK
    assert reply == bytes(ICMP(type=0, code=0, id=ident, seq=seq) / body)


# ---- properties --------------------------------------------------------------------------

u32 = st.integers(0, 0xffffffff)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"tos": st.integers(0, 255), "total_len": st.integers(20, 1500),
                              "ident": st.integers(0, 0xffff), "frag": st.integers(0, 0xffff),
                              "ttl": st.integers(0, 255), "protocol": st.integers(0, 255),
                              "src": u32, "dst": u32}))
def test_ipv4_emit_then_parse_round_trips(h):
    pkt = codec.ipv4_emit(h) + bytes(h["total_len"] - 20)
    err, got = codec.ipv4_parse(guarded(pkt))
    assert err == codec.IPV4_OK
    assert got == {**h, "header_len": 20, "is_fragment": bool(h["frag"] & 0x3fff)}
    assert IP(pkt).chksum == struct.unpack("!H", pkt[10:12])[0]
    assert bytes(IP(pkt)) == pkt                # scapy rebuilds it byte for byte


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=72))
def test_random_bytes_never_crash_nor_read_past_n(data):
    v = guarded(data)
    e = codec.eth_parse(v)
    assert (e is None) == (len(data) < 14)
    a = codec.arp_parse(v)
    assert a is None or len(data) >= 28
    err, h = codec.ipv4_parse(v)
    assert err != codec.IPV4_OK or h["header_len"] <= h["total_len"] <= len(data)
    err, _ = codec.ipv4_parse(v, verify_checksum=False)
    err, h = codec.icmp_parse(v)
    if len(data) < 8:
        assert err == codec.ICMP_TRUNCATED
    else:
        assert err == (codec.ICMP_OK if _sum16(data) == 0xffff else codec.ICMP_BAD_CHECKSUM)
    for fn in (codec.tcp_parse, lambda b: codec.udp_parse(b, 1, 2)):
        fn(v)
