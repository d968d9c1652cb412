# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf, fl_pool
from fastloop.dev.device cimport Device
from fastloop.net.arp_cache cimport ArpCache, ArpEntry
from fastloop.net.counters cimport DROP_COUNT, STAT_COUNT

cdef enum:
    TX_BURST = 32
    RX_BURST = 32

# Debug builds (FASTLOOP_DEBUG=1) keep books of every mbuf the stack touches; the stack owns
# exactly received + allocated - freed - transmitted mbufs, which check_books() verifies.
cdef struct MbufBooks:
    int64_t received
    int64_t allocated
    int64_t freed
    int64_t transmitted
    int64_t mismatches

cdef class Link:
    """The link layer of one interface: Ethernet framing, ARP (RFC 826), and the tx backlog.

    Frames the PMD did not take stay in the backlog, ours, until the next flush.
    """
    cdef readonly Device device
    cdef fl_pool *pool
    cdef uint8_t mac[6]
    cdef uint32_t addr                   # our IPv4 address, host byte order
    cdef uint64_t arp_ttl_ns
    cdef uint64_t arp_retry_ns
    cdef uint16_t arp_queue_limit
    cdef uint32_t arp_queued             # frames waiting for ARP, all neighbours together
    cdef uint32_t arp_queued_limit       # bound on arp_queued (spoofed floods, see neighbour_output)
    cdef readonly ArpCache arp
    cdef uint64_t drops[DROP_COUNT]
    cdef uint64_t stats[STAT_COUNT]
    cdef fl_mbuf **txq                   # ring of frames waiting for the PMD
    cdef uint32_t txq_head
    cdef readonly uint32_t txq_len
    cdef uint32_t txq_cap
    cdef uint64_t next_arp_scan

    cdef MbufBooks books

    cdef fl_mbuf *mbuf_alloc(self) noexcept
    cdef void mbuf_free(self, fl_mbuf *m) noexcept
    cdef int64_t held(self) noexcept
    cdef void check_books(self) noexcept
    cdef void drop(self, fl_mbuf *m, int reason) noexcept
    cdef void tx_enqueue(self, fl_mbuf *m) noexcept
    cdef uint32_t flush(self) noexcept
    cdef void link_input(self, fl_mbuf *m, uint64_t now) noexcept
    cdef void arp_input(self, fl_mbuf *m, uint64_t now) noexcept
    cdef void arp_send(self, uint16_t op, const uint8_t *dst_mac, const uint8_t *tha,
                       uint32_t tpa) noexcept
    cdef void arp_learn(self, ArpEntry *e, const uint8_t *mac, uint64_t now) noexcept
    cdef void neighbour_output(self, fl_mbuf *m, uint32_t nexthop, bint broadcast,
                               uint64_t now) noexcept
    cdef void arp_timers(self, uint64_t now) noexcept
    cdef void ipv4_input(self, fl_mbuf *m, bint link_broadcast, uint64_t now) noexcept
    cdef void release_all(self) noexcept
