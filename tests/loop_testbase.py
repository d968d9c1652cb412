"""One test, several loops (uvloop's _testbase pattern).

`any_loop` runs a test on stdlib asyncio, on uvloop, and on fastloop with the stack-loopback
mode, so that 127.0.0.1 is served by the userspace stack: the same asyncio code, with the
same assertions, crosses the kernel's TCP in the first two and ours in the third. Tests use
`LOCAL` as the host and port 0.

`fastloop_tap` gives a fastloop loop whose stack is on a fresh net_tap, with the kernel on the
other side (`kernel_ip`): for tests against the Linux TCP stack as the peer.
"""
import asyncio
import contextlib
import os
import ssl

import pytest

import fastloop
from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.stack import Stack
from conftest import unique_ifname, unique_subnet

LOCAL = "127.0.0.1"
CERTS = os.path.join(os.path.dirname(__file__), "certs")
LOOP_KINDS = ("asyncio", "uvloop", "fastloop")


class LoopCase:
    """What a test gets: the loop, its kind, and helpers."""

    def __init__(self, kind, loop, stack=None):
        self.kind = kind
        self.loop = loop
        self.stack = stack

    def run(self, coro, timeout=30):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def tcp_counters(self):
        return self.stack.counters()["tcp"] if self.stack is not None else None


def _close_loop(loop):
    if loop.is_closed():
        asyncio.set_event_loop(None)
        return
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@contextlib.contextmanager
def make_case(kind):
    stack = peer = None
    if kind == "asyncio":
        loop = asyncio.new_event_loop()
    elif kind == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        # the device only carries what is not ours: with loopback on, 127/8 never leaves
        # the stack, so a ring pair is all the device this needs
        a, peer = ring_pair()
        net = unique_subnet()
        stack = Stack(StackConfig(address=f"{net}.2/24", tap_peer=None, loopback=True),
                      device=a)
        loop = fastloop.new_event_loop(stack)
    asyncio.set_event_loop(loop)
    try:
        yield LoopCase(kind, loop, stack)
        if stack is not None and not loop.is_closed():
            assert_nothing_left(loop, stack)
    finally:
        _close_loop(loop)
        if stack is not None:
            stack.close()
            peer.close()


def assert_nothing_left(loop, stack):
    """After a test: no transport still attached to a connection, no UDP endpoint bound,
    and (once the closes finish) nothing but TIME-WAIT in the table."""
    for _ in range(200):
        if all(c.state_name == "TIME_WAIT" for c in stack.tcp.connection_list()):
            break
        loop.run_until_complete(asyncio.sleep(0.005))
    conns = stack.tcp.connection_list()
    assert all(c.sink is None for c in conns), [c for c in conns if c.sink is not None]
    assert [c for c in conns if c.state_name != "TIME_WAIT"] == []
    assert stack.udp.endpoint_list() == []


@pytest.fixture(params=LOOP_KINDS)
def any_loop(request, eal):
    with make_case(request.param) as case:
        yield case


@pytest.fixture(params=("asyncio", "fastloop"))
def strict_loop(request, eal):
    """For the parts of asyncio's contract uvloop does not follow: it raises on a write after
    close(), where asyncio ignores and counts it; it has no loop.sendfile(); closing it closes
    open transports without asyncio's ResourceWarning; a pause_reading() in connection_made()
    does not keep the first data from data_received()."""
    with make_case(request.param) as case:
        yield case


@pytest.fixture
def fastloop_tap(eal):
    """A fastloop loop on a fresh tap; case.kernel_ip is the kernel's side, case.our_ip ours."""
    ifname, net = unique_ifname(), unique_subnet()
    cfg = StackConfig(iface=f"tap:{ifname}", address=f"{net}.2/24", tap_peer=f"{net}.1")
    loop = fastloop.new_event_loop(cfg)
    case = LoopCase("fastloop-tap", loop)
    case.stack = loop.stack
    case.kernel_ip, case.our_ip, case.ifname = f"{net}.1", f"{net}.2", ifname
    asyncio.set_event_loop(loop)
    try:
        yield case
    finally:
        _close_loop(loop)


def server_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem"))
    return ctx


def client_context():
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                     cafile=os.path.join(CERTS, "cert.pem"))
    return ctx
