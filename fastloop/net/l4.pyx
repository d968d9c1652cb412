# cython: language_level=3
"""The interface's view of a transport protocol (see l4.pxd)."""
import sys
import traceback


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


cdef void report_handler_error(object target, str what) noexcept:
    """A handler raised: keep the exception on the target (tests look) and print it."""
    try:
        exc = sys.exc_info()[1]
        errors = getattr(target, "errors", None)
        if isinstance(errors, list):
            errors.append(exc)
        print(f"fastloop: exception in {what} of {target!r}", file=sys.stderr)
        traceback.print_exc()
    except BaseException:
        pass
