"""UDP datagram transports: the same tests on asyncio, uvloop and fastloop (stack loopback),
and against the kernel over net_tap."""
import asyncio
import socket
import threading

import pytest

from loop_testbase import LOCAL, any_loop, fastloop_tap  # noqa: F401


class Collector(asyncio.DatagramProtocol):
    def __init__(self):
        self.datagrams = []
        self.errors = []
        self.events = []
        self.transport = None
        loop = asyncio.get_event_loop()
        self.lost = loop.create_future()
        self.arrived = asyncio.Event()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def datagram_received(self, data, addr):
        self.datagrams.append((data, addr))
        self.arrived.set()

    def error_received(self, exc):
        self.errors.append(exc)
        self.arrived.set()

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


class EchoDatagram(Collector):
    def datagram_received(self, data, addr):
        super().datagram_received(data, addr)
        self.transport.sendto(data.upper(), addr)


async def _until(pred, timeout=10):
    for _ in range(int(timeout * 1000)):
        if pred():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def test_datagram_echo_connected_and_unconnected(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        stran, sproto = await loop.create_datagram_endpoint(EchoDatagram, local_addr=(LOCAL, 0))
        port = stran.get_extra_info("sockname")[1]
        assert stran.get_extra_info("peername") is None
        # connected client
        ctran, cproto = await loop.create_datagram_endpoint(Collector, remote_addr=(LOCAL, port))
        assert ctran.get_extra_info("peername") == (LOCAL, port)
        for i in range(50):
            ctran.sendto(b"ping %d" % i)
        await _until(lambda: len(cproto.datagrams) == 50)
        assert [d for d, _ in cproto.datagrams] == [b"PING %d" % i for i in range(50)]
        assert all(a == (LOCAL, port) for _, a in cproto.datagrams)
        with pytest.raises(ValueError):
            ctran.sendto(b"x", (LOCAL, port + 1))
        with pytest.raises(TypeError):
            ctran.sendto("text")
        caddr = ctran.get_extra_info("sockname")
        assert sproto.datagrams[0] == (b"ping 0", (LOCAL, caddr[1]))
        # unconnected client, explicit address, a 1400-byte datagram
        utran, uproto = await loop.create_datagram_endpoint(Collector, local_addr=(LOCAL, 0))
        utran.sendto(b"z" * 1400, (LOCAL, port))
        await _until(lambda: uproto.datagrams)
        assert uproto.datagrams == [(b"Z" * 1400, (LOCAL, port))]
        for t in (ctran, utran, stran):
            t.close()
        for p in (cproto, uproto, sproto):
            assert (await p.lost) is None
            assert p.events == ["made", "lost"]
    any_loop.run(main())


def test_connected_datagram_to_closed_port_gets_error_received(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        probe, _ = await loop.create_datagram_endpoint(Collector, local_addr=(LOCAL, 0))
        port = probe.get_extra_info("sockname")[1]
        probe.close()                           # now nobody listens there
        await asyncio.sleep(0.01)
        tran, proto = await loop.create_datagram_endpoint(Collector, remote_addr=(LOCAL, port))
        tran.sendto(b"anyone?")
        await asyncio.wait_for(proto.arrived.wait(), 5)
        assert proto.datagrams == []
        assert isinstance(proto.errors[0], ConnectionRefusedError), proto.errors
        tran.close()
        await proto.lost
    any_loop.run(main())


def test_local_name_binds_where_it_routes(any_loop):
    """local_addr=('localhost', 0) binds where 127.0.0.1 does: on fastloop in stack-loopback
    mode, the userspace stack, which a client to 127.0.0.1 reaches."""
    async def main():
        loop = asyncio.get_running_loop()
        stran, _ = await loop.create_datagram_endpoint(EchoDatagram, family=socket.AF_INET,
                                                       local_addr=("localhost", 0))
        port = stran.get_extra_info("sockname")[1]
        assert stran.get_extra_info("sockname") == (LOCAL, port)
        ctran, cproto = await loop.create_datagram_endpoint(Collector, remote_addr=(LOCAL, port))
        ctran.sendto(b"by name")
        await _until(lambda: cproto.datagrams)
        assert cproto.datagrams == [(b"BY NAME", (LOCAL, port))]
        for t in (ctran, stran):
            t.close()
    any_loop.run(main())
    if any_loop.stack is not None:
        assert any_loop.stack.counters()["udp"]["datagrams_in"] == 2


def test_kernel_udp_peer_over_tap(fastloop_tap):
    case = fastloop_tap

    async def main():
        loop = asyncio.get_running_loop()
        tran, proto = await loop.create_datagram_endpoint(EchoDatagram, local_addr=("0.0.0.0", 5353))
        assert tran.get_extra_info("sockname") == ("0.0.0.0", 5353)
        got = []

        def kernel():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.bind((case.kernel_ip, 0))
                for i in range(20):
                    s.sendto(b"dns-ish %d" % i, (case.our_ip, 5353))
                    got.append(s.recvfrom(2048))
        t = threading.Thread(target=kernel)
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.005)
        assert [d for d, _ in got] == [b"DNS-ISH %d" % i for i in range(20)]
        assert all(a == (case.our_ip, 5353) for _, a in got)
        assert proto.datagrams[0][1][0] == case.kernel_ip
        tran.close()
        await proto.lost
    case.run(main())
    assert case.stack.counters()["udp"]["datagrams_in"] >= 20
