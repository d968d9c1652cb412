# cython: language_level=3
"""The interface's view of a transport protocol (see l4.pxd)."""


cdef class L4Protocol:
    cdef void input(self, fl_mbuf *m, Ipv4Header *ip, bint broadcast, uint64_t now) noexcept:
        pass

    cdef void icmp_error(self, int type, int code, const unsigned char *quote, size_t n,
                         uint64_t now) noexcept:
        pass

    cdef void rx_done(self, uint64_t now) noexcept:
        pass

    cdef void timers(self, uint64_t now) noexcept:
        pass

    cdef void output(self, uint64_t now) noexcept:
        pass

    cdef int64_t held(self) noexcept:
        return 0

    cdef void release_all(self) noexcept:
        pass
