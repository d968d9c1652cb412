"""The bulk path between two of our stacks on a ring pair: jumbo frames (an MTU above the
PMD's, mbufs from a pool that holds them), one on_data per receive burst in asyncio's order,
and send/receive buffers that grow for a fast flow and only for one."""
import hashlib

import pytest

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.eal import (data_room_for_mtu, eal_args_for, frame_buffer_for_mtu,
                              hugepages_available)
from fastloop.net.tcp.pysink import CallbackListener, CallbackSink
from fastloop.stack import Stack
from tcp_util import Transfer, listen_echo, payload, pump

MIB = 1 << 20


def two_stacks(mtu=None, **tcp):
    """Stacks 10.9.8.1 and .2 joined by a ring pair (both ends at `mtu`)."""
    a, b = ring_pair(mtu=mtu, mempool_size=2047 if mtu else None)
    s1 = Stack(StackConfig(address="10.9.8.1/24", tap_peer=None, mtu=mtu, **tcp), device=a)
    s2 = Stack(StackConfig(address="10.9.8.2/24", tap_peer=None, mtu=mtu, **tcp), device=b)
    return s1, s2


class Log:
    """Records the events of a connection, data joined per callback."""

    def __init__(self):
        self.events = []
        self.data = bytearray()

    def data_cb(self, c):
        chunk = c.recv(1 << 24)
        self.data += chunk
        self.events.append(("data", len(chunk)))

    def eof(self, c):
        self.events.append("eof")

    def closed(self, c, error):
        self.events.append(("closed", error))


class Target:
    def __init__(self, log):
        self.data, self.eof, self.closed = log.data_cb, log.eof, log.closed


class Opened:
    """A client that only opens the connection (the test writes on it)."""
    is_established = False

    def established(self, c):
        self.is_established = True


def test_mbufs_and_eal_memory_follow_the_mtu():
    """A whole frame in one mbuf after the 128-byte headroom; --no-huge -m grows to hold the
    pool (it is address space: only what is touched is resident)."""
    assert frame_buffer_for_mtu(None) == frame_buffer_for_mtu(1500) == 2048
    assert frame_buffer_for_mtu(9000) == 9216 and data_room_for_mtu(9000) == 9344
    assert frame_buffer_for_mtu(65000) >= 65000 + 14 and data_room_for_mtu(65000) <= 65535
    if not hugepages_available():
        def mem(args):
            return int(args[args.index("-m") + 1])
        assert mem(eal_args_for(16383, data_room=9344)) > 2 * 16383 * 9344 >> 20
        assert mem(eal_args_for(16383)) < mem(eal_args_for(16383, data_room=9344))


@pytest.mark.parametrize("mtu", [9000, 16000])
def test_jumbo_frames_between_two_stacks(eal, mtu):
    s1, s2 = two_stacks(mtu)
    try:
        assert s1.iface.mtu == s2.iface.mtu == mtu
        assert s1.device.mempool.data_room >= data_room_for_mtu(mtu) >= mtu + 14 + 128
        assert s1.mempool is s1.device.mempool
        _, targets = listen_echo(s2.tcp, 9000)
        data = payload(8 * MIB, seed=7)
        target = Transfer(data)
        conn = s1.tcp.connect("10.9.8.2", 9000, CallbackSink(target))
        assert pump((s1, s2), lambda: target.is_established, timeout=10)
        info = conn.info()
        assert info["mss"] == mtu - 40 - 12 and info["peer_mss"] == mtu - 40   # timestamps
        assert pump((s1, s2), lambda: target.closed_with is not None, timeout=120)
        assert target.errors == [] and target.closed_with == 0
        assert target.digest.digest() == hashlib.sha256(data).digest()
        assert targets[0].received == len(data)
        tcp = s1.counters()["tcp"]
        # every data segment full-sized but the last of each write: far fewer than at 1500
        assert tcp["segments_out"] < 2 * len(data) // (mtu - 52) + 64, tcp
        for s in (s1, s2):                         # (the other's gratuitous ARP is dropped)
            drops = s.counters()["drops"]
            assert drops["multiseg"] == drops["no_mbuf"] == drops["ip_too_big"] == 0, drops
    finally:
        s1.close()
        s2.close()


def test_a_stack_clamps_its_mtu_to_a_ring_pairs(eal):
    a, b = ring_pair()
    s1 = Stack(StackConfig(address="10.9.8.1/24", tap_peer=None, mtu=9000), device=a)
    try:
        assert s1.iface.mtu == 1500                # the device was opened for 1500
    finally:
        s1.close()
        b.close()


def logged_connection(s1, s2, port):
    """s1 connected to a listener of s2 whose connection's events go to a Log; returns the
    log (no events yet: the handshake is not one) and s1's connection."""
    log = Log()
    s2.tcp.listen(port, CallbackListener(lambda c: Target(log)))
    target = Opened()
    conn = s1.tcp.connect("10.9.8.2", port, CallbackSink(target))
    assert pump((s1, s2), lambda: target.is_established and log.events == [], timeout=5)
    return log, conn


def test_one_data_callback_per_receive_burst_and_eof_after_it(eal):
    """Ten segments and a FIN sent in one poll step arrive in one rx burst: the sink hears
    of the data once, with all of it, and of the EOF after."""
    s1, s2 = two_stacks()
    try:
        log, conn = logged_connection(s1, s2, 9001)
        for _ in range(4):                         # the handshake's last ACK and its answers
            s1.poll()
            s2.poll()
        msg = payload(10 * 1448, seed=1)
        assert conn.send(msg) == len(msg)
        conn.shutdown()
        s1.poll()                                  # ten segments, the FIN: one tx flush
        s2.poll()                                  # one rx burst
        assert log.events == [("data", len(msg)), "eof"]
        assert bytes(log.data) == msg
        assert s2.counters()["tcp"]["segments_in"] >= 11
    finally:
        s1.close()
        s2.close()


def test_data_of_a_burst_reaches_the_sink_before_a_reset_in_it(eal):
    s1, s2 = two_stacks()
    try:
        log, conn = logged_connection(s1, s2, 9002)
        for _ in range(4):
            s1.poll()
            s2.poll()
        conn.send(b"last words")
        s1.poll()                                  # the data goes out...
        conn.abort()
        s1.poll()                                  # ...and a RST after it: one burst at s2
        s2.poll()
        assert log.events == [("data", 10), ("closed", 104)]      # ECONNRESET
        assert bytes(log.data) == b"last words"
    finally:
        s1.close()
        s2.close()


def test_the_handshake_ack_leaves_in_the_rx_phase(eal):
    """The event loop runs the application between its rx and tx phases; the peer's accept
    waits for our handshake ACK, which goes at the end of the rx phase, and a SYN-ACK (an
    answer made while receiving) likewise."""
    s1, s2 = two_stacks()
    try:
        accepted = []
        s2.tcp.listen(9005, CallbackListener(lambda c: accepted.append(c) or Opened()))
        target = Opened()
        conn = s1.tcp.connect("10.9.8.2", 9005, CallbackSink(target))
        s1.poll()                                  # ARP request; the SYN waits for it
        s2.poll_rx()                               # ARP reply out, no tx phase
        s1.poll_rx()                               # the SYN goes with the ARP answer
        s2.poll_rx()                               # the SYN-ACK, from the rx phase
        s1.poll_rx()                               # established; the ACK, from the rx phase
        assert target.is_established and conn.state_name == "ESTABLISHED"
        s2.poll_rx()
        assert len(accepted) == 1 and accepted[0].state_name == "ESTABLISHED"
    finally:
        s1.close()
        s2.close()


def test_the_send_buffer_keeps_bytes_by_reference_and_copies_the_rest(eal):
    """send() keeps a bytes object (or a memoryview of one) by reference and copies what may
    change: a bytearray, or a view of one, changed after send() is sent as it was."""
    s1, s2 = two_stacks()
    try:
        log, conn = logged_connection(s1, s2, 9006)
        big = payload(20000, seed=4)
        mutable = bytearray(payload(9000, seed=5))
        parts = [big, memoryview(big)[100:6000], mutable, memoryview(mutable)[:5000], b"tiny"]
        want = b"".join(bytes(p) for p in parts)
        for p in parts:
            assert conn.send(p) == len(p)
        mutable[:] = bytes(len(mutable))            # after send(): must not matter
        del parts, big
        conn.shutdown()
        assert pump((s1, s2), lambda: "eof" in log.events, timeout=10)
        assert bytes(log.data) == want
    finally:
        s1.close()
        s2.close()


def test_buffers_grow_for_a_fast_flow(eal):
    s1, s2 = two_stacks(9000, tcp_rcvbuf=65536, tcp_sndbuf=65536,
                        tcp_rcvbuf_max=1 << 20, tcp_sndbuf_max=1 << 20)
    try:
        _, targets = listen_echo(s2.tcp, 9003)
        data = payload(32 * MIB, seed=9)
        target = Transfer(data)
        conn = s1.tcp.connect("10.9.8.2", 9003, CallbackSink(target))
        assert pump((s1, s2), lambda: target.is_established, timeout=5)
        assert conn.info()["rcv_wscale"] == 5       # announced for the largest window: 1 MiB
        assert pump((s1, s2), lambda: target.closed_with is not None, timeout=120)
        assert target.digest.digest() == hashlib.sha256(data).digest()
        for s in (s1, s2):
            tcp = s.counters()["tcp"]
            assert tcp["rcvbuf_grown"] >= 1 and tcp["sndbuf_grown"] >= 1, tcp
        info = conn.info()                         # the client: it sent, and read the echo
        assert 65536 < info["rcvbuf"] <= 1 << 20 and 65536 < info["sndbuf"] <= 1 << 20, info
    finally:
        s1.close()
        s2.close()


def test_a_receive_buffer_nobody_reads_does_not_grow(eal):
    s1, s2 = two_stacks(9000, tcp_rcvbuf=65536, tcp_rcvbuf_max=1 << 20)
    try:
        accepted = []
        s2.tcp.listen(9004, CallbackListener(lambda c: accepted.append(c) or object()))
        target = Transfer(payload(4 * MIB, seed=2))
        s1.tcp.connect("10.9.8.2", 9004, CallbackSink(target))
        assert pump((s1, s2), lambda: accepted, timeout=5)
        pump((s1, s2), lambda: False, timeout=0.5)          # the window fills, and stays full
        info = accepted[0].info()
        assert info["readable"] > 0 and info["rcvbuf"] == 65536
        assert s2.counters()["tcp"]["rcvbuf_grown"] == 0
    finally:
        s1.close()
        s2.close()
