"""Helpers for UDP tests: the raw end of a ring pair facing a Stack, frames to it, sink targets,
and an RFC 1071 checksum written here (never the stack's own code)."""
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.testing import recv_all, send_frames
from fastloop.net.udp.pysink import CallbackUdpSink
from fastloop.stack import Stack
from frames import csum, ip4

US_MAC, US = "02:00:00:00:aa:01", "10.9.8.1"
PEER_MAC, PEER = "02:00:00:00:bb:02", "10.9.8.2"
NEIGH_MAC, NEIGH = "02:00:00:00:dd:04", "10.9.8.40"
SUBNET_BCAST, BCAST = "10.9.8.255", "255.255.255.255"
BCAST_MAC = "ff:ff:ff:ff:ff:ff"
DF, TTL = 0x4000, 64


def udp_sum_ok(src, dst, dgram: bytes) -> bool:
    return csum(ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, len(dgram)) + dgram) == 0


class Target:
    """What a CallbackUdpSink reports, kept in order."""

    def __init__(self, on_datagram=None):
        self.got, self.errs, self.errors = [], [], []
        self.on_datagram = on_datagram

    def datagram(self, ep, data, addr):
        self.got.append((data, addr))
        if self.on_datagram:
            self.on_datagram(ep, data, addr)

    def error(self, ep, exc, addr):
        self.errs.append((exc, addr))


class UdpRawEnd:
    """The stack on ring side a (wrapped by `wrap`), side b as bytes; the peer is known."""

    def __init__(self, wrap=None, **config):
        self.a, self.b = ring_pair()
        dev = wrap(self.a) if wrap else self.a
        self.stack = Stack(StackConfig(address=f"{US}/24", tap_peer=None, mac=US_MAC, **config),
                           device=dev)
        recv_all(self.b)                                   # the gratuitous ARP
        out = self.exchange(Ether(dst=BCAST_MAC, src=PEER_MAC) / ARP(
            op=1, hwsrc=PEER_MAC, psrc=PEER, hwdst="00:00:00:00:00:00", pdst=US))
        assert len(out) == 1 and self.stack.iface.arp_entries()[PEER][0] == PEER_MAC
        self.udp = self.stack.udp

    def exchange(self, *frames, polls=2):
        if frames:
            assert send_frames(self.b, [bytes(f) for f in frames]) == len(frames)
        for _ in range(polls):
            self.stack.poll()
        return recv_all(self.b)

    def bind(self, port, host=None, target=None):
        target = target or Target()
        return self.udp.bind(CallbackUdpSink(target), host=host, port=port), target

    def counters(self):
        """The non-zero UDP counters (compare with nonzero(expected))."""
        return {k: v for k, v in self.stack.counters()["udp"].items() if v and k != "endpoints"}

    def drops(self):
        return {k: v for k, v in self.stack.counters()["drops"].items() if v}

    def close(self):
        self.stack.close()
        self.b.close()


def nonzero(d):
    return {k: v for k, v in d.items() if v}


def to_us(payload=b"hello", sport=4000, dport=7777, dst=US, mac=US_MAC, **udp):
    return Ether(dst=mac, src=PEER_MAC) / IP(src=PEER, dst=dst, id=0x4242) / UDP(
        sport=sport, dport=dport, **udp) / Raw(payload)


def with_udp_checksum(frame, value):
    """The frame's bytes with the UDP checksum field set to value (IP header left valid)."""
    f = bytearray(bytes(frame))
    f[40:42] = struct.pack("!H", value)
    return bytes(f)
