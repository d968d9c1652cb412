# cython: language_level=3
from libc.stdint cimport uint16_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf, fl_pool, fl_port_info
from fastloop.dev.eal cimport Eal, Mempool

cdef class Device:
    """What the stack sees of a NIC: bursts of mbufs in and out, and capabilities.

    rx_burst fills pkts with up to n received frames; tx_burst takes ownership of the
    first k frames it returns and leaves the rest with the caller.
    """
    cdef readonly str name
    cdef fl_port_info info
    cdef fl_pool *pool
    cdef readonly Mempool mempool        # the pool pool belongs to: rx mbufs come from it
    cdef readonly Eal eal
    cdef readonly bint closed
    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept
    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept
    # Called once per poll step with the step's clock (ns): middlewares release held frames.
    cdef void poll(self, uint64_t now) noexcept
    cpdef close(self)

cdef class EthDevice(Device):
    cdef readonly uint16_t port_id
    cdef readonly str kernel_ifname      # tap / af_packet: the kernel side's interface
    # ring pair: the other end. The rings (and frames sent to a closed end) are freed when
    # the second of the two closes.
    cdef EthDevice ring_peer
    cdef void drain(self) noexcept

cdef class Middleware(Device):
    """A device wrapped around another: tracers and fault injectors."""
    cdef readonly Device inner
