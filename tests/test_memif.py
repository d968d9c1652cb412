"""ICMP echo between two processes over net_memif: `python -m fastloop up` is the memif
server in a child process, a Stack in the test process is the client on the same socket."""
import os
import signal
import time

from conftest import unique_subnet
from peer_proc import UpProcess, answered_in, final_line
from fastloop.config import StackConfig
from fastloop.stack import Stack


def wait_connected(stack, dst, timeout=10.0):
    """Ping until the first answer: the memif control channel connects asynchronously (EAL's
    interrupt thread), and ARP resolves on the way. Returns the echo requests sent."""
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        sent += 1
        if stack.ping(dst, count=1, timeout=0.25)[0] is not None:
            return sent
    raise AssertionError(f"no answer from {dst} over memif in {timeout}s: {stack.counters()}")


def test_ping_both_ways_between_processes_over_memif(eal, tmp_path):
    net = unique_subnet()
    sock = str(tmp_path / "x.sock")
    server = UpProcess({"FASTLOOP_IFACE": f"memif:{sock},role=server",
                        "FASTLOOP_ADDRESS": f"{net}.1/24", "FASTLOOP_TAP_PEER": ""})
    with server:
        description = server.wait_ready()
        assert any(f"memif socket {sock}" in l for l in description), description
        assert os.path.isdir(server.runtime_dir), "the child runs EAL under its own prefix"
        client = Stack(StackConfig(iface=f"memif:{sock},role=client", address=f"{net}.2/24",
                                   tap_peer=None))
        try:
            assert client.device.driver == "net_memif"
            wait_connected(client, f"{net}.1")
            rtts = client.ping(f"{net}.1", count=5, timeout=2.0)
            assert all(r is not None for r in rtts), rtts
            c = client.counters()
            assert c["arp_replies_in"] >= 1                 # the server answered our ARP
            assert c["icmp_echo_replies_in"] == c["icmp_echo_requests_out"]   # nothing lost
            assert c["dropped"] == 0, c["drops"]
            print(f"memif RTTs (two spinning processes on a shared 2-vCPU guest): "
                  f"{[round(r * 1e6, 1) for r in rtts]} us")
        finally:
            client.close()
        rc, lines, err = server.finish(signal.SIGTERM)
    assert rc == 0, (lines, err)
    # the server's own books: every request it saw (warm-up and the 5) was answered
    assert answered_in(final_line(lines)) == c["icmp_echo_replies_in"], lines
    assert not os.path.exists(server.runtime_dir), "the child's EAL runtime dir outlived it"
