# cython: language_level=3
from fastloop.includes.dpdk cimport fl_pool

cdef class Mempool:
    cdef fl_pool *pool
    cdef readonly str name
    cdef readonly unsigned size
    cdef readonly unsigned data_room

cdef class Eal:
    cdef readonly str file_prefix
    cdef readonly list args
    cdef readonly Mempool mempool      # the first pool, made at start-up
    cdef readonly list pools           # every pool, the first first (jumbo frames: another)
    cdef readonly unsigned long next_device_id
    cdef set devices
