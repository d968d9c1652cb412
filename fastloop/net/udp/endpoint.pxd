# cython: language_level=3
# UDP (RFC 768) endpoints, their sinks and the layer's shared state. Data and declarations
# only: input.pyx (datagram and ICMP error arrival), output.pyx (sending), layer.pyx (the
# port table, bind, counters) and endpoint.pyx (the Python API) hold the behaviour.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.net.l4 cimport L4Protocol
from fastloop.net.iface cimport Interface
from fastloop.net.udp.counters cimport UDP_STAT_COUNT

cdef enum:
    UDP_PORTS = 65536
    # a queued datagram is charged its payload plus about one mbuf (as Linux charges an skb's
    # truesize), so a flood of tiny datagrams cannot pin the mempool
    UDP_QUEUE_CHARGE = 2048

cdef class UdpSink:
    """What an endpoint reports upward (ARCHITECTURE: the narrow sink). `data` points into
    the mbuf and is valid only during the call: the sink copies what it keeps (the one copy)."""
    cdef void on_datagram(self, UdpEndpoint ep, const uint8_t *data, uint32_t n,
                          uint32_t src_addr, uint16_t src_port) noexcept
    # errno from an ICMP error about a datagram we sent to addr:port
    cdef void on_error(self, UdpEndpoint ep, int error, uint32_t addr, uint16_t port) noexcept

cdef struct QueuedDatagram:        # held while the endpoint's reading is paused
    fl_mbuf *m                     # at the payload, trimmed to it
    uint32_t addr
    uint16_t port

cdef class UdpEndpoint:
    cdef UdpLayerBase layer
    cdef public UdpSink sink
    cdef readonly uint32_t local_addr      # 0: every address of the interface
    cdef readonly uint16_t local_port
    cdef readonly uint32_t remote_addr     # 0 when unconnected
    cdef readonly uint16_t remote_port
    cdef readonly bint closed
    cdef readonly bint reading_paused
    # the port table's chain: borrowed, since the layer's `endpoints` set owns every open one
    cdef void *next_on_port
    cdef QueuedDatagram *queue             # ring of q_cap entries
    cdef uint32_t q_head
    cdef readonly uint32_t q_len
    cdef uint32_t q_cap
    cdef readonly uint32_t q_charged       # bytes charged against the layer's rcvbuf_size
    cdef bint in_ready_list

    # send n bytes to addr:port (0, 0: the connected peer); 0 or an errno. For Cython callers.
    cdef int send_raw(self, const uint8_t *data, uint32_t n, uint32_t addr, uint16_t port,
                      uint64_t now) noexcept

cdef class UdpLayerBase(L4Protocol):
    """State shared by the UDP modules: the interface, the port table, counters."""
    cdef Interface iface
    cdef void **port_head                  # UDP_PORTS borrowed chain heads
    cdef set endpoints                     # every open endpoint (owns them)
    cdef list ready                        # resumed endpoints whose queue drains at output
    cdef uint16_t next_ephemeral
    cdef uint64_t stats[UDP_STAT_COUNT]
    cdef int64_t queued                    # mbufs held in endpoint queues
    cdef public uint32_t rcvbuf_size       # per endpoint, bytes charged (SO_RCVBUF)

    cdef uint32_t source_for(self, uint32_t dst) noexcept
    cdef void ep_connect(self, UdpEndpoint ep, uint32_t addr, uint16_t port) noexcept
    cdef void ep_close(self, UdpEndpoint ep) noexcept
    cdef void ep_resume(self, UdpEndpoint ep) noexcept

cdef str addr_str(uint32_t a)
cdef uint32_t addr_parse(str host) except? 0

cdef inline bint ep_accepts(UdpEndpoint ep, uint32_t dst, uint32_t src, uint16_t sport,
                            bint broadcast) noexcept:
    """Whether a datagram to dst from src:sport is for ep: broadcasts reach wildcard-bound
    endpoints only, and a connected endpoint hears only its peer (as Linux)."""
    if broadcast:
        if ep.local_addr != 0:
            return False
    elif ep.local_addr != 0 and ep.local_addr != dst:
        return False
    return ep.remote_port == 0 or (ep.remote_addr == src and ep.remote_port == sport)
