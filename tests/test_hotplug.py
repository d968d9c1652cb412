"""Hot-plug: devices attached and detached at runtime in one process (one EAL), each still
working while the others come and go, and the mempool back to its start at the end."""
import os

import pytest

from conftest import unique_ifname, unique_subnet
from fastloop.config import StackConfig
from conftest_dev import frames
from fastloop.dev.device import ring_pair
from fastloop.dev.testing import send_frames
from fastloop.stack import Stack


def tap(net=None):
    ifname, net = unique_ifname(), net or unique_subnet()
    s = Stack(StackConfig(iface=f"tap:{ifname}", address=f"{net}.2/24", tap_peer=f"{net}.1"))
    return s, ifname, net


def answered(stack, dst, count=3):
    rtts = stack.ping(dst, count=count, timeout=2.0)
    return all(r is not None for r in rtts)


def test_attach_tap_ring_tap_at_runtime_close_in_another_order(eal):
    start = eal.mempool.in_use
    opened = []
    try:
        t1, if1, net1 = tap()
        opened.append(t1)
        assert answered(t1, f"{net1}.1")

        a, b = ring_pair("hp")
        try:
            r1 = Stack(StackConfig(address="10.9.8.1/24", tap_peer=None), device=a)
        except BaseException:
            a.close()
            b.close()
            raise
        opened.append(r1)
        try:
            r2 = Stack(StackConfig(address="10.9.8.2/24", tap_peer=None), device=b)
        except BaseException:
            b.close()
            raise
        opened.append(r2)
        # a ring pair answers only while both ends poll: ping from r1 while r2 runs
        r1.iface.send_echo("10.9.8.2", 1, 56)
        r1.run(duration=2.0, until=lambda: r2.poll() >= 0 and r1.iface.echo_replies()[1] > 0)
        assert r1.iface.echo_replies()[1] == 1

        t2, if2, net2 = tap()
        opened.append(t2)
        assert answered(t2, f"{net2}.1") and answered(t1, f"{net1}.1")
        ports = {s.device.port_id for s in (t1, r1, r2, t2)}
        assert len(ports) == 4, "every device has its own port"

        # close in an order unlike the opening one, checking the survivors after each
        t1.close()
        assert not os.path.exists(f"/sys/class/net/{if1}")
        assert answered(t2, f"{net2}.1")
        r2.close()
        assert r1.ping("10.9.8.2", timeout=0.05) == [None]  # its peer is gone, r1 is not
        t3, if3, net3 = tap()            # may reuse t1's freed port id
        opened.append(t3)
        assert answered(t3, f"{net3}.1") and answered(t2, f"{net2}.1")
        t2.close()
        r1.close()
        assert answered(t3, f"{net3}.1")
        t3.close()
        for ifname in (if1, if2, if3):
            assert not os.path.exists(f"/sys/class/net/{ifname}")
    finally:
        for s in opened:
            s.close()
    assert eal.mempool.in_use == start, "mbufs leaked across hot-plug"


@pytest.mark.parametrize("first", ["a", "b"])
def test_frames_sent_to_a_closed_ring_end_are_freed_with_the_pair(eal, first):
    """Regression: net_ring never frees the rings it is given, so a frame sent by one end
    after the other closed stayed in the ring forever (one leaked mbuf per frame)."""
    start = eal.mempool.in_use
    a, b = ring_pair("hz")
    closed, survivor = (a, b) if first == "a" else (b, a)
    try:
        closed.close()
        assert send_frames(survivor, frames(3)) == 3      # into the closed end's rx ring
        assert eal.mempool.in_use == start + 3
    finally:
        a.close()
        b.close()
    assert eal.mempool.in_use == start
