"""TCP wire format (fastloop/net/wire/tcp.pxd through codec): scapy fixtures, malformed forms,
checksums against scapy and DPDK, hypothesis round trips and random bytes on a guard page."""
import ipaddress
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import IP, TCP

from fastloop.net.wire import codec
from wire_guard import guarded

SRC, DST = "10.77.0.1", "10.77.0.2"
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128
NO_OPT = {"mss": 0, "wscale": -1, "sack_permitted": False, "has_timestamps": False,
          "ts_val": 0, "ts_ecr": 0, "sack": []}


def opts(**kw):
    return {**NO_OPT, **kw}


def scapy_segment(payload=b"", src=SRC, dst=DST, **tcp):
    """The TCP segment bytes (checksum filled) of IP/TCP/payload, as scapy builds it."""
    pkt = IP(bytes(IP(src=src, dst=dst) / TCP(**tcp) / payload))
    return bytes(pkt[TCP]), pkt[TCP]


def parse_ok(seg):
    err, h = codec.tcp_parse(guarded(seg))
    assert err == codec.TCP_OK, err
    return h


def expect_fields(h, t):
    """Our parse of a segment equals scapy's view of the same bytes."""
    assert (h["src_port"], h["dst_port"], h["seq"], h["ack"]) == (t.sport, t.dport, t.seq, t.ack)
    assert h["header_len"] == t.dataofs * 4
    assert h["flags"] == int(t.flags)
    assert (h["window"], h["urgent"]) == (t.window, t.urgptr)


# ---- Linux's layouts, parsed and emitted -------------------------------------------------

LINUX_SYN = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (2864000123, 0)),
             ("NOP", None), ("WScale", 7)]


def test_linux_syn_parse_and_emit():
    seg, t = scapy_segment(sport=43512, dport=80, seq=0xdeadbeef, flags="S", window=64240,
                           options=LINUX_SYN)
    assert seg[20:28] == bytes.fromhex("020405b4" "0402080a")
    h = parse_ok(seg)
    expect_fields(h, t)
    assert h["header_len"] == 40
    assert h["opt"] == opts(mss=1460, wscale=7, sack_permitted=True, has_timestamps=True,
                            ts_val=2864000123, ts_ecr=0)
    assert codec.tcp_emit(h, src=SRC, dst=DST) == seg


def test_linux_synack_without_timestamps():
    layout = [("MSS", 1400), ("NOP", None), ("NOP", None), ("SAckOK", b""),
              ("NOP", None), ("WScale", 10)]
    seg, t = scapy_segment(sport=80, dport=43512, seq=1, ack=0xdeadbef0, flags="SA",
                           window=65160, options=layout)
    h = parse_ok(seg)
    expect_fields(h, t)
    assert h["opt"] == opts(mss=1400, wscale=10, sack_permitted=True)
    assert codec.tcp_emit(h, src=SRC, dst=DST) == seg


def test_syn_timestamps_without_sack_permitted():
    layout = [("MSS", 536), ("NOP", None), ("NOP", None), ("Timestamp", (5, 0)),
              ("NOP", None), ("WScale", 0)]
    seg, _ = scapy_segment(sport=1, dport=2, flags="S", options=layout)
    h = parse_ok(seg)
    assert h["opt"] == opts(mss=536, wscale=0, has_timestamps=True, ts_val=5)
    assert codec.tcp_emit(h, src=SRC, dst=DST) == seg


@pytest.mark.parametrize("payload", [b"", b"x", b"hello", b"0123456789abcdef" * 91 + b"odd"])
def test_data_segment_with_timestamps(payload):
    layout = [("NOP", None), ("NOP", None), ("Timestamp", (0xfffffff0, 0x12345678))]
    seg, t = scapy_segment(payload, sport=5000, dport=6000, seq=0xfffffffe, ack=77,
                           flags="PA", window=502, options=layout)
    h = parse_ok(seg)
    expect_fields(h, t)
    assert h["header_len"] == 32
    assert seg[h["header_len"]:] == payload
    assert h["opt"] == opts(has_timestamps=True, ts_val=0xfffffff0, ts_ecr=0x12345678)
    assert codec.tcp_emit(h, payload, src=SRC, dst=DST) == seg


@pytest.mark.parametrize("nblocks", [1, 2, 3, 4])
def test_sack_blocks_without_timestamps(nblocks):
    blocks = [(1000 * i + 0xfffff000) & 0xffffffff for i in range(2 * nblocks)]
    layout = [("NOP", None), ("NOP", None), ("SAck", tuple(blocks))]
    seg, t = scapy_segment(b"", sport=9, dport=10, seq=3, ack=4, flags="A", options=layout)
    h = parse_ok(seg)
    expect_fields(h, t)
    assert h["header_len"] == 20 + 4 + 8 * nblocks
    assert h["opt"]["sack"] == list(zip(blocks[::2], blocks[1::2]))
    assert codec.tcp_emit(h, src=SRC, dst=DST) == seg


@pytest.mark.parametrize("nblocks", [1, 2, 3])
def test_sack_blocks_with_timestamps(nblocks):
    blocks = list(range(1, 2 * nblocks + 1))
    layout = [("NOP", None), ("NOP", None), ("Timestamp", (7, 8)),
              ("NOP", None), ("NOP", None), ("SAck", tuple(blocks))]
    seg, t = scapy_segment(b"abc", sport=9, dport=10, flags="A", options=layout)
    h = parse_ok(seg)
    expect_fields(h, t)
    assert h["opt"] == opts(has_timestamps=True, ts_val=7, ts_ecr=8,
                            sack=list(zip(blocks[::2], blocks[1::2])))
    assert codec.tcp_emit(h, b"abc", src=SRC, dst=DST) == seg


def test_options_exactly_40_bytes_aligned():
    """NOP NOP TS (12) + NOP NOP SACK x3 (28): the most a data segment with TS can carry."""
    layout = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2)),
              ("NOP", None), ("NOP", None), ("SAck", (1, 2, 3, 4, 5, 6))]
    seg, t = scapy_segment(sport=1, dport=2, flags="A", options=layout)
    assert t.dataofs == 15
    h = parse_ok(seg)
    assert h["header_len"] == 60
    assert h["opt"]["sack"] == [(1, 2), (3, 4), (5, 6)]
    assert codec.tcp_options_len(h["opt"]) == 40
    assert codec.tcp_emit(h, src=SRC, dst=DST) == seg


def test_options_exactly_40_bytes_unaligned():
    """Not a layout we emit, but a peer may: SACK x4 (34) + WS (3) + 3 NOPs, no padding."""
    layout = [("SAck", (1, 2, 3, 4, 5, 6, 7, 8)), ("WScale", 14), ("NOP", None),
              ("NOP", None), ("NOP", None)]
    seg, _ = scapy_segment(sport=1, dport=2, flags="A", options=layout)
    assert len(seg) == 60
    h = parse_ok(seg)
    assert h["opt"] == opts(wscale=14, sack=[(1, 2), (3, 4), (5, 6), (7, 8)])


def test_syn_with_sack_blocks_at_40_bytes():
    o = opts(mss=1460, sack_permitted=True, has_timestamps=True, ts_val=1, ts_ecr=2, wscale=7,
             sack=[(10, 20), (30, 40)])
    raw = codec.tcp_options_emit(o)
    assert len(raw) == 40
    layout = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)), ("NOP", None),
              ("WScale", 7), ("NOP", None), ("NOP", None), ("SAck", (10, 20, 30, 40))]
    assert raw == bytes(TCP(options=layout))[20:]


@pytest.mark.parametrize("o,fit", [
    (opts(sack=[(1, 2)] * 4), 4),                                            # 36 bytes
    (opts(has_timestamps=True, sack=[(1, 2)] * 4), 3),                       # 12 + 28
    (opts(mss=1, has_timestamps=True, sack=[(1, 2)] * 4), 2),                # 4 + 12 + 20
    (opts(mss=1, wscale=1, has_timestamps=True, sack=[(1, 2)] * 4), 2),      # 20 + 20
    (opts(mss=1, wscale=1, sack_permitted=True, sack=[(1, 2)] * 4), 3),      # 12 + 28
])
def test_sack_blocks_that_do_not_fit_are_dropped(o, fit):
    o["sack"] = [(i, i + 1) for i in range(len(o["sack"]))]
    raw = codec.tcp_options_emit(o)
    assert len(raw) <= 40 and len(raw) % 4 == 0
    assert len(raw) == codec.tcp_options_len(o)
    seg = codec.tcp_emit({"src_port": 1, "dst_port": 2, "opt": o})
    h = parse_ok(seg)
    assert h["opt"]["sack"] == o["sack"][:fit]


def test_emitted_layouts_are_linuxs():
    assert codec.tcp_options_emit(opts(mss=1460, sack_permitted=True, has_timestamps=True,
                                       ts_val=1, ts_ecr=0, wscale=7)).hex() == (
        "020405b4" "0402080a" "00000001" "00000000" "01030307")
    assert codec.tcp_options_emit(opts(mss=1460, sack_permitted=True, wscale=7)).hex() == (
        "020405b4" "01010402" "01030307")
    assert codec.tcp_options_emit(opts(has_timestamps=True, ts_val=2, ts_ecr=3)).hex() == (
        "0101080a" "00000002" "00000003")
    assert codec.tcp_options_emit(opts(sack=[(5, 6)])).hex() == (
        "0101050a" "00000005" "00000006")
    assert codec.tcp_options_emit(opts()) == b""


def test_wscale_clamped_to_14():
    for shift in (15, 100, 255):
        seg, _ = scapy_segment(sport=1, dport=2, flags="S", options=[("WScale", shift), ("EOL", None)])
        assert parse_ok(seg)["opt"]["wscale"] == 14
    assert codec.tcp_options_emit(opts(wscale=20)) == bytes.fromhex("0103030e")


def test_all_flags_and_urgent():
    seg, t = scapy_segment(b"!", sport=1, dport=2, flags="FSRPAUEC", urgptr=0xbeef, window=0)
    h = parse_ok(seg)
    expect_fields(h, t)
    assert h["flags"] == FIN | SYN | RST | PSH | ACK | URG | ECE | CWR
    assert codec.tcp_emit(h, b"!", src=SRC, dst=DST) == seg


def test_unknown_options_skipped_by_length():
    # kind 30 (MPTCP) length 5 with odd data, kind 253 (experimental) length 2, then MSS
    raw = bytes([30, 5, 1, 2, 3, 253, 2, 2, 4, 5, 0xb4, 1])
    seg = _segment(raw)
    assert parse_ok(seg)["opt"] == opts(mss=1460)


def test_eol_ends_the_list_and_what_follows_is_ignored():
    raw = bytes([2, 4, 1, 0, 0, 3, 3, 9])             # MSS 256, EOL, then a WS ignored
    h = parse_ok(_segment(raw))
    assert h["opt"] == opts(mss=256)


def test_last_duplicate_option_wins():
    raw = bytes([2, 4, 0, 1, 2, 4, 0, 2])
    assert parse_ok(_segment(raw))["opt"]["mss"] == 2


def test_payload_starts_at_header_len():
    seg, _ = scapy_segment(b"PAYLOAD", sport=1, dport=2, options=[("MSS", 1)])
    h = parse_ok(seg)
    assert seg[h["header_len"]:] == b"PAYLOAD"


# ---- malformed ---------------------------------------------------------------------------

def _segment(options=b"", data_offset=None, payload=b"", total=None):
    """A segment with raw option bytes (padded to 4 with EOL unless data_offset is given)."""
    if data_offset is None:
        options = options + b"\0" * (-len(options) % 4)
        data_offset = 5 + len(options) // 4
    hdr = struct.pack("!HHIIBBHHH", 1234, 80, 1, 2, data_offset << 4, ACK, 100, 0, 0)
    seg = hdr + options + payload
    return seg if total is None else seg[:total]


@pytest.mark.parametrize("n", range(20))
def test_truncated(n):
    seg, _ = scapy_segment(sport=1, dport=2)
    assert codec.tcp_parse(guarded(seg[:n])) == (codec.TCP_TRUNCATED, None)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4])
def test_data_offset_below_five(offset):
    assert codec.tcp_parse(guarded(_segment(b"", offset, b"x" * 40)))[0] == \
        codec.TCP_BAD_DATA_OFFSET


@pytest.mark.parametrize("offset,n", [(6, 20), (6, 23), (15, 59), (8, 31)])
def test_data_offset_past_the_segment(offset, n):
    seg = _segment(b"\x01" * 40, offset)[:n]
    assert len(seg) == n
    assert codec.tcp_parse(guarded(seg))[0] == codec.TCP_BAD_DATA_OFFSET


def test_data_offset_exactly_n_is_fine():
    seg = _segment(b"\x01" * 40, 15)[:60]
    h = parse_ok(seg)
    assert h["header_len"] == 60 and h["opt"] == NO_OPT


BAD_OPTIONS = {
    "length 0": bytes([30, 0, 0, 0]),
    "length 1": bytes([30, 1, 0, 0]),
    "MSS length 0": bytes([2, 0, 0, 0]),
    "length runs past the header": bytes([1, 30, 6, 1, 2, 3, 4, 5]),
    "kind with no length byte": bytes([1, 1, 1, 8]),
    "MSS length 3": bytes([2, 3, 5, 0]),
    "MSS length 5": bytes([2, 5, 5, 0xb4, 0, 0, 0, 0]),
    "WS length 2": bytes([3, 2, 1, 1]),
    "WS length 4": bytes([3, 4, 7, 0]),
    "SACK-perm length 3": bytes([4, 3, 0, 0]),
    "SACK-perm length 4": bytes([4, 4, 0, 0]),
    "TS length 9": bytes([8, 9]) + bytes(7) + b"\0\0\0",
    "TS length 11": bytes([8, 11]) + bytes(9) + b"\0",
    "TS length 12 (padded)": bytes([8, 12]) + bytes(10),
    "SACK length 2 (no block)": bytes([5, 2, 0, 0]),
    "SACK length 9": bytes([5, 9]) + bytes(7) + b"\0\0\0",
    "SACK length 11": bytes([5, 11]) + bytes(9) + b"\0",
    "SACK length 17": bytes([5, 17]) + bytes(15) + b"\0\0\0",
    "SACK 4 blocks, header ends 4 short": bytes([1, 1, 5, 34]) + bytes(28),
    "valid MSS then length 0": bytes([2, 4, 5, 0xb4, 1, 1, 9, 0]),
}


@pytest.mark.parametrize("raw", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_option(raw):
    assert codec.tcp_parse(guarded(_segment(raw)))[0] == codec.TCP_BAD_OPTION


def test_option_length_running_into_payload_is_bad():
    # the option claims 6 bytes; only 4 are header, the payload after it must not count
    seg = _segment(bytes([254, 6, 0, 0]), payload=b"\xff\xff\xff\xff")
    assert codec.tcp_parse(guarded(seg))[0] == codec.TCP_BAD_OPTION


# ---- checksums ---------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"a", b"ab", b"odd!!", bytes(range(256)) * 5 + b"\x01"])
@pytest.mark.parametrize("src,dst", [(SRC, DST), ("192.168.255.254", "1.2.3.4"),
                                     ("255.255.255.255", "0.0.0.0")])
def test_checksum_matches_scapy(payload, src, dst):
    seg, t = scapy_segment(payload, src=src, dst=dst, sport=65535, dport=1, seq=0xffffffff,
                           flags="PA", options=[("NOP", None), ("NOP", None),
                                                ("Timestamp", (9, 9))])
    zeroed = seg[:16] + b"\0\0" + seg[18:]
    assert codec.tcp_checksum(src, dst, zeroed) == t.chksum
    assert codec.tcp_checksum_ok(src, dst, seg)
    h = parse_ok(seg)
    assert codec.tcp_emit(h, payload, src=src, dst=dst) == seg


def test_checksum_detects_corruption_and_wrong_addresses():
    seg, _ = scapy_segment(b"some data", sport=1, dport=2)
    assert codec.tcp_checksum_ok(SRC, DST, seg)
    assert not codec.tcp_checksum_ok(SRC, "10.77.0.3", seg)
    for i in (0, 13, 16, 17, len(seg) - 1):
        bad = bytearray(seg)
        bad[i] ^= 0x10
        assert not codec.tcp_checksum_ok(SRC, DST, bytes(bad))


@pytest.mark.parametrize("src,dst,length", [(SRC, DST, 20), ("1.2.3.4", "5.6.7.8", 1461),
                                            ("255.255.255.255", "255.255.255.255", 65515),
                                            ("0.0.0.0", "0.0.0.0", 0)])
def test_pseudo_header_sum_is_dpdks(src, dst, length):
    ip = bytes(IP(src=src, dst=dst, proto=6, len=20 + length))[:20]
    expected = codec.ipv4_phdr_cksum_dpdk(ip)
    assert codec.tcp_pseudo_header_sum(src, dst, length) == expected
    # by hand: folded, not complemented ones' complement sum of the pseudo-header
    words = struct.unpack("!6H", ipaddress.IPv4Address(src).packed
                          + ipaddress.IPv4Address(dst).packed + struct.pack("!BBH", 0, 6, length))
    s = sum(words)
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    assert expected == s


def test_pseudo_header_sum_completes_to_the_checksum():
    """What an offloading NIC does: fill the phdr sum, sum the segment over it, complement."""
    seg, t = scapy_segment(b"offload me", sport=7, dport=8, flags="PA")
    pre = seg[:16] + codec.tcp_pseudo_header_sum(SRC, DST, len(seg)).to_bytes(2, "big") + seg[18:]
    s = sum(struct.unpack(f"!{len(pre) // 2}H", pre[: len(pre) // 2 * 2]))
    s += pre[-1] << 8 if len(pre) % 2 else 0
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    assert (~s & 0xffff) == t.chksum


# ---- properties --------------------------------------------------------------------------

u32 = st.integers(0, 0xffffffff)
u16 = st.integers(0, 0xffff)
blocks = st.lists(st.tuples(u32, u32), max_size=4)
options = st.fixed_dictionaries({
    "mss": u16, "wscale": st.integers(-1, 14), "sack_permitted": st.booleans(),
    "has_timestamps": st.booleans(), "ts_val": u32, "ts_ecr": u32, "sack": blocks})
headers = st.fixed_dictionaries({
    "src_port": u16, "dst_port": u16, "seq": u32, "ack": u32, "flags": st.integers(0, 255),
    "window": u16, "urgent": u16, "opt": options})


@settings(max_examples=400, deadline=None)
@given(headers, st.binary(max_size=64))
def test_emit_then_parse_round_trips(h, payload):
    seg = codec.tcp_emit(h, payload, src=SRC, dst=DST)
    assert codec.tcp_checksum_ok(SRC, DST, seg)
    got = parse_ok(seg)
    o = h["opt"]
    n = codec.tcp_options_len(o)
    assert n % 4 == 0 and n <= 40
    base = (4 * (o["mss"] != 0) + (12 if o["has_timestamps"] else 4 * o["sack_permitted"])
            + 4 * (o["wscale"] >= 0))
    fit = min(len(o["sack"]), (40 - base - 4) // 8)
    assert n == base + (4 + 8 * fit if fit else 0)
    want = {**h, "header_len": 20 + n, "opt": {**o, "sack": o["sack"][:fit]}}
    if not o["has_timestamps"]:
        want["opt"]["ts_val"] = want["opt"]["ts_ecr"] = 0
    assert got == want
    assert seg[got["header_len"]:] == payload


def ref_options(raw):
    """An independent reading of RFC 9293 §3.2 / 7323 / 2018, to compare tcp_parse with."""
    o = opts(sack=[])
    i = 0
    fixed = {2: 4, 3: 3, 4: 2, 8: 10}
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            return None
        ln = raw[i + 1]
        body = raw[i + 2:i + ln]
        if kind in fixed and ln != fixed[kind]:
            return None
        if kind == 5 and (ln < 10 or (ln - 2) % 8):
            return None
        if kind == 2:
            o["mss"] = struct.unpack("!H", body)[0]
        elif kind == 3:
            o["wscale"] = min(body[0], 14)
        elif kind == 4:
            o["sack_permitted"] = True
        elif kind == 8:
            o["has_timestamps"] = True
            o["ts_val"], o["ts_ecr"] = struct.unpack("!II", body)
        elif kind == 5:
            v = struct.unpack(f"!{(ln - 2) // 4}I", body)
            o["sack"] = list(zip(v[::2], v[1::2]))
        i += ln
    return o


def _tlv(kind, body):
    return bytes([kind, len(body) + 2]) + body


option_tlv = st.one_of(
    st.just(b"\x01"), st.just(b"\x00"),
    st.builds(_tlv, st.just(2), st.binary(min_size=2, max_size=2)),
    st.builds(_tlv, st.just(3), st.binary(min_size=1, max_size=1)),
    st.just(_tlv(4, b"")),
    st.builds(_tlv, st.just(8), st.binary(min_size=8, max_size=8)),
    st.builds(_tlv, st.just(5), st.integers(1, 4).flatmap(
        lambda k: st.binary(min_size=8 * k, max_size=8 * k))),
    st.builds(lambda k, b: bytes([k, len(b) + 2]) + b,
              st.sampled_from([2, 3, 4, 5, 8, 30, 254]), st.binary(max_size=36)),
    st.builds(lambda k, ln, b: bytes([k, ln]) + b,
              st.integers(0, 255), st.integers(0, 255), st.binary(max_size=8)))


@settings(max_examples=1500, deadline=None)
@given(st.lists(option_tlv, max_size=12), st.binary(max_size=8))
def test_option_walk_matches_reference(tlvs, payload):
    raw = b"".join(tlvs)[:40]
    raw += b"\0" * (-len(raw) % 4)
    seg = _segment(raw, payload=payload)
    err, h = codec.tcp_parse(guarded(seg))
    want = ref_options(raw)
    if want is None:
        assert err == codec.TCP_BAD_OPTION
    else:
        assert err == codec.TCP_OK and h["opt"] == want


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_never_crash_nor_read_past_n(data):
    err, h = codec.tcp_parse(guarded(data))   # data ends at an unmapped page
    if len(data) < 20:
        assert err == codec.TCP_TRUNCATED
    elif not 20 <= (data[12] >> 4) * 4 <= len(data):
        assert err == codec.TCP_BAD_DATA_OFFSET
    else:
        want = ref_options(data[20:(data[12] >> 4) * 4])
        assert (err, h and h["opt"]) == ((codec.TCP_BAD_OPTION, None) if want is None
                                         else (codec.TCP_OK, want))


def test_guard_page_is_real(tmp_path):
    """The guard the properties rely on faults on the first byte past the buffer."""
    import subprocess
    import sys
    code = ("import ctypes, wire_guard\n"
            "v = wire_guard.guarded(b'abc')\n"
            "assert bytes(v) == b'abc'\n"
            "ctypes.string_at(wire_guard._guard.end, 1)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=__file__.rsplit("/", 1)[0],
                       capture_output=True)
    assert r.returncode == -11, r
