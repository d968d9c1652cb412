# cython: language_level=3
"""asyncio's Transport contract for a userspace TCP connection.

    TcpConnection (net/tcp) --sink events--> ConnSink --> TcpTransport --> Protocol

`ConnSink` is the C side: TCP calls it during the poll step's rx phase, and it forwards to the
transport once the transport exists (until then the data waits in the connection's mbufs).
`TcpTransport` is an `asyncio.Transport` with the selector transports' semantics: the write
buffer is what the connection's send buffer did not take, `connection_made` and the first
delivery are scheduled with call_soon (as asyncio does), `close()` hands the connection to
TCP for an orderly close and calls `connection_lost(None)` soon, as a kernel socket's close
does, and a connection that ends with an error reports it as asyncio's OSError subclasses.
"""
import collections
import errno
import functools
import operator
import os
import warnings

from asyncio import constants, futures, protocols, transports
from asyncio.log import logger

from fastloop.net.tcp.tcb cimport TcpSink, TcpListenerSink, TcpListener, TcpConnection

from fastloop.transports.usocket import UserspaceSocket

cdef Py_ssize_t RECV_CHUNK = 262144  # most bytes handed to data_received() at once
cdef Py_ssize_t WRITE_GATHER_MAX = 16384  # shorter writes are copied together when buffered
_LAZY_EXTRAS = frozenset(("socket", "peername", "sockname"))


def error_from_errno(int err):
    """asyncio's exception for a connection's errno (OSError picks the subclass)."""
    if err == errno.ETIMEDOUT:
        return TimeoutError(err, os.strerror(err))
    return OSError(err, os.strerror(err))


cdef class ConnSink(TcpSink):
    """What TCP tells a connection's owner, kept until a transport is attached; and the
    transport's own state, so that delivering data and write() run in C (TcpTransport's
    attributes of the same names are views of these)."""
    cdef public object transport       # TcpTransport, or None before it exists
    cdef public object waiter          # connect: resolved when established, failed when closed
    cdef public bint eof               # the peer's FIN arrived
    cdef public bint closed
    cdef public int error
    cdef public TcpConnection conn     # the transport's connection; None once it let go
    cdef public object protocol
    cdef public bint buffered          # protocol is a BufferedProtocol
    cdef public bint started           # connection_made has run: deliveries may begin
    cdef public bint paused            # pause_reading()
    cdef public bint closing
    cdef public bint eof_written       # write_eof() was called
    cdef public int conn_lost
    cdef public object buffer          # what the send buffer did not take (a deque)
    cdef public Py_ssize_t buffer_size

    cdef void on_established(self, TcpConnection c) noexcept:
        w = self.waiter
        if w is not None:
            self.waiter = None
            try:
                if not w.done():
                    w.set_result(c)
            except BaseException as e:
                _report(self, e)

    cdef void on_data(self, TcpConnection c) noexcept:
        if self.transport is not None:
            try:
                self.deliver_data()
            except BaseException as e:
                _report(self, e)

    cdef void on_eof(self, TcpConnection c) noexcept:
        self.eof = True
        if self.transport is not None:
            try:
                self.transport._fl_on_eof()
            except BaseException as e:
                _report(self, e)

    cdef void on_send_space(self, TcpConnection c) noexcept:
        if self.transport is not None:
            try:
                self.transport._flush_buffer()
            except BaseException as e:
                _report(self, e)

    cdef void on_closed(self, TcpConnection c, int error) noexcept:
        self.closed = True
        self.error = error
        try:
            w = self.waiter
            if w is not None:
                self.waiter = None
                if not w.done():
                    w.set_exception(error_from_errno(error or errno.ECONNRESET))
            elif self.transport is not None:
                self.transport._fl_on_closed(error)
        except BaseException as e:
            _report(self, e)

    cpdef deliver_data(self):
        """Hand the waiting in-order data to the protocol (one copy out of the mbufs)."""
        cdef TcpConnection conn = self.conn
        cdef Py_ssize_t n
        if not self.started or self.paused or self.closing or conn is None:
            return
        protocol = self.protocol
        try:
            if self.buffered:
                while conn.rcv.bytes and not self.paused and not self.closing:
                    buf = protocol.get_buffer(-1)
                    if not len(buf):
                        raise RuntimeError("get_buffer() returned an empty buffer")
                    n = conn.recv_to(buf)
                    protocol.buffer_updated(n)
                    protocol = self.protocol
            else:
                while conn.rcv.bytes and not self.paused and not self.closing:
                    protocol.data_received(conn.recv_bytes(RECV_CHUNK))
                    protocol = self.protocol
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def write(self, data):
        """TcpTransport.write (the transport's `write` attribute is this bound method)."""
        cdef TcpConnection conn = self.conn
        cdef Py_ssize_t n
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if self.eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self.conn_lost or conn is None:
            if self.conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self.conn_lost += 1
            return
        if not self.buffer:
            try:
                n = conn.send_from(data)
            except OSError as exc:
                self.transport._fatal_error(exc, "Fatal write error on userspace TCP transport")
                return
            if n == len(data):
                return
            self.transport._buffer_append(data, n)
            self.transport._flush_buffer()        # ends on a refused send: TCP calls us back
        else:
            self.transport._buffer_append(data, 0)
        self.transport._maybe_pause_protocol()

    def is_closing(self):
        return self.closing


cdef void _report(object sink, object exc) noexcept:
    """An exception escaped the transport's own handlers: the loop re-raises SystemExit and
    KeyboardInterrupt after the poll step, and reports anything else."""
    try:
        t = sink.transport
        loop = t._loop if t is not None else None
        if loop is not None:
            loop._fl_callback_error(exc, t)
        else:
            logger.error("fastloop: exception in a TCP event", exc_info=exc)
    except BaseException:
        pass


cdef class ListenerSink(TcpListenerSink):
    """A server's listener: each handshake that completes becomes a transport + protocol."""
    cdef object loop
    cdef object protocol_factory
    cdef object ssl_context
    cdef object server
    cdef object ssl_handshake_timeout
    cdef object ssl_shutdown_timeout

    def __init__(self, loop, protocol_factory, ssl_context, server, ssl_handshake_timeout,
                 ssl_shutdown_timeout):
        self.loop = loop
        self.protocol_factory = protocol_factory
        self.ssl_context = ssl_context
        self.server = server
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.ssl_shutdown_timeout = ssl_shutdown_timeout

    cdef TcpSink on_accept(self, TcpListener l, TcpConnection c):
        cdef ConnSink sink = ConnSink()
        try:
            protocol = self.protocol_factory()
            waiter = None
            if self.ssl_context is not None:
                from asyncio import sslproto
                waiter = self.loop.create_future()
                protocol = sslproto.SSLProtocol(
                    self.loop, protocol, self.ssl_context, waiter, server_side=True,
                    ssl_handshake_timeout=self.ssl_handshake_timeout,
                    ssl_shutdown_timeout=self.ssl_shutdown_timeout)
            transport = TcpTransport(self.loop, c, sink, protocol, server=self.server)
            if waiter is not None:
                waiter.add_done_callback(functools.partial(_accept_ssl_done, self.loop,
                                                           transport=transport))
        except BaseException as exc:
            self.loop.call_exception_handler({
                "message": "Error on transport creation for incoming connection",
                "exception": exc})
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                self.loop._fl_callback_error(exc, None)
            return None                               # the layer resets the connection
        return sink


def _accept_ssl_done(loop, fut, *, transport):
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        transport.close()
        if loop.get_debug():
            loop.call_exception_handler({
                "message": "Error on transport creation for incoming connection",
                "exception": exc, "transport": transport})


def _sink_attr(name):
    getter = operator.attrgetter(name)

    def setter(self, value):
        setattr(self._sink, name, value)
    return property(lambda self: getter(self._sink), setter)


class TcpTransport(transports._FlowControlMixin, transports.Transport):
    """asyncio.Transport over a userspace TcpConnection."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.FALLBACK

    def __init__(self, loop, TcpConnection conn, ConnSink sink, protocol, extra=None,
                 server=None, waiter=None):
        # what _FlowControlMixin.__init__ (with _set_write_buffer_limits()) and
        # set_protocol() do, inline: this runs for every connection
        self._extra = {} if extra is None else extra
        self._loop = loop
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        self._sink = sink
        sink.conn = conn
        self._tcb = conn                  # kept after the end, for the lazy extras
        sink.buffered = isinstance(protocol, protocols.BufferedProtocol)
        sink.protocol = protocol
        self._protocol_connected = True
        self._server = server
        # what the send buffer did not take: large bytes objects by reference (they cannot
        # change), small writes gathered in a bytearray of ours, anything else mutable copied
        # (asyncio copies every write it cannot send at once)
        sink.buffer = collections.deque()
        sink.buffer_size = 0
        self._eof_delivered = False
        self._lost_called = False
        self.write = sink.write           # the hot path, without a Python-level call
        self.is_closing = sink.is_closing
        if server is not None:
            server._attach()
        conn.nodelay = True               # asyncio sets TCP_NODELAY on every TCP transport
        sink.transport = self
        loop.call_soon(self._fl_connection_made, protocol, waiter)

    def _fl_connection_made(self, protocol, waiter):
        """connection_made, then deliveries may start, then a create_connection waiting for
        the transport returns: asyncio's order (three callbacks there, one here)."""
        try:
            protocol.connection_made(self)
        finally:
            self._fl_start()
            if waiter is not None:
                futures._set_result_unless_cancelled(waiter, None)

    def get_extra_info(self, name, default=None):
        """asyncio's extras; socket, peername and sockname are made at the first request (a
        connection that nobody asks saves their objects)."""
        if name in _LAZY_EXTRAS and name not in self._extra:
            conn = self._tcb
            self._extra["peername"] = conn.remote
            self._extra["sockname"] = conn.local
            self._extra["socket"] = UserspaceSocket(conn)
        return self._extra.get(name, default)

    # the transport's state, kept in the sink (see ConnSink)
    _conn = _sink_attr("conn")
    _protocol = _sink_attr("protocol")
    _buffered = _sink_attr("buffered")
    _started = _sink_attr("started")
    _paused = _sink_attr("paused")
    _closing = _sink_attr("closing")
    _eof = _sink_attr("eof_written")
    _conn_lost = _sink_attr("conn_lost")
    _buffer = _sink_attr("buffer")
    _buffer_size = _sink_attr("buffer_size")

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._conn is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        if self._conn is not None:
            info.append(f"{self._conn.local[0]}:{self._conn.local[1]} -> "
                        f"{self._conn.remote[0]}:{self._conn.remote[1]}")
            info.append(self._conn.state_name)
        info.append(f"write_bufsize={self._buffer_size}")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn=warnings.warn):
        if self._conn is not None and not self._closing:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._conn.sink = None
            self._conn.close()

    # ---- the protocol -----------------------------------------------------------------
    def set_protocol(self, protocol):
        self._buffered = isinstance(protocol, protocols.BufferedProtocol)
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self):
        return self._protocol

    def is_closing(self):
        return self._sink.closing

    def is_reading(self):
        return not self._closing and not self._paused

    def pause_reading(self):
        if self._closing or self._paused:
            return
        self._paused = True
        if self._conn is not None:                # None: both FINs done, nothing to read
            self._conn.reading_paused = True      # data waits in mbufs; the window closes
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self):
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._conn is not None:
            self._conn.reading_paused = False
        self._loop.call_soon(self._fl_deliver)
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    # ---- events from the connection (ConnSink) -----------------------------------------
    def _fl_start(self):
        self._started = True
        self._fl_deliver()

    def _fl_deliver(self):
        """Deliver what waited (data, EOF, the end) while reading was paused or not started."""
        sink = self._sink
        if self._conn is not None and self._conn.readable():
            self._fl_on_data()
        if sink.eof and not self._eof_delivered:
            self._fl_on_eof()
        if sink.closed and self._conn is not None:
            self._fl_on_closed(sink.error)

    def _fl_on_data(self):
        self._sink.deliver_data()

    def _fl_on_eof(self):
        if not self._started or self._paused or self._closing or self._eof_delivered:
            return
        if self._conn is not None and self._conn.readable():   # data first (asyncio's order)
            return
        self._eof_delivered = True
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    def _fl_on_closed(self, int error):
        """The connection ended under us: reset by the peer, timed out, or both FINs done.

        After an orderly end (both FINs, error 0) with the transport still open, as when
        eof_received() returned True and we wrote our last data, the transport stays open
        until the protocol closes it, as a kernel socket does."""
        if not self._started or self._conn is None:
            return
        if self._conn.readable() and not self._closing and not self._paused:
            self._fl_on_data()
        if self._conn is None:                    # the protocol closed us meanwhile
            return
        self._conn = None
        if error == 0 and not self._closing:
            return
        self._closing = True
        self._buffer.clear()
        self._buffer_size = 0
        self._loop.call_soon(self._call_connection_lost,
                             error_from_errno(error) if error else None)

    # ---- writing ------------------------------------------------------------------------
    def write(self, data):
        self._sink.write(data)

    def _buffer_append(self, data, Py_ssize_t start):
        rest = memoryview(data)[start:]
        buf = self._buffer
        n = len(rest)
        if n < WRITE_GATHER_MAX:
            if buf and type(buf[-1]) is bytearray:
                buf[-1] += rest
            else:
                buf.append(bytearray(rest))
        else:
            buf.append(rest if type(data) is bytes else bytes(rest))
        self._buffer_size += n

    def writelines(self, list_of_data):
        for data in list_of_data:
            self.write(data)

    def _flush_buffer(self):
        """The connection has send space: move the write buffer into it."""
        conn = self._conn
        if conn is None:
            return
        buf = self._buffer
        try:
            while buf:                        # until a send takes nothing: that one leaves
                head = buf[0]                 # send_space_wanted set, and we are called back
                n = conn.send(head)
                if not n:
                    break
                self._buffer_size -= n
                if n == len(head):
                    buf.popleft()
                elif type(head) is bytearray:
                    del head[:n]              # from the front: no copy of the rest
                else:
                    buf[0] = memoryview(head)[n:]
        except OSError as exc:
            self._fatal_error(exc, "Fatal write error on userspace TCP transport")
            return
        self._maybe_resume_protocol()
        if not buf:
            if self._closing:
                self._close_connection()
            elif self._eof:
                conn.shutdown()

    def get_write_buffer_size(self):
        return self._buffer_size

    def can_write_eof(self):
        return True

    def write_eof(self):
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer and self._conn is not None:
            self._conn.shutdown()

    # ---- ending -------------------------------------------------------------------------
    def close(self):
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._conn_lost += 1
            self._close_connection()

    def _close_connection(self):
        """All written data is in TCP's hands: close as a kernel socket does (FIN after the
        data, RST if unread data is waiting, RFC 2525 §2.17) and report the loss now; the
        connection finishes its close in the stack without us."""
        conn = self._conn
        self._conn = None
        if conn is not None:
            conn.sink = None
            conn.close()
        self._loop.call_soon(self._call_connection_lost, None)

    def abort(self):
        self._force_close(None)

    def _fatal_error(self, exc, message="Fatal error on transport"):
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler({
                "message": message, "exception": exc, "transport": self,
                "protocol": self._protocol})
        elif self._loop.get_debug():
            logger.debug("%r: %s", self, message, exc_info=True)
        self._force_close(exc)

    def _force_close(self, exc):
        conn = self._conn
        if conn is None:
            if not self._lost_called and not self._closing:
                self._closing = True
                self._loop.call_soon(self._call_connection_lost, exc)
            return
        self._conn = None
        self._buffer.clear()
        self._buffer_size = 0
        self._closing = True
        self._conn_lost += 1
        conn.sink = None
        conn.close()            # as asyncio's close(2) of the socket: FIN, or RST if unread data
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc):
        if self._lost_called:
            return
        self._lost_called = True
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._protocol = None
            self._sink.transport = None
            server = self._server
            if server is not None:
                server._detach()
                self._server = None
