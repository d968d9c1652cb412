"""UDP between two of our stacks in one process over a real DPDK net_ring pair: both ways,
with the checksum offload path (a NIC played by OffloadingNic, completing checksums from the
pseudo-header sum the stack leaves) and with software checksums forced."""
import hashlib

import pytest

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.offload_testing import OffloadingNic
from fastloop.net.udp.pysink import CallbackUdpSink
from fastloop.stack import Stack
from udp_util import Target

A, B = "10.9.10.1", "10.9.10.2"


def two_stacks(offload, faults=None):
    a, b = ring_pair()
    s1 = Stack(StackConfig(address=f"{A}/24", tap_peer=None, checksum_offload=offload,
                           faults=faults), device=OffloadingNic(a))
    s2 = Stack(StackConfig(address=f"{B}/24", tap_peer=None, checksum_offload=offload,
                           faults=faults), device=OffloadingNic(b))
    return s1, s2


def pump(stacks, until, steps=2000):
    for _ in range(steps):
        for s in stacks:
            s.poll()
        if until():
            return
    raise AssertionError("the stacks did not get there")


def payloads(n, seed):
    """Sizes from empty to the most one 1500-byte frame carries."""
    out = []
    for i in range(n):
        size = (i * 97 + seed * 31) % 1473 if i else 0
        out.append(hashlib.sha256(b"%d-%d" % (seed, i)).digest() * (size // 32 + 1))
        out[-1] = out[-1][:size]
    out[-1] = b"\xee" * 1472
    return out


@pytest.mark.parametrize("offload", [True, False], ids=["cksum-offload", "cksum-software"])
def test_datagrams_both_ways(eal, offload):
    s1, s2 = two_stacks(offload)
    try:
        assert s1.iface.tx_l4_cksum is offload and s2.iface.tx_l4_cksum is offload
        t1, t2 = Target(), Target()
        e1 = s1.udp.bind(CallbackUdpSink(t1), port=5000)
        e2 = s2.udp.bind(CallbackUdpSink(t2))
        e2.connect(A, 5000)
        up, down = payloads(60, 1), payloads(60, 2)
        for i in range(60):
            e2.sendto(up[i])
            e1.sendto(down[i], B, e2.local_port)
            if i % 8 == 7:                               # within the rings' and ARP's bounds
                pump((s1, s2), lambda: len(t1.got) == len(t2.got) == i + 1)
        pump((s1, s2), lambda: len(t1.got) == len(t2.got) == 60)
        assert t1.got == [(d, (B, e2.local_port)) for d in up]
        assert t2.got == [(d, (A, 5000)) for d in down]
        for s in (s1, s2):
            u = s.counters()["udp"]
            assert u["datagrams_in"] == u["datagrams_out"] == 60
            assert u["in_errors"] == 0 and u["no_checksum_in"] == 0 and u["send_errors"] == 0
            assert s.counters()["dropped"] == 0
    finally:
        s1.close()
        s2.close()


@pytest.mark.parametrize("offload", [True, False], ids=["cksum-offload", "cksum-software"])
def test_port_unreachable_comes_back_as_econnrefused(eal, offload):
    s1, s2 = two_stacks(offload)
    try:
        t = Target()
        ep = s1.udp.bind(CallbackUdpSink(t))
        ep.connect(B, 9)
        ep.sendto(b"anyone?")
        pump((s1, s2), lambda: t.errs)
        (exc, addr), = t.errs
        assert isinstance(exc, ConnectionRefusedError) and addr == (B, 9)
        assert s2.counters()["udp"]["no_port"] == 1
        assert s1.counters()["udp"]["icmp_errors_in"] == 1
    finally:
        s1.close()
        s2.close()


def test_corruption_is_caught_by_the_checksum(eal):
    """The fault injector flips bits after the checksums are final: what arrives intact is
    delivered, what does not is dropped and counted (at IP or UDP), never delivered."""
    s1, s2 = two_stacks(True, faults="corrupt=0.3,seed=7")
    try:
        t = Target()
        rx = s2.udp.bind(CallbackUdpSink(t), port=6000)
        tx = s1.udp.bind(CallbackUdpSink(Target()))
        sent = payloads(200, 3)
        for i, d in enumerate(sent):
            tx.sendto(d, B, 6000)
            if i % 8 == 7:
                for _ in range(4):
                    s1.poll()
                    s2.poll()
        for _ in range(20):
            s1.poll()
            s2.poll()
        good = set(sent)
        assert t.got and all(d in good and a[1] == tx.local_port for d, a in t.got)
        u = s2.counters()["udp"]
        assert u["in_bad_checksum"] > 0
        assert u["datagrams_in"] == len(t.got) < 200
    finally:
        s1.close()
        s2.close()
