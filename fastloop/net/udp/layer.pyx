# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The UDP layer of one interface: the port table, bind and ephemeral ports, counters.

    layer = UdpLayer(stack.iface)                 # Stack does this (StackConfig.udp)
    ep = layer.bind(sink, host=None, port=0)      # UdpSink.on_datagram / on_error

Ports are exclusive (no SO_REUSEADDR): one endpoint per port and address, and a wildcard
bind takes the port on every address. The port table is a C array of chains, so input finds
its endpoint without a Python object per datagram.
"""
import errno
import os

from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from fastloop.includes.dpdk cimport fl_mbuf, fl_mbuf_data, fl_mbuf_data_len
from fastloop.net.iface cimport Interface
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.udp.counters cimport *
from fastloop.net.udp.endpoint cimport (
    UdpLayerBase, UdpEndpoint, UdpSink, QueuedDatagram, UDP_PORTS, UDP_QUEUE_CHARGE, addr_parse)
from fastloop.net.udp.input cimport udp_input, udp_icmp_error

EPHEMERAL_LOW = 32768                 # Linux's ip_local_port_range
EPHEMERAL_HIGH = 60999


cdef class UdpLayer(UdpLayerBase):
    def __init__(self, Interface iface, *, uint32_t rcvbuf=212992):
        """Attach UDP to an interface. rcvbuf: bytes each endpoint may hold while its
        reading is paused (Linux's default rmem)."""
        self.port_head = <void **>calloc(UDP_PORTS, sizeof(void *))
        if self.port_head == NULL:
            raise MemoryError()
        self.iface = iface
        self.endpoints = set()
        self.ready = []
        self.rcvbuf_size = rcvbuf
        self.next_ephemeral = EPHEMERAL_LOW + (int.from_bytes(os.urandom(2), "little")
                                              % (EPHEMERAL_HIGH - EPHEMERAL_LOW))
        iface.udp = self

    def __dealloc__(self):
        free(self.port_head)

    # ---- what the interface calls ----------------------------------------------------
    cdef void input(self, fl_mbuf *m, Ipv4Header *ip, bint broadcast, uint64_t now) noexcept:
        udp_input(self, m, ip, broadcast, now)

    cdef void icmp_error(self, int type, int code, const unsigned char *quote, size_t n,
                         uint64_t now) noexcept:
        udp_icmp_error(self, type, code, quote, n)

    cdef void output(self, uint64_t now) noexcept:
        """Drain the queues of endpoints resumed since the last step, in arrival order."""
        cdef list todo = self.ready
        cdef UdpEndpoint ep
        cdef QueuedDatagram d
        if not todo:
            return
        self.ready = []
        for ep in todo:
            ep.in_ready_list = False
            while ep.q_len and not ep.reading_paused and not ep.closed:
                d = ep.queue[ep.q_head]
                ep.q_head = (ep.q_head + 1) % ep.q_cap
                ep.q_len -= 1
                ep.q_charged -= <uint32_t>(fl_mbuf_data_len(d.m) + UDP_QUEUE_CHARGE)
                self.queued -= 1
                _hand_over(self, ep, d.m, d.addr, d.port)

    cdef int64_t held(self) noexcept:
        return self.queued

    cdef void release_all(self) noexcept:
        """The interface is closing: every endpoint closes, its held datagrams freed."""
        cdef UdpEndpoint ep
        for ep in list(self.endpoints):
            self.ep_close(ep)

    # ---- what endpoints ask -------------------------------------------------------------
    cdef uint32_t source_for(self, uint32_t dst) noexcept:
        """The source address of a datagram from a wildcard-bound endpoint to dst."""
        if (dst >> 24) == 127 and self.iface.is_local(dst):
            return dst
        return self.iface.addr

    cdef void ep_connect(self, UdpEndpoint ep, uint32_t addr, uint16_t port) noexcept:
        # a wildcard bind becomes the route's source address (as Linux's connect(2)); no
        # clash is possible, since the wildcard bind excluded every other use of the port
        if ep.local_addr == 0:
            ep.local_addr = self.source_for(addr)
        ep.remote_addr = addr
        ep.remote_port = port

    cdef void ep_close(self, UdpEndpoint ep) noexcept:
        cdef void **link = &self.port_head[ep.local_port]
        cdef QueuedDatagram *d
        while link[0] != NULL and link[0] != <void *>ep:
            link = &(<UdpEndpoint>link[0]).next_on_port
        if link[0] != NULL:
            link[0] = ep.next_on_port
        ep.next_on_port = NULL
        while ep.q_len:
            d = &ep.queue[ep.q_head]
            self.iface.mbuf_free(d.m)
            ep.q_head = (ep.q_head + 1) % ep.q_cap
            ep.q_len -= 1
            self.queued -= 1
        ep.q_charged = 0
        ep.closed = True
        ep.sink = None
        self.endpoints.discard(ep)

    cdef void ep_resume(self, UdpEndpoint ep) noexcept:
        if ep.q_len and not ep.in_ready_list:
            ep.in_ready_list = True
            self.ready.append(ep)

    # ---- the API ------------------------------------------------------------------------
    def bind(self, UdpSink sink, str host=None, int port=0):
        """An endpoint on port (0: an ephemeral one) of host (None: every address of the
        interface). OSError EADDRINUSE when taken, EADDRNOTAVAIL when host is not ours."""
        cdef uint32_t addr = addr_parse(host) if host else 0
        if addr != 0 and not self.iface.is_local(addr):
            raise OSError(errno.EADDRNOTAVAIL, f"{host} is not an address of this interface")
        if not 0 <= port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        if port == 0:
            port = self._ephemeral()
        elif self._in_use(addr, port):
            raise OSError(errno.EADDRINUSE, f"port {port} is already bound")
        cdef UdpEndpoint ep = UdpEndpoint.__new__(UdpEndpoint)
        ep.layer = self
        ep.sink = sink
        ep.local_addr = addr
        ep.local_port = <uint16_t>port
        ep.next_on_port = self.port_head[port]
        self.port_head[port] = <void *>ep
        self.endpoints.add(ep)
        return ep

    def _in_use(self, uint32_t addr, int port):
        cdef void *p = self.port_head[port]
        cdef UdpEndpoint ep
        while p != NULL:
            ep = <UdpEndpoint>p
            if addr == 0 or ep.local_addr == 0 or ep.local_addr == addr:
                return True
            p = ep.next_on_port
        return False

    def _ephemeral(self):
        cdef int span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        for _ in range(span):
            port = self.next_ephemeral
            self.next_ephemeral = EPHEMERAL_LOW + (port + 1 - EPHEMERAL_LOW) % span
            if self.port_head[port] == NULL:
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no ephemeral port left")

    def counters(self):
        out = {udp_stat_name(i).decode(): self.stats[i] for i in range(UDP_STAT_COUNT)}
        # as Linux's InErrors: every datagram received and not delivered for its own fault
        out["in_errors"] = (out["in_short"] + out["in_bad_length"] + out["in_bad_checksum"]
                            + out["rcvbuf_errors"])
        out["endpoints"] = len(self.endpoints)
        out["queued"] = self.queued
        return out

    def endpoint_list(self):
        return list(self.endpoints)


cdef void _hand_over(UdpLayerBase L, UdpEndpoint ep, fl_mbuf *m, uint32_t addr,
                     uint16_t port) noexcept:
    """A held datagram reaches the sink (already counted in datagrams_in when queued)."""
    cdef UdpSink sink = ep.sink
    if sink is not None:
        sink.on_datagram(ep, fl_mbuf_data(m), fl_mbuf_data_len(m), addr, port)
    L.iface.mbuf_free(m)
