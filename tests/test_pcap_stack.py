"""A Stack with pcap= over a tap, pinged by the kernel: the trace, read by tshark and scapy,
shows the ARP exchange, then echo request/reply pairs in order, and holds exactly the frames
the stack's counters say it received and sent."""
import os
import shutil
import subprocess

from scapy.layers.inet import ICMP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from test_ipv4_tap import kernel_ping, tap_stack


def tshark_fields(path, *fields):
    # tshark is a CI dependency (scripts/setup.sh): a missing tshark fails, never skips
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install -y tshark"
    args = [tshark, "-r", path, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("|") for line in r.stdout.splitlines()]


def test_trace_of_kernel_ping_shows_arp_then_echo_pairs(eal, tmp_path):
    path = str(tmp_path / "x.pcap")
    stack, net, _ = tap_stack(pcap=path)
    try:
        rc, out = kernel_ping(stack, f"{net}.2", 5)
        assert rc == 0 and "5 received" in out, out
    finally:
        stack.close()                         # flushes and closes the trace
    c = stack.counters()
    me, peer = f"{net}.2", f"{net}.1"

    rows = tshark_fields(path, "frame.protocols", "arp.opcode", "arp.src.proto_ipv4",
                         "arp.dst.proto_ipv4", "icmp.type", "icmp.seq", "ip.src", "ip.dst")
    events = []
    for protos, op, asrc, adst, itype, iseq, src, dst in rows:
        layers = protos.split(":")
        if "arp" in layers:
            events.append(("arp", int(op), asrc, adst))
        elif "icmp" in layers:
            events.append(("icmp", int(itype), int(iseq), src, dst))
        # anything else (the kernel's IPv6 chatter before it was switched off) is not ours

    # ARP: our gratuitous announcement, the kernel's who-has for us, our reply, in that order
    grat = events.index(("arp", 1, me, me))
    who_has = events.index(("arp", 1, peer, me))
    is_at = events.index(("arp", 2, me, peer))
    first_echo = next(i for i, e in enumerate(events) if e[0] == "icmp")
    assert grat < who_has < is_at < first_echo, events

    # ICMP: request seq n from the kernel, then our reply seq n, five times, nothing between
    echoes = [e for e in events if e[0] == "icmp"]
    expected = []
    for seq in range(1, 6):
        expected += [("icmp", 8, seq, peer, me), ("icmp", 0, seq, me, peer)]
    assert echoes == expected, echoes

    # scapy reads the same file: one record per frame the stack received or sent
    frames = rdpcap(path)
    assert len(frames) == len(rows) == c["rx_frames"] + c["tx_frames"], (len(frames), c)
    assert all(isinstance(f, Ether) for f in frames)
    icmp = [(f[ICMP].type, f[ICMP].seq) for f in frames if ICMP in f]
    assert icmp == [(e[1], e[2]) for e in echoes]
    assert sum(ARP in f for f in frames) == sum(e[0] == "arp" for e in events)
    assert c["icmp_echo_requests_in"] == c["icmp_echo_replies_out"] == 5
    assert os.path.getsize(path) > 24
