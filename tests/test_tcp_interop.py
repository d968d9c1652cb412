"""TCP against real peers: the Linux kernel over net_tap both ways, and our stack on both ends
of a net_ring pair; with the fault injector off and on. Every byte is checked (SHA-256).

Each transfer is an echo: FASTLOOP_INTEROP_MIB (default 256, what CI runs) MiB one way and
the same back, so each test moves that much in each direction. Set it lower for quick local
runs. Each test prints its time and throughput (run with -s to see them).
"""
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.net.tcp.pysink import CallbackSink
from fastloop.stack import Stack
from conftest import unique_ifname, unique_subnet
from tcp_util import pump, Transfer, listen_echo, payload, kernel_peer, finish

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
SIZE = int(os.environ.get("FASTLOOP_INTEROP_MIB", "256")) * MIB
FAULTS = [None, "loss=0.01,seed=11", "loss=0.05,seed=12", "reorder=0.05,seed=13",
          "dup=0.05,seed=14", "corrupt=0.02,seed=15"]
DEADLINE = 900                   # seconds: a bound for a hang, not an expectation


def report(what, faults, seconds):
    """Time and throughput of a SIZE-each-way echo (MB/s: one direction's payload)."""
    print(f"\n{what} [{faults or 'no faults'}]: {SIZE // MIB} MiB each way in {seconds:.1f} s, "
          f"{SIZE / seconds / 1e6:.1f} MB/s each way")


def check_faults(stack, faults):
    """The faults happened, and were survived the way each must be."""
    tcp = stack.counters()["tcp"]
    if faults and "corrupt" in faults:
        assert tcp["bad_checksum"] > 0      # the corruption was caught, not delivered
    if faults and "loss" in faults:
        assert tcp["retransmits_rto"] + tcp["retransmits_fast"] > 0


def tap_stack(faults=None):
    ifname, net = unique_ifname(), unique_subnet()
    return Stack(StackConfig(iface=f"tap:{ifname}", address=f"{net}.2/24",
                             tap_peer=f"{net}.1", faults=faults)), net


def assert_clean(stack):
    c = stack.counters()
    assert c["tcp"]["timers_armed"] == sum(1 for s in c["tcp"]["states"] if s == "TIME_WAIT") \
        or c["tcp"]["states"].keys() <= {"TIME_WAIT"}
    assert c["tcp"]["bad_header"] == 0


@pytest.mark.parametrize("faults", FAULTS)
def test_kernel_client_to_our_echo_server(eal, faults):
    stack, net = tap_stack(faults)
    peer = None
    try:
        _, targets = listen_echo(stack.tcp, 7000)
        start = time.monotonic()
        peer = kernel_peer("client", f"{net}.2", "7000", str(SIZE), "1")
        stack.run(until=lambda: peer.poll() is not None, duration=DEADLINE)
        report("kernel client -> our echo server", faults, time.monotonic() - start)
        words = finish(peer)
        assert words[:2] == ["received", str(SIZE)]
        assert words[3] == hashlib.sha256(payload(SIZE, seed=1)).hexdigest()
        # our FIN and its ACK may be lost too: wait for the close to complete
        stack.run(until=lambda: targets and targets[0].closed_with is not None, duration=30)
        assert len(targets) == 1 and targets[0].errors == []
        assert targets[0].closed_with == 0
        assert targets[0].received == SIZE
        assert stack.counters()["tcp"]["passive_opens"] == 1
        check_faults(stack, faults)
    finally:
        if peer is not None and peer.poll() is None:
            peer.kill()
            peer.communicate()
        stack.close()


@pytest.mark.parametrize("faults", FAULTS)
def test_our_client_to_kernel_echo_server(eal, faults):
    stack, net = tap_stack(faults)
    peer = kernel_peer("server", f"{net}.1")
    try:
        port = int(peer.stdout.readline().split()[1])
        data = payload(SIZE, seed=2)
        target = Transfer(data)
        start = time.monotonic()
        conn = stack.tcp.connect(f"{net}.1", port, CallbackSink(target))
        stack.run(until=lambda: target.closed_with is not None, duration=DEADLINE)
        report("our client -> kernel echo server", faults, time.monotonic() - start)
        assert target.errors == []
        assert target.is_established and target.eof_seen and target.closed_with == 0
        assert target.received == len(data)
        assert target.digest.digest() == hashlib.sha256(data).digest()
        assert finish(peer) == ["echoed", str(SIZE)]
        assert stack.counters()["tcp"]["active_opens"] == 1
        assert conn.state_name in ("TIME_WAIT", "CLOSED")
        check_faults(stack, faults)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.communicate()
        stack.close()


@pytest.mark.parametrize("faults", FAULTS)
def test_our_stack_to_our_stack_over_ring(eal, faults):
    a, b = ring_pair()
    s1 = Stack(StackConfig(address="10.9.7.1/24", tap_peer=None, faults=faults), device=a)
    # the faults on one end only (its injector acts on both directions): with an injector on
    # each end a frame may be corrupted twice, and two flips of the same bit position in
    # opposite directions cancel in the Internet checksum (RFC 1071), so that frame would be
    # delivered damaged; one flip is always caught
    s2 = Stack(StackConfig(address="10.9.7.2/24", tap_peer=None), device=b)
    try:
        _, targets = listen_echo(s2.tcp, 9000)
        data = payload(SIZE, seed=3)
        target = Transfer(data)
        start = time.monotonic()
        s1.tcp.connect("10.9.7.2", 9000, CallbackSink(target))
        pump((s1, s2), lambda: target.closed_with is not None, timeout=DEADLINE)
        report("our stack <-> our stack over net_ring", faults, time.monotonic() - start)
        assert target.errors == [] and target.closed_with == 0
        assert target.received == len(data)
        assert target.digest.digest() == hashlib.sha256(data).digest()
        assert targets[0].received == len(data)
        check_faults(s1, faults)
    finally:
        s1.close()
        s2.close()


def test_connect_to_closed_port_is_refused(eal):
    stack, net = tap_stack()
    try:
        target = Transfer(b"x")
        stack.tcp.connect(f"{net}.1", 1, CallbackSink(target))   # the kernel answers RST
        stack.run(until=lambda: target.closed_with is not None, duration=5)
        assert target.closed_with == 111                        # ECONNREFUSED
        assert not target.is_established
        assert stack.counters()["tcp"]["failed_connects"] == 1
    finally:
        stack.close()


def test_kernel_connect_to_closed_port_gets_reset(eal):
    stack, net = tap_stack()
    result = {}

    def client():
        try:
            socket.create_connection((f"{net}.2", 4999), timeout=5)
        except OSError as e:
            result["error"] = e
    t = threading.Thread(target=client)
    t.start()
    try:
        stack.run(until=lambda: not t.is_alive(), duration=10)
        assert isinstance(result.get("error"), ConnectionRefusedError)
        assert stack.counters()["tcp"]["no_listener"] >= 1
    finally:
        stack.close()
