"""Helpers for the TLS tests (test_loop_tls, test_loop_tls_kernel): protocols that record
what a TLS transport delivers, and a TLS endpoint of its own over a plain transport."""
import asyncio
import hashlib
import ssl

MIB = 1 << 20


async def until(pred, timeout=30):
    for _ in range(int(timeout * 1000)):
        if pred():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def sha(data):
    return hashlib.sha256(data).hexdigest()


class TlsRecorder(asyncio.Protocol):
    """The app protocol under a TLS transport: its events in order, the data hashed.
    `echo`: write back what arrives (True), or only its first `echo` bytes; `then`: "close"
    or "abort" once `size` bytes came (after echoing them)."""

    def __init__(self, echo=False, size=None, then=None):
        loop = asyncio.get_event_loop()
        self.events = []
        self.digest = hashlib.sha256()
        self.received = 0
        self.echo, self.size, self.then = echo, size, then
        self.transport = None
        self.lost = loop.create_future()
        self.made = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        before = self.received
        self.digest.update(data)
        self.received += len(data)
        if self.echo is True:
            self.transport.write(data)
        elif self.echo and before < self.echo:
            self.transport.write(data[:self.echo - before])
        if self.then is not None and self.received == self.size:
            getattr(self.transport, self.then)()

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)


class BioTlsPeer(asyncio.Protocol):
    """A TLS endpoint over a plain transport (ssl.SSLObject on memory BIOs), so that a test
    sees what arrives on the wire: the other side's close_notify (RFC 8446 §6.1), or the end
    of the TCP stream without one ("ragged"). It answers a close_notify with its own."""

    def __init__(self, ctx, server_side, server_hostname=None):
        loop = asyncio.get_event_loop()
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                server_hostname=server_hostname)
        self.data = bytearray()
        self.handshaken = loop.create_future()
        self.ended = loop.create_future()       # "close_notify", "ragged" or "reset"
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self._step()

    def data_received(self, data):
        self.incoming.write(data)
        self._step()

    def eof_received(self):
        self.incoming.write_eof()
        self._step()
        return False

    def connection_lost(self, exc):
        self._end("reset" if exc else "ragged")
        if not self.handshaken.done():
            self.handshaken.set_exception(ConnectionResetError("lost in the handshake"))

    def write(self, data):
        self.obj.write(data)
        self._flush()

    def close_notify(self):
        """Send our close_notify; the other side's answer ends the stream."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def _end(self, how):
        if not self.ended.done():
            self.ended.set_result(how)

    def _step(self):
        if not self.handshaken.done():
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except ssl.SSLError as exc:
                self.handshaken.set_exception(exc)
                self.transport.close()
                return
            self.handshaken.set_result(None)
        while not self.ended.done():
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLEOFError:                 # TCP ended with no close_notify
                self._end("ragged")
                self.transport.close()
                break
            if not chunk:                           # read() says close_notify with b""
                self._end("close_notify")
                self.close_notify()
                self.transport.close()
                break
            self.data += chunk
        self._flush()

    def _flush(self):
        out = self.outgoing.read()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)
