# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The ARP cache's table. What to do with entries (requests, expiry, queued frames) is the
link layer's business (link.pyx); this file only stores and finds them."""
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

cdef inline uint32_t _hash(uint32_t ip) noexcept nogil:
    return (ip * 2654435761u) >> 22          # Knuth's multiplicative hash, 10 bits


cdef class ArpCache:
    def __cinit__(self):
        self.slots = <ArpEntry *>calloc(ARP_TABLE_SIZE, sizeof(ArpEntry))
        if self.slots == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.slots)

    cdef ArpEntry *slot(self, uint32_t i) noexcept:
        return &self.slots[i]

    cdef ArpEntry *lookup(self, uint32_t ip) noexcept:
        cdef uint32_t i = _hash(ip)
        while self.slots[i].state != ARP_FREE:
            if self.slots[i].ip == ip:
                return &self.slots[i]
            i = (i + 1) & (ARP_TABLE_SIZE - 1)
        return NULL

    cdef ArpEntry *insert(self, uint32_t ip) noexcept:
        """A fresh INCOMPLETE entry for ip (not present), or NULL when the table is full."""
        if self.count >= ARP_TABLE_SIZE * 3 // 4:
            return NULL
        cdef uint32_t i = _hash(ip)
        while self.slots[i].state != ARP_FREE:
            i = (i + 1) & (ARP_TABLE_SIZE - 1)
        cdef ArpEntry *e = &self.slots[i]
        e.ip = ip
        e.state = ARP_INCOMPLETE
        e.probes = 0
        e.qlen = 0
        e.deadline = 0
        self.count += 1
        return e

    cdef void remove(self, ArpEntry *e) noexcept:
        """Free a slot (its queue must be empty) and shift later members of its run back."""
        cdef uint32_t i = <uint32_t>(e - self.slots)
        cdef uint32_t j = i, k
        self.slots[i].state = ARP_FREE
        self.count -= 1
        while True:
            j = (j + 1) & (ARP_TABLE_SIZE - 1)
            if self.slots[j].state == ARP_FREE:
                return
            k = _hash(self.slots[j].ip)
            # move j back into the hole at i unless its home k lies cyclically in (i, j]
            if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
                memcpy(&self.slots[i], &self.slots[j], sizeof(ArpEntry))
                self.slots[j].state = ARP_FREE
                i = j

    def entries(self):
        """(ip, mac, state) of every entry, for Python and tests."""
        out = []
        for i in range(ARP_TABLE_SIZE):
            if self.slots[i].state != ARP_FREE:
                out.append((self.slots[i].ip, bytes(self.slots[i].mac[:6]),
                            "reachable" if self.slots[i].state == ARP_REACHABLE else "incomplete"))
        return out
