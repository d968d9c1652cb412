# cython: language_level=3
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport FILE
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.dev.device cimport Middleware

cdef class PcapTracer(Middleware):
    """Records every frame received and transmitted to a classic (nanosecond) pcap file.

    Invariant: `stage` holds `stage_n` staged records back to back; `offs[i]` is where
    record i ends, so committing the first k records is one fwrite of offs[k-1] bytes.
    """
    cdef FILE *fp
    cdef readonly str path
    cdef readonly uint64_t frames          # records written (committed) so far
    cdef readonly uint64_t write_errors    # records lost to a failed fwrite
    cdef uint64_t last_flush               # monotonic ns of the last fflush
    cdef uint8_t *stage
    cdef size_t stage_cap
    cdef size_t *offs
    cdef uint32_t offs_cap
    cdef int _reserve(self, uint16_t n, size_t nbytes) noexcept
    cdef int _stage(self, fl_mbuf **pkts, uint16_t n) noexcept
    cdef void _commit(self, uint16_t k) noexcept
