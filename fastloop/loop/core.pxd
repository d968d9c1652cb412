# cython: language_level=3
from libc.stdint cimport uint64_t
from fastloop.stack cimport Stack

cdef enum:
    EPOLL_BATCH = 64                 # kernel events taken per iteration (level-triggered)

cdef class LoopCore:
    """The C base of fastloop's loop: `class Loop(LoopAPI, asyncio.SelectorEventLoop)`, with
    LoopAPI(LoopCore) (api.pyx). The loop's hot state is C fields; the public ones carry
    asyncio's own attribute names, so BaseEventLoop's Python code (its __init__, which assigns
    them, _add_callback, the transports...) reads and writes these same fields through their
    descriptors, and there is no second copy to keep in step."""
    # asyncio's state (BaseEventLoop.__init__ assigns it)
    cdef object ready                # loop._ready (a property: it caches the two below)
    cdef object ready_append         # its bound append and popleft
    cdef object ready_popleft
    cdef public list _scheduled      # heapq of TimerHandles
    cdef public bint _stopping
    cdef public bint _closed
    cdef public bint _debug
    cdef public object _thread_id    # the running thread's ident, or None
    cdef public Py_ssize_t _timer_cancelled_count
    cdef public double _clock_resolution
    cdef public object _current_handle
    cdef public object _exception_handler
    cdef public object _task_factory

    # fastloop's
    cdef Stack polled                # the stack the iteration polls: None until the first
                                     # address routes to it, and after close()
    cdef bint busy_poll              # idle policy: spin (True) or adaptive
    cdef uint64_t last_work          # when the stack last had frames or callbacks ran
    cdef uint64_t last_kernel_poll   # when epoll was last asked
    cdef object pending_exc          # SystemExit/KeyboardInterrupt raised inside the poll step
    cdef int epfd                    # the selector's epoll descriptor, or -1
    cdef object fd_to_key            # the selector's fd -> SelectorKey map
    cdef int rx_fd                   # the stack's rx wake-up fd in our epoll set, or -1
    cdef int wake_fd                 # the eventfd call_soon_threadsafe writes, or -1

    cdef int setup_core(self, object selector, bint busy_poll) except -1
    cdef int attach_stack(self, Stack stack) except -1
    cdef int run_once(self) except -1
    cdef object kernel_events(self, double timeout)
    cdef int run_ready(self) except -1
    cdef int run_debug(self, object handle) except -1
    cdef int wake(self) except -1    # wake the loop up, from any thread (holding the GIL)
    cdef void drain_wake(self) noexcept


# the scheduled heap (loop._scheduled), ordered by _when as heapq orders TimerHandles
cdef int heap_push(list heap, object item) except -1
cdef object heap_pop(list heap)
