# cython: language_level=3
"""A Stack: one device, its middlewares (fault injector, pcap tracer) and one IPv4 interface,
built from a StackConfig, with the run-to-completion poll step.

    device → [fault injector] → [pcap tracer] → Interface (Ethernet/ARP/IPv4/ICMP)

The tracer sits nearest the stack so a capture shows what the stack really received (after
injected faults) and sent.
"""
import ipaddress
import os
import random
import subprocess

from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uint32_t, uint64_t, UINT64_MAX
from fastloop.net.tcp.tcb cimport TcpLayerBase
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.dev.device cimport Device
from fastloop.net.iface cimport Interface

from fastloop.config import StackConfig
from fastloop.dev.device import open_device
from fastloop.dev.eal import eal_init, data_room_for_mtu, frame_buffer_for_mtu


class StackError(OSError):
    """The stack could not be brought up; the message says what to do."""


def _run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise StackError(1, f"`{' '.join(cmd)}` failed: {r.stderr.strip()}")


def configure_tap_peer(str ifname, str peer, network):
    """Give the kernel side of a tap its own MAC and the peer address, and bring it up.

    net_tap gives the kernel interface the port's MAC; two ends with one MAC confuse
    neighbour tables, so the kernel side gets a fresh locally administered one.
    """
    mac = "02:" + ":".join(f"{random.randrange(256):02x}" for _ in range(5))
    _run("ip", "link", "set", "dev", ifname, "address", mac)
    try:   # the kernel's IPv6 chatter (RS, MLD) on the tap is noise for an IPv4 stack
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass
    _run("ip", "addr", "replace", f"{peer}/{network.prefixlen}", "dev", ifname)
    _run("ip", "link", "set", "dev", ifname, "up")


cdef class Stack:
    def __init__(self, config=None, *, Device device=None, start_ns=None):
        """Bring a stack up from `config` (default: StackConfig.from_env()).

        `device` attaches to an already opened device (a ring pair in tests) instead of
        the one config.iface names; `start_ns` starts TCP's timer wheel on a virtual clock.
        """
        if config is None:
            config = StackConfig.from_env()
        config.validate()
        self.config = config
        spec = config.iface_spec()
        pci = [spec.target] if spec.kind == "pci" else []
        self.eal = eal_init(config.mempool_size, config.eal_args, pci=pci,
                            data_room=data_room_for_mtu(config.mtu))
        if device is None:
            devargs = spec.devargs(self.eal.new_device_id(),
                                   buffer_size=frame_buffer_for_mtu(config.mtu))
            device = open_device(devargs, eal=self.eal, offloads=config.checksum_offload,
                                 kernel_ifname=spec.kernel_ifname, mtu=config.mtu,
                                 mempool_size=config.mempool_size)
        try:
            self.device = self._wrap(device, config)
            self.iface = Interface(self.device, config.address, config.gateway, mac=config.mac,
                                   mtu=config.mtu, loopback=config.loopback,
                                   checksum_offload=config.checksum_offload,
                                   arp_timeout=config.arp_timeout, arp_queue=config.arp_queue,
                                   arp_queue_total=config.arp_queue_total)
            if config.tcp:
                from fastloop.net.tcp.layer import TcpLayer
                self.tcp = TcpLayer(self.iface, sndbuf=config.tcp_sndbuf,
                                    rcvbuf=config.tcp_rcvbuf, sndbuf_max=config.tcp_sndbuf_max,
                                    rcvbuf_max=config.tcp_rcvbuf_max,
                                    delayed_ack=config.tcp_delayed_ack,
                                    time_wait=config.tcp_time_wait,
                                    time_wait_max=config.tcp_time_wait_max,
                                    congestion=config.tcp_congestion,
                                    syncookies=config.tcp_syncookies,
                                    reassembly_mbufs=config.reassembly_mbufs(), now_ns=start_ns)
            if config.udp:
                from fastloop.net.udp.layer import UdpLayer
                self.udp = UdpLayer(self.iface, rcvbuf=config.udp_rcvbuf)
            if spec.kind == "tap" and config.tap_peer and device.kernel_ifname:
                configure_tap_peer(device.kernel_ifname, config.tap_peer,
                                   config.interface().network)
        except BaseException:
            device.close()
            raise
        self.iface.send_gratuitous_arp()
        self.iface.flush()

    @staticmethod
    def _wrap(Device device, config):
        faults = config.fault_params()
        if faults:
            from fastloop.dev.faults import FaultInjector
            device = FaultInjector(device, **faults)
        if config.pcap:
            from fastloop.dev.pcap import PcapTracer
            device = PcapTracer(device, config.pcap)
        return device

    cpdef uint32_t poll(self, now_ns=None):
        """One run-to-completion step: device → rx → timers → tx. Returns frames received.
        now_ns (monotonic ns) drives a virtual clock in tests; None reads the clock."""
        return self.iface.step(fl_now_ns() if now_ns is None else now_ns)

    def poll_rx(self, now_ns=None):
        """The event loop's first phase alone (rx_phase): receive, timers, and the answers
        made on the way out, but nothing the application's output owes (tx_phase)."""
        return self.rx_phase(fl_now_ns() if now_ns is None else now_ns)

    cdef uint32_t rx_phase(self, uint64_t now) noexcept:
        self.iface.device.poll(now)
        cdef uint32_t n = self.iface.rx_step(now)
        self.iface.timers(now)
        if self.iface.txq_len:                 # answers made in the rx phase (ARP, ICMP,
            self.iface.flush()                 # SYN-ACKs, handshake ACKs, RSTs) go before
        return n                               # the application runs

    cdef void tx_phase(self, uint64_t now) noexcept:
        if self.iface.tcp is not None:
            self.iface.tcp.output(now)
        if self.iface.udp is not None:
            self.iface.udp.output(now)
        self.iface.flush()

    cdef uint64_t next_timer(self) noexcept:
        """When the stack's earliest timer (TCP's wheel) is due, monotonic ns; UINT64_MAX:
        none armed. The loop's adaptive idle mode never sleeps past it."""
        cdef TcpLayerBase tcp
        if self.tcp is None:
            return UINT64_MAX
        tcp = <TcpLayerBase>self.tcp
        return tcp.wheel.next_expiry_ns()

    def run(self, duration=None, until=None):
        """Busy-poll until `duration` seconds pass, `until()` is true, or Ctrl-C."""
        cdef uint64_t deadline = 0
        cdef uint64_t spins = 0
        if duration is not None:
            deadline = fl_now_ns() + <uint64_t>(duration * 1e9)
        while True:
            self.poll()
            spins += 1
            if (spins & 1023) == 0:
                PyErr_CheckSignals()                 # Ctrl-C and SIGTERM handlers run here
                if deadline and fl_now_ns() >= deadline:
                    return
            if until is not None and until():
                return

    def ping(self, str dst, int count=1, double timeout=1.0, int size=56):
        """Send `count` echo requests one at a time; returns the RTTs (seconds, None if lost)."""
        rtts = []
        for seq in range(count):
            _, mark = self.iface.echo_replies(0)
            self.iface.send_echo(dst, seq, size)
            got = []

            def answered():
                replies, _ = self.iface.echo_replies(mark)
                got.extend(r for r in replies if r[1] == seq)
                return bool(got)
            self.run(duration=timeout, until=answered)
            rtts.append(got[0][3] / 1e9 if got else None)
        return rtts

    def counters(self):
        out = self.iface.counters()
        out["mempool_in_use"] = self.mempool.in_use
        if self.tcp is not None:
            out["tcp"] = self.tcp.counters()
        if self.udp is not None:
            out["udp"] = self.udp.counters()
        out["held_mbufs"] = self.iface.held_mbufs()
        return out

    @property
    def mempool(self):
        """The pool this stack's mbufs come from (the process's first, unless its MTU needed
        larger mbufs)."""
        return self.device.mempool

    @property
    def address(self):
        return self.iface.address

    @property
    def mac(self):
        return self.iface.mac_address

    def close(self):
        """Free what the stack holds, stop the port, remove a tap. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.iface.flush()
        self.iface.close()
        self.device.close()
        books = self.iface.mbuf_books()
        if books["enabled"]:
            owned = books["received"] + books["allocated"] - books["freed"] - books["transmitted"]
            if books["mismatches"] or owned != 0:
                raise AssertionError(f"mbuf books do not balance after close: {books}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<Stack {self.iface.address} mac={self.iface.mac_address} on {self.device.name} "
                f"({self.device.driver})>")
