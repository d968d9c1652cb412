# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The connection table (see conn_table.pxd): linear probing with backward-shift deletion,
at most 3/4 full, doubling when it would be fuller; keyed hash (a random seed per table)."""
import os

from libc.stdlib cimport calloc, free
from cpython.ref cimport Py_INCREF, Py_DECREF

cdef uint32_t INITIAL_SLOTS = 1024


cdef inline uint64_t _mix(uint64_t addrs, uint32_t ports, uint64_t seed) noexcept nogil:
    """A 64-bit finaliser (MurmurHash3's fmix64) over the seeded 4-tuple."""
    cdef uint64_t h = (addrs ^ seed) * 0x9E3779B97F4A7C15ULL + ports
    h ^= h >> 33
    h *= 0xff51afd7ed558ccdULL
    h ^= h >> 33
    h *= 0xc4ceb9fe1a85ec53ULL
    h ^= h >> 33
    return h


cdef class ConnTable:
    def __cinit__(self):
        self.slots = <ConnSlot *>calloc(INITIAL_SLOTS, sizeof(ConnSlot))
        if self.slots == NULL:
            raise MemoryError()
        self.mask = INITIAL_SLOTS - 1
        self.seed = int.from_bytes(os.urandom(8), "little")

    def __dealloc__(self):
        cdef uint32_t i
        if self.slots != NULL:
            for i in range(self.mask + 1):
                if self.slots[i].conn != NULL:
                    Py_DECREF(<object>self.slots[i].conn)
            free(self.slots)

    cdef uint32_t _home(self, uint64_t addrs, uint32_t ports) noexcept:
        return <uint32_t>(_mix(addrs, ports, self.seed) & self.mask)

    cdef PyObject *find(self, uint32_t laddr, uint16_t lport, uint32_t raddr,
                        uint16_t rport) noexcept:
        cdef uint64_t addrs = (<uint64_t>laddr << 32) | raddr
        cdef uint32_t ports = (<uint32_t>lport << 16) | rport
        cdef uint32_t i = self._home(addrs, ports)
        while self.slots[i].conn != NULL:
            if self.slots[i].addrs == addrs and self.slots[i].ports == ports:
                return self.slots[i].conn
            i = (i + 1) & self.mask
        return NULL

    cdef int _grow(self) except -1:
        cdef ConnSlot *old = self.slots
        cdef uint32_t old_n = self.mask + 1, i, j
        cdef ConnSlot *new = <ConnSlot *>calloc(old_n * 2, sizeof(ConnSlot))
        if new == NULL:
            raise MemoryError()
        self.slots = new
        self.mask = old_n * 2 - 1
        for i in range(old_n):
            if old[i].conn != NULL:
                j = self._home(old[i].addrs, old[i].ports)
                while new[j].conn != NULL:
                    j = (j + 1) & self.mask
                new[j] = old[i]
        free(old)
        return 0

    cdef int add(self, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                 object conn) except -1:
        """Insert conn for a 4-tuple that is not in the table."""
        if (self.count + 1) * 4 > (self.mask + 1) * 3:
            self._grow()
        cdef uint64_t addrs = (<uint64_t>laddr << 32) | raddr
        cdef uint32_t ports = (<uint32_t>lport << 16) | rport
        cdef uint32_t i = self._home(addrs, ports)
        while self.slots[i].conn != NULL:
            if self.slots[i].addrs == addrs and self.slots[i].ports == ports:
                raise KeyError("the 4-tuple is already in the connection table")
            i = (i + 1) & self.mask
        Py_INCREF(conn)
        self.slots[i].addrs = addrs
        self.slots[i].ports = ports
        self.slots[i].conn = <PyObject *>conn
        self.count += 1
        return 0

    cdef bint discard(self, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                      object conn) noexcept:
        """Remove the 4-tuple if it maps to conn; False if it was not there."""
        cdef uint64_t addrs = (<uint64_t>laddr << 32) | raddr
        cdef uint32_t ports = (<uint32_t>lport << 16) | rport
        cdef uint32_t i = self._home(addrs, ports), j, k
        while self.slots[i].conn != NULL:
            if self.slots[i].addrs == addrs and self.slots[i].ports == ports:
                break
            i = (i + 1) & self.mask
        if self.slots[i].conn != <PyObject *>conn:
            return False
        self.slots[i].conn = NULL
        self.count -= 1
        j = i
        while True:                                # close the gap (Knuth's Algorithm R)
            j = (j + 1) & self.mask
            if self.slots[j].conn == NULL:
                break
            k = self._home(self.slots[j].addrs, self.slots[j].ports)
            # move j back into the hole at i unless its home k lies cyclically in (i, j]
            if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
                self.slots[i] = self.slots[j]
                self.slots[j].conn = NULL
                i = j
        Py_DECREF(conn)
        return True

    cpdef list values(self):
        cdef list out = []
        cdef uint32_t i
        for i in range(self.mask + 1):
            if self.slots[i].conn != NULL:
                out.append(<object>self.slots[i].conn)
        return out

    def __len__(self):
        return self.count

    def __contains__(self, key):
        laddr, lport, raddr, rport = key
        return self.find(laddr, lport, raddr, rport) != NULL
