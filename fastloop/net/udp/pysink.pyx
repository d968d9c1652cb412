# cython: language_level=3
"""A sink that forwards an endpoint's events to a plain Python object: for tests, tools and
anything not written in Cython. The event loop's datagram transport subclasses UdpSink."""
import os

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from cpython.bytes cimport PyBytes_FromStringAndSize
from fastloop.net.udp.endpoint cimport UdpSink, UdpEndpoint, addr_str
from fastloop.net.l4 cimport report_handler_error as _report


cdef class CallbackUdpSink(UdpSink):
    """Calls target.datagram(ep, data, (host, port)) and target.error(ep, exc, (host, port))
    (exc an OSError such as ConnectionRefusedError), for those the target has."""
    cdef readonly object target

    def __init__(self, target):
        self.target = target

    cdef void on_datagram(self, UdpEndpoint ep, const uint8_t *data, uint32_t n,
                          uint32_t src_addr, uint16_t src_port) noexcept:
        try:
            fn = getattr(self.target, "datagram", None)
            if fn is not None:
                fn(ep, PyBytes_FromStringAndSize(<const char *>data, n),
                   (addr_str(src_addr), src_port))
        except BaseException:
            _report(self.target, "datagram")

    cdef void on_error(self, UdpEndpoint ep, int error, uint32_t addr, uint16_t port) noexcept:
        try:
            fn = getattr(self.target, "error", None)
            if fn is not None:
                fn(ep, OSError(error, os.strerror(error)), (addr_str(addr), port))
        except BaseException:
            _report(self.target, "error")
