"""The UDP endpoint API: bind rules, ephemeral ports, errors as errno, close, pausing."""
import errno

import pytest

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.net.udp.pysink import CallbackUdpSink
from fastloop.stack import Stack
from udp_util import UdpRawEnd, Target, to_us, US, PEER

EPHEMERAL = range(32768, 61000)


@pytest.fixture
def raw(eal):
    r = UdpRawEnd()
    yield r
    r.close()


def bind(stack_or_raw, port=0, host=None, target=None):
    udp = stack_or_raw.udp
    return udp.bind(CallbackUdpSink(target or Target()), host=host, port=port)


def oserror(fn, *args, **kw):
    with pytest.raises(OSError) as e:
        fn(*args, **kw)
    return e.value.errno


def test_udp_is_attached_by_default_and_can_be_left_off(eal):
    a, b = ring_pair()
    on = Stack(StackConfig(address="10.9.9.1/24", tap_peer=None), device=a)
    off = Stack(StackConfig(address="10.9.9.2/24", tap_peer=None, udp=False), device=b)
    try:
        assert on.udp is not None and on.iface.udp is on.udp
        assert "udp" in on.counters() and on.counters()["udp"]["endpoints"] == 0
        assert off.udp is None and "udp" not in off.counters()
    finally:
        on.close()
        off.close()


def test_a_bound_port_is_in_use_on_every_address(raw):
    bind(raw, 7000)
    assert oserror(bind, raw, 7000) == errno.EADDRINUSE
    assert oserror(bind, raw, 7000, host=US) == errno.EADDRINUSE     # wildcard holds US too
    bind(raw, 7001, host=US)
    assert oserror(bind, raw, 7001) == errno.EADDRINUSE              # and the other way
    assert oserror(bind, raw, 7001, host=US) == errno.EADDRINUSE
    assert raw.stack.counters()["udp"]["endpoints"] == 2


def test_bind_checks_the_address_and_port(raw):
    assert oserror(bind, raw, 7000, host="10.9.8.99") == errno.EADDRNOTAVAIL
    assert oserror(bind, raw, 65536) == errno.EINVAL
    assert oserror(bind, raw, -1) == errno.EINVAL
    with pytest.raises(ValueError):
        bind(raw, 7000, host="not-an-address")


def test_ephemeral_ports_are_distinct_in_range_and_skip_bound_ones(raw):
    eps = [bind(raw) for _ in range(50)]
    ports = [ep.local_port for ep in eps]
    assert len(set(ports)) == 50 and all(p in EPHEMERAL for p in ports)
    nxt = (ports[-1] + 1 - 32768) % (61000 - 32768) + 32768
    bind(raw, nxt)                                     # the next one is taken explicitly
    assert bind(raw).local_port not in set(ports) | {nxt}


def test_local_and_remote(raw):
    ep = bind(raw, 7000)
    assert ep.local == ("0.0.0.0", 7000) and ep.remote is None
    assert (ep.local_addr, ep.local_port, ep.remote_addr, ep.remote_port) == (0, 7000, 0, 0)
    ep.connect(PEER, 53)
    assert ep.local == (US, 7000)                      # the route's source, as connect(2)
    assert ep.remote == (PEER, 53)
    assert ep.remote_addr == 0x0a090802 and ep.remote_port == 53


def test_sendto_errors(raw):
    ep = bind(raw, 7000)
    iface_mtu = raw.stack.iface.mtu
    assert iface_mtu == 1500
    ep.sendto(b"x" * 1472, PEER, 9)                    # 1472 + 8 + 20: exactly the MTU
    assert oserror(ep.sendto, b"x" * 1473, PEER, 9) == errno.EMSGSIZE
    assert oserror(ep.sendto, b"x" * 70000, PEER, 9) == errno.EMSGSIZE
    assert oserror(ep.sendto, b"x") == errno.EDESTADDRREQ
    assert oserror(ep.sendto, b"x", "192.0.2.1", 9) == errno.ENETUNREACH     # no gateway
    assert oserror(ep.sendto, b"x", "127.0.0.1", 9) == errno.ENETUNREACH     # loopback off
    assert oserror(ep.sendto, b"x", PEER, 0) == errno.EINVAL
    assert oserror(ep.sendto, b"x", "224.0.0.1", 9) == errno.EINVAL          # no multicast
    with pytest.raises(ValueError):
        ep.sendto(b"x", PEER)
    c = raw.stack.counters()["udp"]
    assert c["datagrams_out"] == 1
    assert c["send_errors"] == 5                       # the refusals that reached the layer
    assert oserror(ep.connect, "192.0.2.1", 9) == errno.ENETUNREACH
    assert oserror(ep.connect, PEER, 0) == errno.EINVAL
    assert ep.remote is None


def test_sendto_takes_any_buffer(raw):
    ep = bind(raw, 7000)
    peer = bind(raw, 7001, host=US, target=(t := Target()))
    for data in (b"bytes", bytearray(b"bytearray"), memoryview(b"xxmemoryviewxx")[2:-2]):
        ep.sendto(data, US, 7001)
    raw.exchange()
    assert [d for d, _ in t.got] == [b"bytes", b"bytearray", b"memoryview"]
    assert peer.local == (US, 7001)


def test_mtu_bounds_the_datagram(eal):
    r = UdpRawEnd(mtu=576)
    try:
        ep = bind(r, 7000)
        ep.sendto(b"x" * 548, PEER, 9)
        assert oserror(ep.sendto, b"x" * 549, PEER, 9) == errno.EMSGSIZE
    finally:
        r.close()


def test_close_is_idempotent_and_frees_the_port(raw):
    ep = bind(raw, 7000, target=(t := Target()))
    ep.close()
    ep.close()
    assert ep.closed and raw.stack.counters()["udp"]["endpoints"] == 0
    assert oserror(ep.sendto, b"x", PEER, 9) == errno.EBADF
    assert oserror(ep.connect, PEER, 9) == errno.EBADF
    out = raw.exchange(to_us(b"late", dport=7000))
    assert len(out) == 1 and out[0][34:36] == b"\x03\x03"   # closed: port unreachable
    assert t.got == []
    again = bind(raw, 7000)
    assert again.local_port == 7000


@pytest.mark.parametrize("victim", [0, 1, 2])
def test_closing_one_of_a_chain_keeps_the_others(eal, victim):
    """Endpoints on one port (different addresses) share a chain in the port table."""
    r = UdpRawEnd(loopback=True)
    try:
        hosts = [US, "127.0.0.1", "127.0.0.2"]
        targets = [Target() for _ in hosts]
        eps = [bind(r, 7000, host=h, target=t) for h, t in zip(hosts, targets)]
        sender = bind(r)
        eps[victim].close()
        for h in hosts:
            sender.sendto(h.encode(), h, 7000)
        r.exchange()
        for i, (h, t) in enumerate(zip(hosts, targets)):
            assert [d for d, _ in t.got] == ([] if i == victim else [h.encode()])
        assert r.stack.counters()["udp"]["no_port"] == 1
        assert bind(r, 7000, host=hosts[victim]).local_port == 7000
        assert oserror(bind, r, 7000) == errno.EADDRINUSE
    finally:
        r.close()


def test_stack_close_closes_every_endpoint(eal):
    r = UdpRawEnd()
    eps = [bind(r) for _ in range(3)]
    eps[0].pause_reading()
    r.exchange(to_us(b"held", dport=eps[0].local_port))
    assert r.stack.counters()["held_mbufs"]["udp"] == 1
    r.close()                                          # the mempool check is automatic
    assert all(ep.closed for ep in eps)


def test_an_endpoint_can_close_itself_from_its_callback(raw):
    t = Target(on_datagram=lambda ep, data, addr: ep.close())
    ep = bind(raw, 7000, target=t)
    out = raw.exchange(to_us(b"one", dport=7000), to_us(b"two", dport=7000))
    assert t.got == [(b"one", (PEER, 4000))] and ep.closed
    assert len(out) == 1 and out[0][34:36] == b"\x03\x03"   # the second found no one
    assert t.errors == []


def test_an_endpoint_can_reply_from_its_callback(raw):
    t = Target(on_datagram=lambda ep, data, addr: ep.sendto(data.upper(), *addr))
    bind(raw, 7000, target=t)
    out = raw.exchange(to_us(b"echo me", dport=7000))
    assert len(out) == 1 and out[0][42:] == b"ECHO ME"
    assert out[0][34:38] == bytes.fromhex("1b58 0fa0")         # 7000 -> 4000


def test_paused_reading_holds_datagrams_in_order_then_delivers_at_the_next_step(raw):
    ep = bind(raw, 7000, target=(t := Target()))
    ep.pause_reading()
    raw.exchange(*(to_us(bytes([i]) * 10, dport=7000) for i in range(5)))
    assert t.got == [] and ep.q_len == 5
    assert raw.stack.counters()["held_mbufs"]["udp"] == 5
    ep.resume_reading()
    assert t.got == []                                 # never from inside resume_reading()
    raw.stack.poll()
    assert [d for d, _ in t.got] == [bytes([i]) * 10 for i in range(5)]
    assert raw.stack.counters()["held_mbufs"]["udp"] == 0 and ep.q_charged == 0


def test_a_full_receive_queue_drops_and_counts(eal):
    r = UdpRawEnd(udp_rcvbuf=4096)                          # room for one datagram of 10 bytes
    try:
        ep = bind(r, 7000, target=(t := Target()))
        ep.pause_reading()
        r.exchange(*(to_us(b"%d" % i * 10, dport=7000) for i in range(3)))
        c = r.stack.counters()["udp"]
        assert c["datagrams_in"] == 1 and c["rcvbuf_errors"] == 2 and c["in_errors"] == 2
        ep.resume_reading()
        r.stack.poll()
        assert [d for d, _ in t.got] == [b"0" * 10]
    finally:
        r.close()


def test_pausing_from_the_callback_while_draining_stops_the_drain(raw):
    t = Target(on_datagram=lambda ep, data, addr: ep.pause_reading())
    ep = bind(raw, 7000, target=t)
    ep.pause_reading()
    raw.exchange(*(to_us(b"%d" % i, dport=7000) for i in range(3)))
    for expect in (1, 2, 3):
        ep.resume_reading()
        raw.stack.poll()
        assert len(t.got) == expect
    assert [d for d, _ in t.got] == [b"0", b"1", b"2"]


def test_closing_a_paused_endpoint_frees_what_it_held(raw):
    ep = bind(raw, 7000)
    ep.pause_reading()
    raw.exchange(to_us(b"a", dport=7000), to_us(b"b", dport=7000))
    assert raw.stack.counters()["held_mbufs"]["udp"] == 2
    ep.close()
    assert raw.stack.counters()["held_mbufs"]["udp"] == 0
    assert raw.stack.counters()["udp"]["queued"] == 0


def test_loopback_addresses_when_loopback_is_on(eal):
    r = UdpRawEnd(loopback=True)
    try:
        srv = bind(r, 7000, host="127.0.0.1", target=(t := Target()))
        cli = bind(r)
        cli.sendto(b"over lo", "127.0.0.1", 7000)
        r.exchange()
        assert t.got == [(b"over lo", ("127.0.0.1", cli.local_port))]
        cli.connect("127.0.0.1", 7000)
        assert cli.local == ("127.0.0.1", cli.local_port)
        assert srv.local == ("127.0.0.1", 7000)
        assert oserror(srv.sendto, b"out", PEER, 9) == errno.EINVAL   # 127/8 stays home
        assert r.exchange() == []
    finally:
        r.close()
