"""UDP against the Linux kernel over net_tap: kernel sockets on the tap's kernel side talk to
our endpoints, and each side's ICMP port unreachable becomes the other's ECONNREFUSED."""
import socket

import pytest

from fastloop.config import StackConfig
from fastloop.net.udp.pysink import CallbackUdpSink
from fastloop.stack import Stack
from conftest import unique_ifname, unique_subnet
from udp_util import Target


def tap_stack(**overrides):
    ifname, net = unique_ifname(), unique_subnet()
    return Stack(StackConfig(iface=f"tap:{ifname}", address=f"{net}.2/24", tap_peer=f"{net}.1",
                             **overrides)), net


def kernel_socket(net):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((f"{net}.1", 0))
    s.setblocking(False)
    return s


class Collect:
    """until() for stack.run: reads the non-blocking kernel socket, keeps what it got."""

    def __init__(self, sock, want):
        self.sock, self.want, self.got, self.error = sock, want, [], None

    def __call__(self):
        try:
            while len(self.got) < self.want:
                self.got.append(self.sock.recvfrom(65536))
        except BlockingIOError:
            pass
        except OSError as e:
            self.error = e
            return True
        return len(self.got) >= self.want


def echo_target():
    return Target(on_datagram=lambda ep, data, addr: ep.sendto(data, *addr))


@pytest.mark.parametrize("offload", [True, False], ids=["cksum-offload", "cksum-software"])
def test_kernel_socket_gets_its_datagrams_echoed(eal, offload):
    stack, net = tap_stack(checksum_offload=offload)
    k = kernel_socket(net)
    try:
        assert stack.iface.tx_l4_cksum is offload
        t = echo_target()
        stack.udp.bind(CallbackUdpSink(t), port=7007)
        sent = [b"", b"1", b"hello, fastloop", bytes(range(256)) * 4, b"\x5a" * 1472]
        for d in sent:
            k.sendto(d, (f"{net}.2", 7007))
        done = Collect(k, len(sent))
        stack.run(until=done, duration=10)
        assert done.error is None
        assert sorted(done.got) == sorted((d, (f"{net}.2", 7007)) for d in sent)
        kport = k.getsockname()[1]
        assert sorted(t.got) == sorted((d, (f"{net}.1", kport)) for d in sent)
        u = stack.counters()["udp"]
        assert u["datagrams_in"] == u["datagrams_out"] == len(sent)
        assert u["in_errors"] == 0 and u["no_checksum_in"] == 0
    finally:
        k.close()
        stack.close()


def test_our_datagram_to_a_closed_kernel_port_is_refused(eal):
    stack, net = tap_stack()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((f"{net}.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()                                      # now nobody has it
    try:
        t = Target()
        ep = stack.udp.bind(CallbackUdpSink(t))
        ep.sendto(b"is anyone there?", f"{net}.1", closed_port)    # one: the kernel rate-limits
        stack.run(until=lambda: t.errs, duration=10)
        (exc, addr), = t.errs
        assert isinstance(exc, ConnectionRefusedError) and addr == (f"{net}.1", closed_port)
        assert stack.counters()["udp"]["icmp_errors_in"] == 1
        assert stack.counters()["icmp_errors_in"] == 1
    finally:
        stack.close()


def test_kernel_datagram_to_our_unbound_port_is_refused(eal):
    stack, net = tap_stack()
    k = kernel_socket(net)
    try:
        k.connect((f"{net}.2", 4321))                  # Linux reports ICMP errors on these
        k.send(b"hello?")
        done = Collect(k, 1)
        stack.run(until=done, duration=10)
        assert isinstance(done.error, ConnectionRefusedError), done.error
        assert done.got == []
        assert stack.counters()["udp"]["no_port"] == 1
        assert stack.counters()["icmp_unreach_out"] == 1
    finally:
        k.close()
        stack.close()


def test_kernel_broadcast_reaches_a_wildcard_endpoint(eal):
    stack, net = tap_stack()
    k = kernel_socket(net)
    try:
        k.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        t = Target()
        stack.udp.bind(CallbackUdpSink(t), port=7008)
        k.sendto(b"to everyone", (f"{net}.255", 7008))
        k.sendto(b"to nobody", (f"{net}.255", 7009))   # an unbound port: no ICMP for this
        stack.run(until=lambda: stack.counters()["udp"]["ignored_broadcast"] and t.got,
                  duration=10)
        assert t.got == [(b"to everyone", (f"{net}.1", k.getsockname()[1]))]
        assert stack.counters()["icmp_unreach_out"] == 0
    finally:
        k.close()
        stack.close()
