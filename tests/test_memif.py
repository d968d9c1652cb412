"""ICMP echo between two processes over net_memif: `python -m fastloop up` is the memif
server in a child process, a Stack in the test process is the client on the same socket."""
import hashlib
import os
import signal
import time

import pytest

from conftest import unique_subnet
from peer_proc import UpProcess, answered_in, final_line
from fastloop.config import StackConfig
from fastloop.net.tcp.pysink import CallbackSink
from fastloop.stack import Stack
from tcp_util import Transfer, payload

HERE = os.path.dirname(os.path.abspath(__file__))


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
            assert client.device.teardown_guarded       # fl_memif.c found net_memif's lock
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
            client.close()                  # the client leaves first, the server polling on
        rc, lines, err = server.finish(signal.SIGTERM)
    assert rc == 0, (lines, err)
    # the server's own books: every request it saw (warm-up and the 5) was answered
    assert answered_in(final_line(lines)) == c["icmp_echo_replies_in"], lines
    assert not os.path.exists(server.runtime_dir), "the child's EAL runtime dir outlived it"


MIB = 1 << 20
TCP_SIZE = int(os.environ.get("FASTLOOP_INTEROP_MIB", "256")) * MIB
TCP_FAULTS = [None, "loss=0.01,seed=41", "loss=0.05,seed=42", "reorder=0.05,seed=43",
              "dup=0.05,seed=44", "corrupt=0.02,seed=45"]


@pytest.mark.parametrize("faults, mtu", [(f, None) for f in TCP_FAULTS]
                         + [(None, 9000), ("loss=0.01,seed=46", 9000)])
def test_tcp_echo_between_processes_over_memif(eal, tmp_path, faults, mtu):
    """Our stack to our stack in two processes: FASTLOOP_INTEROP_MIB (default 256) MiB each
    way through a TCP echo in the child, SHA-256 checked; the faults are injected on the
    client's side, both directions. With an MTU of 9000 on both ends, every frame is one
    memif buffer (bsize) and one mbuf of a pool that holds it."""
    net = unique_subnet()
    sock = str(tmp_path / "t.sock")
    server = UpProcess({"FASTLOOP_IFACE": f"memif:{sock},role=server",
                        "FASTLOOP_ADDRESS": f"{net}.1/24", "FASTLOOP_TAP_PEER": "",
                        "FASTLOOP_MTU": str(mtu or "")},
                       args=("7100",), command=(os.path.join(HERE, "tcp_echo_proc.py"),))
    with server:
        server.wait_ready()
        client = Stack(StackConfig(iface=f"memif:{sock},role=client", address=f"{net}.2/24",
                                   tap_peer=None, faults=faults, mtu=mtu,
                                   **({"mempool_size": 4095} if mtu else {})))
        try:
            assert client.iface.mtu == (mtu or 1500)
            wait_connected(client, f"{net}.1")
            if mtu:                                # a whole jumbo datagram, echoed
                _, mark = client.iface.echo_replies(0)
                client.iface.send_echo(f"{net}.1", 99, mtu - 28)
                client.run(duration=5, until=lambda: client.iface.echo_replies(mark)[0])
                assert [r[2] for r in client.iface.echo_replies(mark)[0]] == [mtu - 28]
            data = payload(TCP_SIZE, seed=5)
            target = Transfer(data)
            start = time.monotonic()
            client.tcp.connect(f"{net}.1", 7100, CallbackSink(target))
            client.run(until=lambda: target.closed_with is not None, duration=900)
            seconds = time.monotonic() - start
            print(f"\nmemif, two processes [{faults or 'no faults'}]: {TCP_SIZE // MIB} MiB each "
                  f"way in {seconds:.1f} s, {TCP_SIZE / seconds / 1e6:.1f} MB/s each way")
            assert target.errors == [] and target.closed_with == 0
            assert target.received == len(data)
            assert target.digest.digest() == hashlib.sha256(data).digest()
            tcp = client.counters()["tcp"]
            assert client.counters()["drops"]["multiseg"] == 0
            if mtu:
                assert tcp["segments_out"] < 2 * TCP_SIZE // (mtu - 52) + 1024, tcp
            if faults and "corrupt" in faults:
                assert tcp["bad_checksum"] > 0
            if faults and "loss" in faults:
                assert tcp["retransmits_rto"] + tcp["retransmits_fast"] > 0
        finally:
            client.close()                  # the client leaves first, the server polling on
        rc, lines, err = server.finish(signal.SIGTERM)
    assert rc == 0, (lines, err)
    last = [l for l in lines if l.startswith("tcp echo: stopped;")]
    assert last and f"1 connections, {TCP_SIZE} bytes echoed, 0 errors" in last[-1], lines


def _start_pair(sock, net, victim_role, mode="flood-until-link-down"):
    """A memif_peer_proc victim in `victim_role` and a `fastloop up` leaver in the other;
    the server's side is started first (a memif client connects once, when it starts)."""
    leaver_role = "client" if victim_role == "server" else "server"
    # 4096-slot rings, all of them used: the teardown has 16 MiB per direction to unmap
    victim_env = {"FASTLOOP_IFACE": f"memif:{sock},role={victim_role},rsize=12",
                  "FASTLOOP_ADDRESS": f"{net}.2/24", "FASTLOOP_TAP_PEER": ""}
    leaver_env = {"FASTLOOP_IFACE": f"memif:{sock},role={leaver_role},rsize=12",
                  "FASTLOOP_ADDRESS": f"{net}.1/24", "FASTLOOP_TAP_PEER": ""}
    victim_args = (f"{net}.1", "4200", mode)
    victim_cmd = (os.path.join(HERE, "memif_peer_proc.py"),)
    if victim_role == "server":
        victim = UpProcess(victim_env, args=victim_args, command=victim_cmd)
        victim.wait_line(lambda l: "port up" in l)
        return victim, UpProcess(leaver_env)
    leaver = UpProcess(leaver_env)
    leaver.wait_ready()
    return UpProcess(victim_env, args=victim_args, command=victim_cmd), leaver


@pytest.mark.parametrize("victim_role", ["server", "client"])
def test_memif_port_closed_as_its_peer_leaves(tmp_path, victim_role):
    """The peer stops (SIGTERM: an orderly close; SIGKILL) while this side keeps frames in
    flight both ways, and this side closes its port the moment the link goes down, while
    net_memif is still tearing the connection down on EAL's interrupt thread (fl_memif.c).
    Unserialised, the two teardowns freed the same regions (EAL's "Error: Invalid memory"
    or a SIGSEGV in about two rounds in three), and a burst that ran into the teardown read
    the unmapped rings (SIGSEGV, 2 rounds in 280 of these without the lock, 0 in 160 with)."""
    for i in range(5):
        sig = signal.SIGTERM if i % 2 == 0 else signal.SIGKILL
        victim, leaver = _start_pair(str(tmp_path / f"v{i}.sock"), unique_subnet(), victim_role)
        with victim, leaver:
            ready = victim.wait_ready()
            assert "4200 of 4200 pings answered" in ready[-1], ready
            leaver.proc.send_signal(sig)
            rc, lines, err = victim.finish()
            leaver_rc, leaver_lines, leaver_err = leaver.finish()
        assert rc == 0 and "Invalid memory" not in err, (i, sig, rc, lines, err)
        assert lines[-1] == "memif peer: stopped (link down); 0 mbufs in use", lines
        assert leaver_rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL), \
            (i, sig, leaver_rc, leaver_lines, leaver_err)
        if sig == signal.SIGTERM:
            assert "Invalid memory" not in leaver_err and final_line(leaver_lines), leaver_lines
