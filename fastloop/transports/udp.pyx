# cython: language_level=3
"""asyncio's DatagramTransport for a userspace UDP endpoint.

    UdpEndpoint (net/udp) --on_datagram/on_error--> DatagramSink --> DatagramProtocol

Datagrams are copied once, from the mbuf into the bytes handed to datagram_received(); the
sender's address tuple is reused while consecutive datagrams come from the same peer. As in
asyncio, reading starts only after connection_made() has run (the endpoint holds what comes
before), a send that fails reports through error_received(), and an ICMP error about a
datagram we sent arrives as error_received(ConnectionRefusedError...) too. Sends never
block: a datagram goes into an mbuf at once, so the write buffer is always empty.
"""
import errno
import os
import warnings

from asyncio import constants, futures, transports
from asyncio.log import logger
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from cpython.bytes cimport PyBytes_FromStringAndSize

from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.net.udp.endpoint cimport UdpSink, UdpEndpoint, addr_str


cdef class DatagramSink(UdpSink):
    cdef public object transport
    cdef object protocol
    cdef uint32_t last_addr
    cdef uint16_t last_port
    cdef object last_tuple

    cdef void on_datagram(self, UdpEndpoint ep, const uint8_t *data, uint32_t n,
                          uint32_t src_addr, uint16_t src_port) noexcept:
        if self.transport is None:
            return
        try:
            if self.last_tuple is None or src_addr != self.last_addr or src_port != self.last_port:
                self.last_tuple = (addr_str(src_addr), src_port)
                self.last_addr = src_addr
                self.last_port = src_port
            self.transport._protocol.datagram_received(
                PyBytes_FromStringAndSize(<const char *>data, n), self.last_tuple)
        except BaseException as exc:
            _callback_failed(self.transport, exc, "datagram_received")

    cdef void on_error(self, UdpEndpoint ep, int error, uint32_t addr, uint16_t port) noexcept:
        if self.transport is None:
            return
        try:
            self.transport._protocol.error_received(OSError(error, os.strerror(error)))
        except BaseException as exc:
            _callback_failed(self.transport, exc, "error_received")


cdef void _callback_failed(object transport, object exc, str what) noexcept:
    try:
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            transport._loop._fl_callback_error(exc, transport)
        else:
            transport._fatal_error(exc, f"Fatal error: protocol.{what}() call failed.")
    except BaseException:
        pass


class DatagramTransport(transports._FlowControlMixin, transports.DatagramTransport):
    def __init__(self, loop, UdpEndpoint ep, DatagramSink sink, protocol, address=None,
                 waiter=None):
        super().__init__(None, loop)
        self._ep = ep
        self._sink = sink
        self._protocol = protocol
        self._address = address
        self._closing = False
        self._conn_lost = 0
        self._extra["sockname"] = ep.local
        self._extra["peername"] = ep.remote
        self._extra["socket"] = None
        sink.transport = self
        ep.pause_reading()                     # until connection_made() has run
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        state = "closed" if self._ep is None else repr(self._ep)
        return f"<fastloop DatagramTransport {state}>"

    def __del__(self, _warn=warnings.warn):
        if self._ep is not None and not self._closing:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._ep.close()

    def _start_reading(self):
        if self._ep is not None and not self._closing:
            self._ep.resume_reading()

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol

    def is_closing(self):
        return self._closing

    def get_write_buffer_size(self):
        return 0

    def sendto(self, data, addr=None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = None
        if self._ep is None:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        try:
            if addr is None:
                self._ep.sendto(data)
            else:
                self._ep.sendto(data, addr[0], addr[1])
        except OSError as exc:
            self._protocol.error_received(exc)

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._shutdown(None)

    def abort(self):
        self._closing = True
        self._shutdown(None)

    def _fatal_error(self, exc, message="Fatal error on datagram transport"):
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler({"message": message, "exception": exc,
                                               "transport": self, "protocol": self._protocol})
        self._closing = True
        self._shutdown(exc)

    def _shutdown(self, exc):
        ep = self._ep
        if ep is None:
            return
        self._ep = None
        self._sink.transport = None
        ep.close()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._protocol = None
