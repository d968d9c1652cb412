"""The Linux kernel as a peer over net_tap: ARP both ways, and ICMP echo both ways."""
import fcntl
import os
import subprocess

import pytest

from fastloop.config import StackConfig
from fastloop.stack import Stack
from conftest import unique_ifname, unique_subnet


def tap_stack(**overrides):
    ifname, net = unique_ifname(), unique_subnet()
    cfg = StackConfig(iface=f"tap:{ifname}", address=f"{net}.2/24", tap_peer=f"{net}.1",
                      **overrides)
    return Stack(cfg), net, ifname


def kernel_ping(stack, dst, count):
    """Run the kernel's ping against the stack while polling it; returns ping's output."""
    p = subprocess.Popen(["ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", dst],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        stack.run(until=lambda: p.poll() is not None, duration=30)
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate()[0]
    return p.returncode, out


@pytest.mark.parametrize("offload", [True, False], ids=["cksum-offload", "cksum-software"])
def test_kernel_ping_is_answered_and_kernel_resolves_us(eal, offload):
    stack, net, ifname = tap_stack(checksum_offload=offload)
    try:
        assert stack.device.offloads["tx_ipv4_cksum"] is offload
        rc, out = kernel_ping(stack, f"{net}.2", 5)
        assert rc == 0 and "5 received" in out, out
        c = stack.counters()
        assert c["icmp_echo_requests_in"] == 5 and c["icmp_echo_replies_out"] == 5
        assert c["arp_requests_in"] >= 1 and c["arp_replies_out"] >= 1
        neigh = subprocess.run(["ip", "neigh", "show", f"{net}.2", "dev", ifname],
                               capture_output=True, text=True).stdout.lower()
        assert stack.mac in neigh                       # the kernel learned our MAC from us
        assert c["drops"]["ip_checksum"] == 0 and c["drops"]["icmp_checksum"] == 0
    finally:
        stack.close()
    assert not os.path.exists(f"/sys/class/net/{ifname}"), "the tap outlived the stack"


@pytest.mark.parametrize("pmd_signal", [False, True], ids=["trigger-pulled", "pmd-signal"])
def test_tap_receives_without_a_signal_per_frame(eal, monkeypatch, pmd_signal):
    """fl_tap.c: the tap queue's O_ASYNC is off (no signal per received frame) and the rx
    burst pulls the PMD's trigger itself; FASTLOOP_TAP_RX_SIGNAL=1 keeps the PMD's signal.
    Either way every frame the kernel sends is received."""
    if pmd_signal:
        monkeypatch.setenv("FASTLOOP_TAP_RX_SIGNAL", "1")
    stack, net, ifname = tap_stack()
    try:
        fd = stack.device.rx_wakeup_fd
        assert fd >= 0
        assert bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ASYNC) is pmd_signal
        assert stack.device.rx_signal_free is not pmd_signal
        rc, out = kernel_ping(stack, f"{net}.2", 20)
        assert rc == 0 and "20 received" in out, out
        assert stack.counters()["icmp_echo_replies_out"] == 20
    finally:
        stack.close()


def test_stack_pings_the_kernel_and_resolves_it(eal):
    stack, net, ifname = tap_stack()
    try:
        rtts = stack.ping(f"{net}.1", count=3, timeout=2.0)
        assert all(r is not None and 0 < r < 2.0 for r in rtts), rtts
        with open(f"/sys/class/net/{ifname}/address") as f:
            kernel_mac = f.read().strip()
        assert stack.iface.arp_entries()[f"{net}.1"] == (kernel_mac, "reachable")
        c = stack.counters()
        assert c["arp_requests_out"] >= 1 and c["arp_replies_in"] >= 1
        assert c["icmp_echo_replies_in"] == 3
    finally:
        stack.close()


def test_unreachable_neighbour_gives_up_and_frees_its_queue(eal):
    stack, net, _ = tap_stack()
    try:
        assert stack.ping(f"{net}.99", count=1, timeout=0.3) == [None]
        assert stack.counters()["held_mbufs"]["arp_queues"] == 1   # waiting for an answer
        stack.run(duration=3.6)                          # 3 requests, 1 s apart, then give up
        c = stack.counters()
        assert c["arp_requests_out"] >= 3
        assert c["drops"]["arp_unresolved"] == 1
        assert c["held_mbufs"]["arp_queues"] == 0
        assert f"{net}.99" not in stack.iface.arp_entries()
    finally:
        stack.close()


def test_off_subnet_without_gateway_is_no_route(eal):
    stack, net, _ = tap_stack()
    try:
        assert stack.ping("192.0.2.1", timeout=0.05) == [None]
        assert stack.counters()["drops"]["no_route"] == 1
    finally:
        stack.close()
