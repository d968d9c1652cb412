# cython: language_level=3
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf

cdef enum:
    ARP_TABLE_SIZE = 1024        # slots, a power of two; at most 3/4 are used
    ARP_QUEUE_MAX = 64           # frames waiting per neighbour, upper bound of the config

cdef enum ArpState:
    ARP_FREE = 0
    ARP_INCOMPLETE               # request sent, frames queued
    ARP_REACHABLE

cdef struct ArpEntry:
    uint32_t ip
    uint8_t mac[6]
    uint8_t state
    uint8_t probes
    uint16_t qlen
    uint64_t deadline            # REACHABLE: expiry; INCOMPLETE: next retransmission
    fl_mbuf *queue[ARP_QUEUE_MAX]

cdef class ArpCache:
    """Neighbour table: open addressing with linear probing and backward-shift deletion."""
    cdef ArpEntry *slots
    cdef readonly uint32_t count
    cdef ArpEntry *lookup(self, uint32_t ip) noexcept
    cdef ArpEntry *insert(self, uint32_t ip) noexcept
    cdef void remove(self, ArpEntry *e) noexcept
    cdef ArpEntry *slot(self, uint32_t i) noexcept
