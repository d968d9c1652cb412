# cython: language_level=3
"""Sinks that forward a connection's events to plain Python objects: for tests, tools and
anything not written in Cython. The event loop's transports subclass TcpSink directly."""

from fastloop.net.tcp.tcb cimport TcpSink, TcpListenerSink, TcpListener, TcpConnection
from fastloop.net.l4 cimport report_handler_error as _report


cdef class CallbackSink(TcpSink):
    """Calls target.established(c), .data(c), .eof(c), .send_space(c), .closed(c, errno),
    for those the target has."""
    cdef readonly object target

    def __init__(self, target):
        self.target = target

    cdef void _call(self, str name, TcpConnection c) noexcept:
        try:
            fn = getattr(self.target, name, None)
            if fn is not None:
                fn(c)
        except BaseException:
            _report(self.target, name)

    cdef void on_established(self, TcpConnection c) noexcept:
        self._call("established", c)

    cdef void on_data(self, TcpConnection c) noexcept:
        self._call("data", c)

    cdef void on_eof(self, TcpConnection c) noexcept:
        self._call("eof", c)

    cdef void on_send_space(self, TcpConnection c) noexcept:
        self._call("send_space", c)

    cdef void on_closed(self, TcpConnection c, int error) noexcept:
        try:
            fn = getattr(self.target, "closed", None)
            if fn is not None:
                fn(c, error)
        except BaseException:
            _report(self.target, "closed")


cdef class CallbackListener(TcpListenerSink):
    """factory(c) returns the target for a new connection's CallbackSink, or None to reset it."""
    cdef readonly object factory

    def __init__(self, factory):
        self.factory = factory

    cdef TcpSink on_accept(self, TcpListener l, TcpConnection c):
        target = self.factory(c)
        return None if target is None else CallbackSink(target)
