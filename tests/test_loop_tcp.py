"""TCP transports and servers: the same tests on asyncio, uvloop and fastloop (stack loopback).

Each test asserts what asyncio's documented contract says, so a difference between the loops
is a failure of the odd one out. On fastloop the counters prove the bytes crossed our stack.
TLS (ssl=, start_tls, close_notify): tests/test_loop_tls.py.
"""
import asyncio
import hashlib
import socket

import pytest

from loop_testbase import LOCAL, any_loop, strict_loop  # noqa: F401

MIB = 1 << 20


class Recorder(asyncio.Protocol):
    """Keeps every event in order, with the data joined."""

    def __init__(self, keep_open_on_eof=False):
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.keep_open = keep_open_on_eof
        self.lost = asyncio.get_event_loop().create_future()
        self.eof = asyncio.get_event_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)

    def pause_writing(self):
        self.events.append("pause_writing")

    def resume_writing(self):
        self.events.append("resume_writing")


class EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False          # close after the peer's FIN: our FIN follows the echoed data


async def echo_pair(loop):
    """An EchoServer on LOCAL and a Recorder connected to it: (server, port, tr, pr)."""
    server = await loop.create_server(EchoServer, LOCAL, 0)
    port = server.sockets[0].getsockname()[1]
    tr, pr = await loop.create_connection(Recorder, LOCAL, port)
    return server, port, tr, pr


async def close_server(server):
    server.close()
    await server.wait_closed()


async def _until(pred, loop_timeout=10):
    for _ in range(int(loop_timeout * 1000)):
        if pred():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def test_echo_protocol_extra_info_and_orderly_close(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        server, port, tr, pr = await echo_pair(loop)
        if any_loop.kind != "uvloop":        # uvloop's transports only quack like one
            assert isinstance(tr, asyncio.Transport)
        assert tr.get_extra_info("peername") == (LOCAL, port)
        assert tr.get_extra_info("sockname")[0] == LOCAL
        sock = tr.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        tr.write(b"hello ")
        tr.writelines([b"wor", b"ld"])
        await _until(lambda: len(pr.data) == 11)
        assert bytes(pr.data) == b"hello world"
        assert tr.can_write_eof()
        tr.write_eof()
        with pytest.raises(RuntimeError):
            tr.write(b"after eof")
        await pr.eof
        await pr.lost
        assert pr.events == ["made", "data", "eof", ("lost", None)]
        assert tr.is_closing()
        await close_server(server)
        return loop
    any_loop.run(main())
    if any_loop.stack is not None:
        c = any_loop.tcp_counters()
        assert c["passive_opens"] >= 1 and c["active_opens"] >= 1


def test_streams_echo_many_lines(any_loop):
    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(LOCAL, port)
        for i in range(200):
            writer.write(b"line %d\n" % i)
        await writer.drain()
        got = [await reader.readline() for _ in range(200)]
        assert got == [b"LINE %d\n" % i for i in range(200)]
        writer.write_eof()
        assert await reader.read() == b""
        assert reader.at_eof()
        writer.close()
        await writer.wait_closed()
        await close_server(server)
    any_loop.run(main())


def test_bulk_both_ways_with_flow_control(any_loop):
    """8 MiB each way through a server that pauses reading: the writer's buffer passes the
    high-water mark (pause_writing) and drains again (resume_writing); nothing is lost."""
    data = bytes(range(256)) * (8 * MIB // 256)

    class SlowReader(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.digest = hashlib.sha256()
            self.n = 0
            self.paused_once = False

        def data_received(self, chunk):
            self.digest.update(chunk)
            self.n += len(chunk)
            if not self.paused_once and self.n > MIB:
                self.paused_once = True
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(0.2, self.transport.resume_reading)

        def eof_received(self):
            self.transport.write(self.digest.hexdigest().encode())
            return False

    async def main():
        loop = asyncio.get_running_loop()
        srv = SlowReader()
        server = await loop.create_server(lambda: srv, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, LOCAL, port)
        tr.set_write_buffer_limits(high=64 * 1024)
        assert tr.get_write_buffer_limits()[1] == 64 * 1024
        tr.write(data)
        assert tr.get_write_buffer_size() > 0
        assert pr.events[-1] == "pause_writing"
        await _until(lambda: tr.get_write_buffer_size() == 0, 20)
        tr.write_eof()
        await pr.lost
        assert bytes(pr.data) == hashlib.sha256(data).hexdigest().encode()
        assert "resume_writing" in pr.events
        assert srv.n == len(data) and srv.paused_once
        await close_server(server)
    any_loop.run(main())


def test_what_write_could_not_send_at_once_is_kept_as_written(any_loop):
    """The transport keeps what the connection did not take: a bytearray changed after
    write() (or a bytes object dropped) must not change what the peer receives."""
    chunk = bytes(range(256)) * (MIB // 256)

    async def main():
        server, port, tr, pr = await echo_pair(asyncio.get_running_loop())
        mutable = bytearray(chunk)
        tr.write(mutable)
        tr.write(b"x" * 100)                       # small writes after it, buffered together
        tr.write(memoryview(mutable)[:1000])
        tr.write(bytes(32 * MIB))                  # more than any socket buffer takes
        mutable[:] = bytes(len(mutable))           # after write(): must not matter
        assert tr.get_write_buffer_size() > 0
        want = chunk + b"x" * 100 + chunk[:1000] + bytes(32 * MIB)
        await _until(lambda: len(pr.data) >= len(want), 20)
        assert bytes(pr.data) == want
        tr.close()
        await pr.lost
        await close_server(server)
    any_loop.run(main())


def test_half_close_server_keeps_writing(any_loop):
    class Replier(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.got = b""

        def data_received(self, d):
            self.got += d

        def eof_received(self):
            asyncio.get_running_loop().call_later(0.05, self.reply)
            return True            # half-closed: we may still write

        def reply(self):
            self.transport.write(b"you said " + self.got)
            self.transport.close()

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Replier, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(keep_open_on_eof=True), LOCAL, port)
        tr.write(b"ping")
        tr.write_eof()
        await pr.eof
        assert bytes(pr.data) == b"you said ping"
        assert not tr.is_closing()          # eof_received returned True
        tr.close()
        await pr.lost
        assert pr.events == ["made", "data", "eof", ("lost", None)]
        await close_server(server)
    any_loop.run(main())


def test_abort_drops_buffer_and_peer_sees_the_end(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        peers = []

        def factory():
            p = Recorder()
            peers.append(p)
            return p
        server = await loop.create_server(factory, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, LOCAL, port)
        await _until(lambda: peers)
        tr.abort()
        tr.abort()                           # idempotent
        assert tr.is_closing()
        assert (await pr.lost) is None
        await peers[0].lost                  # the server side learns the connection ended
        assert peers[0].events[0] == "made" and peers[0].events[-1][0] == "lost"
        tr.close()                           # after abort: a no-op
        await close_server(server)
    any_loop.run(main())


def test_close_then_connection_lost_once_and_writes_ignored(strict_loop):
    async def main():
        loop = asyncio.get_running_loop()
        server, port, tr, pr = await echo_pair(loop)
        tr.write(b"bye")
        tr.close()
        tr.close()
        assert tr.is_closing()
        assert (await pr.lost) is None
        tr.write(b"ignored")                 # asyncio ignores (and counts) writes after close
        assert pr.events.count(("lost", None)) == 1
        await close_server(server)
    strict_loop.run(main())


def test_connection_refused(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        await close_server(server)
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, LOCAL, port)
    any_loop.run(main())


def test_server_close_semantics(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, LOCAL, 0, start_serving=False)
        assert not server.is_serving()
        port = server.sockets[0].getsockname()[1]
        await server.start_serving()
        assert server.is_serving()
        tr, pr = await loop.create_connection(Recorder, LOCAL, port)
        server.close()
        assert not server.is_serving()
        assert list(server.sockets) == []
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, LOCAL, port)
        tr.write(b"still served")            # an accepted connection outlives the listener
        await _until(lambda: bytes(pr.data) == b"still served")
        tr.close()
        await pr.lost
        await asyncio.wait_for(server.wait_closed(), 5)
    any_loop.run(main())


def test_address_in_use(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(OSError) as e:
            await loop.create_server(EchoServer, LOCAL, port)
        assert e.value.errno == 98           # EADDRINUSE
        await close_server(server)
    any_loop.run(main())


def test_names_and_lists_of_hosts_listen_where_their_addresses_route(any_loop):
    """create_server takes a name or a list of hosts, as asyncio does: on fastloop in
    stack-loopback mode each of them is on the userspace stack, as 127.0.0.1 itself is."""
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, [LOCAL, "127.0.0.2"], 0)
        addrs = sorted(s.getsockname() for s in server.sockets)
        assert [a[0] for a in addrs] == [LOCAL, "127.0.0.2"]
        for addr in addrs:
            tr, pr = await loop.create_connection(Recorder, *addr)
            tr.write(b"to " + addr[0].encode())
            await _until(lambda: bytes(pr.data) == b"to " + addr[0].encode())
            tr.close()
            await pr.lost
        await close_server(server)
        server = await loop.create_server(EchoServer, "localhost", 0, family=socket.AF_INET)
        port = server.sockets[0].getsockname()[1]
        assert server.sockets[0].getsockname() == (LOCAL, port)
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(b"by name\n")
        assert await reader.readline() == b"by name\n"
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        with pytest.raises(ValueError):           # asyncio's: neither host/port nor sock
            await loop.create_server(EchoServer)
    any_loop.run(main())
    if any_loop.stack is not None:
        assert any_loop.tcp_counters()["passive_opens"] == 3


def test_buffered_protocol_gets_every_byte(any_loop):
    data = bytes(range(251)) * 4000

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1000)       # small: many get_buffer/buffer_updated rounds
            self.got = bytearray()
            self.done = asyncio.get_event_loop().create_future()

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            assert 0 < nbytes <= len(self.buf)
            self.got += self.buf[:nbytes]

        def eof_received(self):
            self.done.set_result(bytes(self.got))

        def connection_lost(self, exc):
            pass

    async def main():
        loop = asyncio.get_running_loop()
        proto = Buffered()
        server = await loop.create_server(lambda: proto, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, LOCAL, port)
        tr.write(data)
        tr.write_eof()
        assert await proto.done == data
        await pr.lost
        await close_server(server)
    any_loop.run(main())


def test_sendfile_fallback(strict_loop, tmp_path):
    path = tmp_path / "blob"
    blob = bytes(range(256)) * 4096
    path.write_bytes(blob)

    async def main():
        loop = asyncio.get_running_loop()
        got = []
        done = loop.create_future()

        async def handle(reader, writer):
            got.append(await reader.read())
            done.set_result(None)
            writer.close()
        server = await asyncio.start_server(handle, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, LOCAL, port)
        with open(path, "rb") as f:
            sent = await loop.sendfile(tr, f, offset=100)
        assert sent == len(blob) - 100
        tr.write_eof()
        await done
        assert got[0] == blob[100:]
        tr.close()
        await close_server(server)
    strict_loop.run(main())


def test_socket_options_reach_the_connection(any_loop):
    async def main():
        loop = asyncio.get_running_loop()
        server, port, tr, pr = await echo_pair(loop)
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        tr.close()
        await pr.lost
        await close_server(server)
    any_loop.run(main())


def test_unclosed_transport_warns_like_asyncio(strict_loop):
    """A loop closed under an open connection: collecting the transport gives asyncio's
    ResourceWarning, and nothing is left in the stack (the mempool check)."""
    import gc
    import warnings

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, LOCAL, port)
        server.close()
        return tr
    tr = strict_loop.run(main())
    strict_loop.loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del tr
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "nclosed" in str(w.message)
               for w in caught), [str(w.message) for w in caught]


def test_keepalive_set_through_the_socket_probes_an_idle_connection(strict_loop):
    """SO_KEEPALIVE + TCP_KEEPIDLE=1 on an established connection: on fastloop the stack's
    keepalive timer is armed at once (the probes are in its counters); on both loops the
    connection stays up, since the peer answers the probes."""
    async def main():
        loop = asyncio.get_running_loop()
        server, port, tr, pr = await echo_pair(loop)
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        await asyncio.sleep(2.5)
        tr.write(b"alive")
        await _until(lambda: bytes(pr.data) == b"alive")
        tr.close()
        await pr.lost
        await close_server(server)
    strict_loop.run(main())
    if strict_loop.stack is not None:
        assert strict_loop.tcp_counters()["keepalive_probes"] >= 1


def test_pause_and_resume_reading_after_the_peer_finished(strict_loop):
    """Reading paused across the peer's data and FIN: nothing is delivered while paused; on
    resume the data, then eof_received, arrive in order; pausing and resuming again after
    the end is harmless."""
    class Sender(asyncio.Protocol):
        def connection_made(self, transport):
            transport.write(b"last words")
            transport.write_eof()

        def eof_received(self):
            return False

    class PausedAtStart(Recorder):
        def __init__(self):
            super().__init__(keep_open_on_eof=True)

        def connection_made(self, transport):
            super().connection_made(transport)
            transport.pause_reading()            # before anything can be read

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Sender, LOCAL, 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(PausedAtStart, LOCAL, port)
        await asyncio.sleep(0.2)                 # the peer's data and FIN arrive meanwhile
        assert pr.events == ["made"]
        tr.resume_reading()
        await pr.eof
        assert bytes(pr.data) == b"last words" and pr.events == ["made", "data", "eof"]
        tr.pause_reading()
        tr.resume_reading()
        tr.close()
        assert (await pr.lost) is None
        await close_server(server)
    strict_loop.run(main())
