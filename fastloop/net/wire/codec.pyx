# cython: language_level=3
"""Python-facing parse/emit of every wire type, for tests only.

The stack uses the `cdef inline` functions of fastloop/net/wire/*.pxd directly; this module
wraps them over bytes-like objects and dicts so byte fixtures (scapy) and property tests
(hypothesis) can drive the exact code the stack runs. Nothing in fastloop imports it.

Conventions: addresses are ints in host order (a dotted string is accepted too); parse
functions return a dict, or (error, dict or None) where the parser returns an error enum;
checksums are returned as the 16-bit value on the wire (big-endian), like scapy's `chksum`.
Parsers read exactly the buffer given (a bytes-like object, e.g. a slice of an mmap).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from fastloop.includes.dpdk cimport fl_ipv4_phdr_cksum
from fastloop.net.wire.bytes cimport load16, store16, load_raw16, store_raw16
from fastloop.net.wire cimport addr, checksum, ethernet, arp, ipv4, icmp, tcp, udp
import ipaddress

TCP_OK = tcp.TCP_OK
TCP_TRUNCATED = tcp.TCP_TRUNCATED
TCP_BAD_DATA_OFFSET = tcp.TCP_BAD_DATA_OFFSET
TCP_BAD_OPTION = tcp.TCP_BAD_OPTION
UDP_OK = udp.UDP_OK
UDP_TRUNCATED = udp.UDP_TRUNCATED
UDP_BAD_LENGTH = udp.UDP_BAD_LENGTH
UDP_BAD_CHECKSUM = udp.UDP_BAD_CHECKSUM
IPV4_OK = ipv4.IPV4_OK
IPV4_TRUNCATED = ipv4.IPV4_TRUNCATED
IPV4_BAD_VERSION = ipv4.IPV4_BAD_VERSION
IPV4_BAD_IHL = ipv4.IPV4_BAD_IHL
IPV4_BAD_TOTAL_LENGTH = ipv4.IPV4_BAD_TOTAL_LENGTH
IPV4_BAD_CHECKSUM = ipv4.IPV4_BAD_CHECKSUM
IPV4_BAD_OPTIONS = ipv4.IPV4_BAD_OPTIONS
ICMP_OK = icmp.ICMP_OK
ICMP_TRUNCATED = icmp.ICMP_TRUNCATED
ICMP_BAD_CHECKSUM = icmp.ICMP_BAD_CHECKSUM

cdef uint8_t _empty[1]


cdef const uint8_t *_ptr(const uint8_t[::1] b):
    """The first byte; never dereferenced for an empty buffer."""
    return &b[0] if b.shape[0] else _empty


cdef uint32_t _ip(a) except? 0:
    return int(ipaddress.IPv4Address(a)) if isinstance(a, str) else a


cdef int _wire16(uint16_t raw):
    """A checksum stored as the stack stores it (store_raw16), read back as on the wire."""
    cdef uint8_t b[2]
    store_raw16(b, raw)
    return load16(b)


cdef bytes _mac(const uint8_t *m):
    return PyBytes_FromStringAndSize(<const char *>m, 6)


cdef void _set_mac(uint8_t *dst, m) except *:
    cdef bytes b = bytes(m)
    if len(b) != 6:
        raise ValueError("a MAC address is 6 bytes")
    memcpy(dst, PyBytes_AS_STRING(b), 6)


cdef uint16_t _raw16(uint16_t wire):
    """The machine-order value of a 16-bit field that reads `wire` in network order."""
    cdef uint8_t b[2]
    store16(b, wire)
    return load_raw16(b)


# ---- Internet checksum -------------------------------------------------------------------

def inet_checksum(const uint8_t[::1] data):
    return _wire16(checksum.inet_checksum(_ptr(data), data.shape[0]))


def inet_checksum_ok(const uint8_t[::1] data):
    return checksum.inet_checksum_ok(_ptr(data), data.shape[0])


def ipv4_str(uint32_t a):
    return addr.ipv4_str(a)


def ipv4_from_str(str s):
    """The address, or None where the fast parser declines (ipaddress decides those)."""
    cdef uint32_t a
    return a if addr.ipv4_from_str(s, &a) else None


def checksum_adjust16(uint16_t cksum, uint16_t old, uint16_t new):
    """RFC 1624 update, all three as read from the wire (the stack passes machine order)."""
    return _wire16(checksum.checksum_adjust16(_raw16(cksum), _raw16(old), _raw16(new)))


# ---- Ethernet ----------------------------------------------------------------------------

def eth_parse(const uint8_t[::1] data):
    cdef ethernet.EthHeader h
    if not ethernet.eth_parse(_ptr(data), data.shape[0], &h):
        return None
    return {"dst": _mac(h.dst), "src": _mac(h.src), "ethertype": h.ethertype}


def eth_emit(d):
    cdef uint8_t buf[14]
    cdef uint8_t dst[6]
    cdef uint8_t src[6]
    _set_mac(dst, d["dst"])
    _set_mac(src, d["src"])
    ethernet.eth_emit(buf, dst, src, d["ethertype"])
    return PyBytes_FromStringAndSize(<char *>buf, 14)


def mac_kind(m):
    """(multicast, broadcast, zero) of a MAC address."""
    cdef uint8_t a[6]
    _set_mac(a, m)
    return (ethernet.mac_is_multicast(a), ethernet.mac_is_broadcast(a), ethernet.mac_is_zero(a))


# ---- ARP ---------------------------------------------------------------------------------

def arp_parse(const uint8_t[::1] data):
    cdef arp.ArpPacket a
    if not arp.arp_parse(_ptr(data), data.shape[0], &a):
        return None
    return {"op": a.op, "sha": _mac(a.sha), "spa": a.spa, "tha": _mac(a.tha), "tpa": a.tpa}


def arp_emit(d):
    cdef arp.ArpPacket a
    cdef uint8_t buf[28]
    a.op = d["op"]
    _set_mac(a.sha, d["sha"])
    a.spa = _ip(d["spa"])
    _set_mac(a.tha, d["tha"])
    a.tpa = _ip(d["tpa"])
    arp.arp_emit(buf, &a)
    return PyBytes_FromStringAndSize(<char *>buf, 28)


# ---- IPv4 --------------------------------------------------------------------------------

def ipv4_parse(const uint8_t[::1] data, bint verify_checksum=True):
    cdef ipv4.Ipv4Header h
    cdef int err = ipv4.ipv4_parse(_ptr(data), data.shape[0], &h, verify_checksum)
    if err != ipv4.IPV4_OK:
        return err, None
    return err, {"header_len": h.header_len, "tos": h.tos, "total_len": h.total_len,
                 "ident": h.ident, "frag": h.frag, "ttl": h.ttl, "protocol": h.protocol,
                 "src": h.src, "dst": h.dst, "is_fragment": ipv4.ipv4_is_fragment(&h)}


def ipv4_emit(d, bint fill_checksum=True):
    cdef ipv4.Ipv4Header h
    cdef uint8_t buf[20]
    h.tos = d.get("tos", 0)
    h.total_len = d["total_len"]
    h.ident = d.get("ident", 0)
    h.frag = d.get("frag", 0)
    h.ttl = d.get("ttl", 64)
    h.protocol = d["protocol"]
    h.src = _ip(d["src"])
    h.dst = _ip(d["dst"])
    ipv4.ipv4_emit(buf, &h, fill_checksum)
    return PyBytes_FromStringAndSize(<char *>buf, 20)


def ipv4_phdr_cksum_dpdk(const uint8_t[::1] ip_header):
    """DPDK's rte_ipv4_phdr_cksum (through the shim) of an IPv4 header, as on the wire."""
    if ip_header.shape[0] < 20:
        raise ValueError("an IPv4 header is at least 20 bytes")
    return _wire16(fl_ipv4_phdr_cksum(&ip_header[0], 0))


# ---- ICMP --------------------------------------------------------------------------------

def icmp_parse(const uint8_t[::1] data):
    cdef icmp.IcmpHeader h
    cdef int err = icmp.icmp_parse(_ptr(data), data.shape[0], &h)
    if err != icmp.ICMP_OK:
        return err, None
    return err, {"type": h.type, "code": h.code, "ident": h.ident, "seq": h.seq}


def icmp_emit(d, bytes body=b""):
    cdef icmp.IcmpHeader h
    cdef bytes out = bytes(8) + body
    h.type = d["type"]
    h.code = d.get("code", 0)
    h.ident = d.get("ident", 0)
    h.seq = d.get("seq", 0)
    icmp.icmp_emit(<uint8_t *>PyBytes_AS_STRING(out), len(out), &h)
    return out


# ---- TCP ---------------------------------------------------------------------------------

cdef dict _tcp_options_dict(const tcp.TcpOptions *o):
    return {"mss": o.mss, "wscale": o.wscale, "sack_permitted": bool(o.sack_permitted),
            "has_timestamps": bool(o.has_timestamps), "ts_val": o.ts_val, "ts_ecr": o.ts_ecr,
            "sack": [(o.sack[i].left, o.sack[i].right) for i in range(o.sack_count)]}


cdef void _tcp_options_set(tcp.TcpOptions *o, d) except *:
    tcp.tcp_options_clear(o)
    o.mss = d.get("mss", 0)
    o.wscale = d.get("wscale", -1)
    o.sack_permitted = d.get("sack_permitted", False)
    o.has_timestamps = d.get("has_timestamps", False)
    o.ts_val = d.get("ts_val", 0)
    o.ts_ecr = d.get("ts_ecr", 0)
    sack = d.get("sack", ())
    if len(sack) > tcp.TCP_MAX_SACK:
        raise ValueError("TcpOptions holds at most 4 SACK blocks")
    o.sack_count = len(sack)
    for i, (left, right) in enumerate(sack):
        o.sack[i].left = left
        o.sack[i].right = right


def tcp_parse(const uint8_t[::1] data):
    cdef tcp.TcpHeader h
    cdef int err = tcp.tcp_parse(_ptr(data), data.shape[0], &h)
    if err != tcp.TCP_OK:
        return err, None
    return err, {"src_port": h.src_port, "dst_port": h.dst_port, "seq": h.seq, "ack": h.ack,
                 "header_len": h.header_len, "flags": h.flags, "window": h.window,
                 "urgent": h.urgent, "opt": _tcp_options_dict(&h.opt)}


def tcp_options_len(d):
    cdef tcp.TcpOptions o
    _tcp_options_set(&o, d)
    return tcp.tcp_options_len(&o)


def tcp_options_emit(d):
    cdef tcp.TcpOptions o
    cdef uint8_t buf[tcp.TCP_MAX_OPT_LEN]
    _tcp_options_set(&o, d)
    cdef size_t n = tcp.tcp_options_emit(buf, &o)
    assert n == tcp.tcp_options_len(&o)
    return PyBytes_FromStringAndSize(<char *>buf, n)


def tcp_emit(d, bytes payload=b"", src=None, dst=None):
    """Header (+ payload); with src and dst, the checksum is filled as the stack fills it."""
    cdef tcp.TcpHeader h
    cdef uint8_t buf[tcp.TCP_MAX_HDR_LEN]
    h.src_port = d["src_port"]
    h.dst_port = d["dst_port"]
    h.seq = d.get("seq", 0)
    h.ack = d.get("ack", 0)
    h.header_len = 0
    h.flags = d.get("flags", 0)
    h.window = d.get("window", 0)
    h.urgent = d.get("urgent", 0)
    _tcp_options_set(&h.opt, d.get("opt", {}))
    cdef size_t hl = tcp.tcp_emit(buf, &h)
    cdef bytes out = PyBytes_FromStringAndSize(<char *>buf, hl) + payload
    cdef uint8_t *seg = <uint8_t *>PyBytes_AS_STRING(out)
    if src is not None:
        store_raw16(seg + tcp.TCP_CHECKSUM_OFFSET,
                    tcp.tcp_checksum(_ip(src), _ip(dst), seg, len(out)))
    return out


def tcp_checksum(src, dst, const uint8_t[::1] seg):
    """Over seg as given: its checksum field should be zero."""
    return _wire16(tcp.tcp_checksum(_ip(src), _ip(dst), _ptr(seg), seg.shape[0]))


def tcp_checksum_ok(src, dst, const uint8_t[::1] seg):
    return tcp.tcp_checksum_ok(_ip(src), _ip(dst), _ptr(seg), seg.shape[0])


def tcp_pseudo_header_sum(src, dst, uint16_t length):
    return _wire16(tcp.tcp_pseudo_header_sum(_ip(src), _ip(dst), length))


# ---- UDP ---------------------------------------------------------------------------------

def udp_parse(const uint8_t[::1] data, src=0, dst=0, bint verify_checksum=True):
    cdef udp.UdpHeader h
    cdef int err = udp.udp_parse(_ptr(data), data.shape[0], &h, _ip(src), _ip(dst),
                                 verify_checksum)
    if err != udp.UDP_OK:
        return err, None
    return err, {"src_port": h.src_port, "dst_port": h.dst_port, "length": h.length,
                 "checksum": h.checksum}


def udp_emit(d, bytes payload=b"", src=None, dst=None):
    """Header + payload, length from d or 8 + len(payload); with src and dst, the checksum."""
    cdef udp.UdpHeader h
    h.src_port = d["src_port"]
    h.dst_port = d["dst_port"]
    h.length = d.get("length", udp.UDP_HDR_LEN + len(payload))
    h.checksum = 0
    cdef bytes out = bytes(udp.UDP_HDR_LEN) + payload
    cdef uint8_t *dg = <uint8_t *>PyBytes_AS_STRING(out)
    udp.udp_emit(dg, &h)
    if src is not None:
        store_raw16(dg + udp.UDP_CHECKSUM_OFFSET,
                    udp.udp_checksum(_ip(src), _ip(dst), dg, len(out)))
    return out


def udp_checksum(src, dst, const uint8_t[::1] dgram):
    return _wire16(udp.udp_checksum(_ip(src), _ip(dst), _ptr(dgram), dgram.shape[0]))


def udp_pseudo_header_sum(src, dst, uint16_t length):
    return _wire16(udp.udp_pseudo_header_sum(_ip(src), _ip(dst), length))
