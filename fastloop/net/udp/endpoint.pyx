# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Endpoints and sinks as the application sees them (see endpoint.pxd).

    ep = stack.udp.bind(sink, host=None, port=0)
    ep.connect("10.77.0.1", 53)          # default destination; only that peer is heard
    ep.sendto(b"query")                  # or ep.sendto(data, host, port)
    ep.pause_reading() / ep.resume_reading()
    ep.close()

Errors are OSError with the errno a kernel socket would give.
"""
import errno
import ipaddress
import os

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.stdlib cimport free
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.net.udp.counters cimport UDP_SEND_ERRORS
from fastloop.net.udp.output cimport udp_send


cdef str addr_str(uint32_t a):
    return f"{a >> 24}.{(a >> 16) & 0xff}.{(a >> 8) & 0xff}.{a & 0xff}"


cdef uint32_t addr_parse(str host) except? 0:
    """A dotted-quad IPv4 address (no name resolution: the event loop resolves names)."""
    return int(ipaddress.IPv4Address(host))


cdef uint32_t _destination(str host) except? 0:
    cdef uint32_t addr = addr_parse(host)
    if addr == 0 or (0xe0000000 <= addr < 0xffffffff):
        raise OSError(errno.EINVAL, f"{host}: not a unicast or broadcast address "
                      "(multicast is not supported)")
    return addr


cdef class UdpSink:
    cdef void on_datagram(self, UdpEndpoint ep, const uint8_t *data, uint32_t n,
                          uint32_t src_addr, uint16_t src_port) noexcept:
        pass

    cdef void on_error(self, UdpEndpoint ep, int error, uint32_t addr, uint16_t port) noexcept:
        pass


cdef class UdpEndpoint:
    def __dealloc__(self):
        free(self.queue)         # the layer freed the mbufs when the endpoint closed

    cdef int send_raw(self, const uint8_t *data, uint32_t n, uint32_t addr, uint16_t port,
                      uint64_t now) noexcept:
        if self.closed:
            return errno.EBADF
        if port == 0:
            if self.remote_port == 0:
                self.layer.stats[UDP_SEND_ERRORS] += 1
                return errno.EDESTADDRREQ
            addr = self.remote_addr
            port = self.remote_port
        return udp_send(self.layer, self.local_addr, self.local_port, addr, port, data, n, now)

    def sendto(self, data, str host=None, port=None, now_ns=None):
        """Send one datagram (to the connected peer when host and port are None). Raises
        OSError: EMSGSIZE over the MTU (we never fragment), EDESTADDRREQ unconnected without
        an address, ENETUNREACH without a route, ENOBUFS with the mempool empty."""
        cdef Py_buffer view
        cdef uint32_t addr = 0
        cdef int rport = 0
        cdef int err = 0
        if (host is None) != (port is None):
            raise ValueError("give both host and port, or neither")
        if host is not None:
            addr = _destination(host)
            rport = port
            if not 0 < rport < 65536:
                raise OSError(errno.EINVAL, f"port {port} out of range")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if view.len > 65535:
                err = errno.EMSGSIZE
                self.layer.stats[UDP_SEND_ERRORS] += 1
            else:
                err = self.send_raw(<const uint8_t *>view.buf, <uint32_t>view.len, addr,
                                    <uint16_t>rport, fl_now_ns() if now_ns is None else now_ns)
        finally:
            PyBuffer_Release(&view)
        if err:
            raise OSError(err, os.strerror(err))

    def connect(self, str host, int port):
        """Set the default destination and hear only that peer, like connect(2) on a UDP
        socket: a wildcard-bound endpoint takes the source address the route gives."""
        if self.closed:
            raise OSError(errno.EBADF, "endpoint is closed")
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        cdef uint32_t addr = _destination(host)
        if not self.layer.iface.has_route(addr):
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
        self.layer.ep_connect(self, addr, <uint16_t>port)

    def pause_reading(self):
        """Hold arriving datagrams (up to the layer's rcvbuf_size, then drop and count
        rcvbuf_errors) until resume_reading()."""
        self.reading_paused = True

    def resume_reading(self):
        """Deliver what was held, at the next poll step (never from inside this call)."""
        if self.reading_paused and not self.closed:
            self.reading_paused = False
            self.layer.ep_resume(self)

    def close(self):
        """Unbind; held datagrams are dropped. Idempotent."""
        if not self.closed:
            self.layer.ep_close(self)

    @property
    def local(self):
        """(host, port) we are bound to; host "0.0.0.0": every address of the interface."""
        return (addr_str(self.local_addr), self.local_port)

    @property
    def remote(self):
        """(host, port) of the connected peer, None when unconnected (asyncio's peername)."""
        return (addr_str(self.remote_addr), self.remote_port) if self.remote_port else None

    def __repr__(self):
        state = "closed" if self.closed else f"{self.local[0]}:{self.local_port}"
        if self.remote_port:
            state += f" -> {addr_str(self.remote_addr)}:{self.remote_port}"
        return f"<UdpEndpoint {state}>"



cdef class UdpLayerBase(L4Protocol):
    # implemented by UdpLayer (layer.pyx)
    cdef uint32_t source_for(self, uint32_t dst) noexcept:
        return 0

    cdef void ep_connect(self, UdpEndpoint ep, uint32_t addr, uint16_t port) noexcept:
        pass

    cdef void ep_close(self, UdpEndpoint ep) noexcept:
        pass

    cdef void ep_resume(self, UdpEndpoint ep) noexcept:
        pass
