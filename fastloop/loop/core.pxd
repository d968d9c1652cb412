# cython: language_level=3
from libc.stdint cimport uint64_t
from fastloop.stack cimport Stack

cdef enum:
    EPOLL_BATCH = 64                 # kernel events taken per iteration (level-triggered)

cdef class LoopCore:
    """The loop's hot state as C fields, shared with asyncio's Python code by identity: the
    ready deque and the scheduled heap are the same objects as loop._ready and
    loop._scheduled, so asyncio's own methods (stop, close, _add_callback,
    call_soon_threadsafe) keep working on them."""
    cdef object loop
    cdef public Stack stack          # None until the first address routes to the stack
    cdef public object ready         # collections.deque of handles
    cdef object popleft              # its bound popleft
    cdef public list scheduled       # heapq of TimerHandles
    cdef public bint closed          # mirrors loop._closed (checked by call_soon)
    cdef public bint debug           # mirrors loop._debug
    cdef public bint busy_poll       # idle policy: spin (True) or adaptive
    cdef uint64_t last_work          # when the stack last had frames or callbacks ran
    cdef uint64_t last_kernel_poll   # when epoll was last asked
    cdef public object pending_exc   # SystemExit/KeyboardInterrupt raised inside the poll step
    cdef double clock_resolution
    cdef int epfd                    # the selector's epoll descriptor
    cdef object fd_to_key            # the selector's fd -> SelectorKey map
    cdef int rx_fd                   # the stack's rx wake-up fd in our epoll set, or -1

    cpdef attach_stack(self, Stack stack)
    cdef int run_once(self) except -1
    cdef object kernel_events(self, double timeout)
    cdef int run_ready(self) except -1
