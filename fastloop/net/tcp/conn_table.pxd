# cython: language_level=3
# The connection table: the 4-tuple -> TcpConnection, open addressing in C, so that finding
# a segment's connection builds no Python object (no int key, no tuple) per packet.
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from cpython.ref cimport PyObject

cdef struct ConnSlot:
    uint64_t addrs             # laddr << 32 | raddr
    uint32_t ports             # lport << 16 | rport
    PyObject *conn             # a strong reference; NULL: free

cdef class ConnTable:
    cdef ConnSlot *slots
    cdef uint32_t mask         # capacity - 1 (a power of two)
    cdef readonly uint32_t count
    cdef uint64_t seed         # keys the hash, so a peer cannot aim for collisions

    cdef uint32_t _home(self, uint64_t addrs, uint32_t ports) noexcept
    cdef int _grow(self) except -1
    cdef PyObject *find(self, uint32_t laddr, uint16_t lport, uint32_t raddr,
                        uint16_t rport) noexcept
    cdef int add(self, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                 object conn) except -1
    cdef bint discard(self, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                      object conn) noexcept
    cpdef list values(self)
