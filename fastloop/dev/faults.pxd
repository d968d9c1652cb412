# cython: language_level=3
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.dev.device cimport Middleware

# A bounded FIFO of mbufs, each with the time it is due (used by the delay queue only).
cdef struct MbufQueue:
    fl_mbuf **m
    uint64_t *due
    uint32_t head
    uint32_t count
    uint32_t cap

# One direction's state: its own PRNG stream, so rx decisions never depend on tx traffic.
cdef struct FaultDir:
    uint64_t rng              # splitmix64 state
    fl_mbuf *held             # reorder: the frame held back until the next one passes
    MbufQueue delayq          # frames waiting for now >= due
    MbufQueue outq            # rx: ready for rx_burst; tx: not yet taken by the inner device
    uint64_t dropped
    uint64_t duplicated
    uint64_t reordered
    uint64_t corrupted
    uint64_t delayed
    uint64_t clone_failed
    uint64_t queue_overflow

cdef class FaultInjector(Middleware):
    """Seeded loss, duplication, reordering, corruption and delay, applied to rx and tx.

    Invariant: every mbuf in rx/tx (held, delayq, outq) is owned by the injector and is
    freed on close(); decisions come only from the per-direction PRNG, never a global one.
    """
    cdef readonly double loss, dup, reorder, corrupt, delay_ms
    cdef readonly uint64_t seed
    cdef readonly uint32_t queue
    cdef uint64_t delay_ns
    cdef uint64_t now                 # the `now` of the latest poll(): the injector's clock
    cdef FaultDir rx
    cdef FaultDir tx
    cdef void _process(self, FaultDir *d, fl_mbuf *m, bint is_tx) noexcept
    cdef void _emit(self, FaultDir *d, fl_mbuf *m) noexcept
    cdef void _corrupt(self, FaultDir *d, fl_mbuf *m, uint64_t r, bint is_tx) noexcept
    cdef void _release(self, FaultDir *d) noexcept
    cdef void _unhold(self, FaultDir *d) noexcept
    cdef void _tx_flush(self) noexcept
