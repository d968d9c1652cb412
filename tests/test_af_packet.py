"""The Linux kernel in a network namespace as a peer over net_af_packet on a veth pair.

    [ Stack ] --af_packet-- vethH (host ns, no address) ==veth== vethN (fltNS<pid>, <net>.1)

Receiving frames for our MAC: net_af_packet opens an AF_PACKET/ETH_P_ALL socket bound to the
host end, and a packet socket is handed every frame the device receives, PACKET_OTHERHOST
included (only PACKET_LOOPBACK, i.e. our own transmissions, is skipped), and a veth does no
MAC filtering. So neither promiscuous mode nor a matching veth MAC is needed: the `own-mac`
case runs the stack with its own MAC, different from the host end's, and checks that
IFF_PROMISC stays off. We chose to set neither. With the device MAC (the
default) the stack and the host end share a MAC; the host kernel also sees every frame, but
the host end has no IPv4 address, IPv6 is off on it and forwarding is off, so it answers
nothing and forwards nothing.
"""
import itertools
import os
import re
import subprocess

import pytest

from conftest import unique_ifname, unique_subnet
from fastloop.config import StackConfig
from fastloop.stack import Stack

_ns_ids = itertools.count()
IFF_PROMISC = 0x100


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
    return r.stdout


def set_sysctl(path, value):
    with open(path, "w") as f:
        f.write(value)


class VethNamespace:
    """A namespace fltNS<pid>_<n> holding one end of a veth pair; the other end stays here."""

    def __init__(self):
        self.ns = f"fltNS{os.getpid()}_{next(_ns_ids)}"
        self.host_if, self.ns_if = unique_ifname("flh"), unique_ifname("fln")
        self.net = unique_subnet()
        self.created_ns = self.created_link = False

    def __enter__(self):
        try:
            sh("ip", "netns", "add", self.ns)
            self.created_ns = True
            sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self.created_link = True
            set_sysctl(f"/proc/sys/net/ipv6/conf/{self.host_if}/disable_ipv6", "1")
            set_sysctl(f"/proc/sys/net/ipv4/conf/{self.host_if}/forwarding", "0")
            sh("ip", "link", "set", self.ns_if, "netns", self.ns)
            self.ns_exec("sysctl", "-qw", f"net.ipv6.conf.{self.ns_if}.disable_ipv6=1")
            self.ns_exec("ip", "addr", "add", f"{self.net}.1/24", "dev", self.ns_if)
            self.ns_exec("ip", "link", "set", self.ns_if, "up")
            self.ns_exec("ip", "link", "set", "lo", "up")
            sh("ip", "link", "set", self.host_if, "up")
        except BaseException:
            self.close()
            raise
        return self

    def ns_exec(self, *cmd):
        return sh("ip", "netns", "exec", self.ns, *cmd)

    def close(self):
        if self.created_link:   # deleting one end of a veth deletes both
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)
        if self.created_ns:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)
        assert not os.path.exists(f"/sys/class/net/{self.host_if}")
        assert not os.path.exists(f"/run/netns/{self.ns}")

    def __exit__(self, *exc):
        self.close()


def ns_ping(stack, ns, dst, count):
    """The namespace kernel pings `dst` while the stack polls; returns (rc, output)."""
    p = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", "0.05",
                          "-W", "2", dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        stack.run(until=lambda: p.poll() is not None, duration=30)
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate(timeout=10)[0]
    return p.returncode, out


def flags(ifname):
    with open(f"/sys/class/net/{ifname}/flags") as f:
        return int(f.read(), 16)


@pytest.mark.parametrize("own_mac", [False, True], ids=["veth-mac", "own-mac"])
def test_namespace_kernel_and_stack_ping_each_other(eal, own_mac):
    with VethNamespace() as v:
        mac = "02:fa:00:00:00:07" if own_mac else None
        stack = Stack(StackConfig(iface=f"af_packet:{v.host_if}", address=f"{v.net}.2/24",
                                  tap_peer=None, mac=mac))
        try:
            assert stack.device.driver == "net_af_packet"
            with open(f"/sys/class/net/{v.host_if}/address") as f:
                host_mac = f.read().strip()
            assert stack.mac == (mac or host_mac)
            rc, out = ns_ping(stack, v.ns, f"{v.net}.2", 5)
            assert rc == 0 and "5 received" in out, out
            c = stack.counters()
            assert c["icmp_echo_requests_in"] == 5 and c["icmp_echo_replies_out"] == 5
            neigh = v.ns_exec("ip", "neigh", "show", f"{v.net}.2", "dev", v.ns_if).lower()
            assert stack.mac in neigh, neigh               # the namespace learned us by ARP

            rtts = stack.ping(f"{v.net}.1", count=5, timeout=2.0)
            assert all(r is not None for r in rtts), rtts
            ns_mac = v.ns_exec("cat", f"/sys/class/net/{v.ns_if}/address").strip()
            assert stack.iface.arp_entries()[f"{v.net}.1"] == (ns_mac, "reachable")
            c = stack.counters()
            assert c["icmp_echo_replies_in"] == 5
            assert c["drops"]["icmp_checksum"] == 0 and c["drops"]["ip_checksum"] == 0
            # no promiscuous mode was needed (or set) to receive frames for our MAC
            assert not flags(v.host_if) & IFF_PROMISC
            m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)", out)
            print(f"af_packet ({'own' if own_mac else 'veth'} MAC): kernel->stack ping avg "
                  f"{m.group(2) if m else '?'} ms; stack->kernel RTTs "
                  f"{[round(r * 1e6, 1) for r in rtts]} us")
        finally:
            stack.close()
