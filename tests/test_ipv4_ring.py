"""Two stacks in one process over a real DPDK net_ring pair, and the stack-local loopback."""
import pytest

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.stack import Stack


@pytest.fixture
def two_stacks(eal):
    a, b = ring_pair()
    s1 = Stack(StackConfig(address="10.9.0.1/24", tap_peer=None), device=a)
    s2 = Stack(StackConfig(address="10.9.0.2/24", tap_peer=None), device=b)
    yield s1, s2
    s1.close()
    s2.close()


def pump(*stacks, steps=50):
    for _ in range(steps):
        for s in stacks:
            s.poll()


def test_echo_both_ways_over_ring(two_stacks):
    s1, s2 = two_stacks
    for seq in range(4):
        s1.iface.send_echo("10.9.0.2", seq, 100)
        s2.iface.send_echo("10.9.0.1", seq, 1400)
    pump(s1, s2)
    r1, n1 = s1.iface.echo_replies()
    r2, n2 = s2.iface.echo_replies()
    assert n1 == 4 and [r[:3] for r in r1] == [("10.9.0.2", i, 100) for i in range(4)]
    assert n2 == 4 and [r[:3] for r in r2] == [("10.9.0.1", i, 1400) for i in range(4)]
    c1, c2 = s1.counters(), s2.counters()
    # the first requests waited for ARP; each side resolved the other once
    assert c1["arp_requests_out"] == 1 and c2["arp_requests_out"] == 1
    assert c1["icmp_echo_replies_out"] == 4 and c2["icmp_echo_replies_out"] == 4
    assert c1["dropped"] == 0 and c2["dropped"] == 0
    assert s1.iface.arp_entries()["10.9.0.2"][0] == s2.mac


def test_gratuitous_arp_is_sent_on_up_and_does_not_create_entries(two_stacks):
    s1, s2 = two_stacks
    pump(s1, s2, steps=2)
    assert s1.counters()["arp_gratuitous_out"] == 1
    # RFC 826's merge rule: an announcement only refreshes an entry we already have
    assert s2.iface.arp_entries() == {} and s2.counters()["drops"]["arp_not_for_us"] == 1


def test_ping_to_own_address_loops_inside_the_stack(two_stacks):
    s1, _ = two_stacks
    before = s1.device.stats()["opackets"]
    assert s1.ping("10.9.0.1", timeout=0.5)[0] is not None
    assert s1.counters()["loopback_frames"] == 2       # request and reply
    assert s1.device.stats()["opackets"] == before     # nothing reached the device


def test_loopback_mode_serves_127_0_0_0_8(eal):
    a, b = ring_pair()
    on = Stack(StackConfig(address="10.9.1.1/24", tap_peer=None, loopback=True), device=a)
    off = Stack(StackConfig(address="10.9.1.2/24", tap_peer=None), device=b)
    try:
        assert on.ping("127.0.0.1", timeout=0.5)[0] is not None
        assert on.ping("127.3.2.1", timeout=0.5)[0] is not None
        assert off.ping("127.0.0.1", timeout=0.05) == [None]
        assert off.counters()["drops"]["no_route"] == 1
    finally:
        on.close()
        off.close()


def test_mbuf_books_balance_in_debug_builds(two_stacks):
    from fastloop.dev.eal import debug_build
    s1, s2 = two_stacks
    for seq in range(3):
        s1.iface.send_echo("10.9.0.2", seq)
    pump(s1, s2)
    books = s1.iface.mbuf_books()
    assert books["enabled"] is debug_build()
    if books["enabled"]:
        # 3 requests + 1 ARP request + 1 gratuitous ARP allocated; 3 replies received ...
        assert books["allocated"] == 5 and books["transmitted"] >= 5 + 0
        assert books["received"] >= 4 and books["mismatches"] == 0
        assert books["received"] + books["allocated"] - books["freed"] - books["transmitted"] \
            == books["held"] == 0
    else:
        assert books["allocated"] == books["received"] == books["freed"] == 0
