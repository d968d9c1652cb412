# cython: language_level=3
from libc.stdint cimport uint32_t, uint64_t
from fastloop.dev.device cimport Device
from fastloop.net.iface cimport Interface

cdef class Stack:
    cdef readonly object config
    cdef readonly Device device
    cdef readonly Interface iface
    cdef readonly object tcp
    cdef readonly object udp
    cdef readonly object eal
    cdef readonly bint closed

    # The poll step in two halves, for the event loop: rx_phase (device → rx → protocol
    # callbacks → stack timers) before the loop's own callbacks run, tx_phase (what the
    # transports queued → one batched tx) after them. poll() is both, back to back.
    cpdef uint32_t poll(self, now_ns=*)
    cdef uint32_t rx_phase(self, uint64_t now) noexcept
    cdef void tx_phase(self, uint64_t now) noexcept
    cdef uint64_t next_timer(self) noexcept
