# cython: language_level=3
"""One loop iteration, in C (see core.pxd and fastloop/loop/loop.pyx's module comment).

    rx phase → kernel events (epoll) → due timers → the ready queue → tx phase

The kernel side is one epoll_wait(2) on the selector's own epoll descriptor: with a zero
timeout (the common case while anything is happening) it holds the GIL, builds no Python
objects when nothing is ready, and costs one syscall; a blocking wait releases the GIL.
While the stack is busy the kernel side is asked at least every 20 us, not every iteration.
"""
import heapq
import selectors
import select

from libc.errno cimport errno, EINTR
from libc.math cimport ceil
from libc.stdint cimport uint32_t, uint64_t, UINT64_MAX
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.stack cimport Stack
from fastloop.loop.handles cimport Handle, TimerHandle

from asyncio import base_events

cdef extern from "sys/epoll.h" nogil:
    ctypedef union epoll_data_t:
        int fd
        uint64_t u64
    cdef struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    enum: EPOLL_CTL_ADD
    enum: EPOLL_CTL_DEL

cdef uint32_t EPOLLIN = select.EPOLLIN
cdef uint32_t EPOLLOUT = select.EPOLLOUT
cdef int EVENT_READ = selectors.EVENT_READ
cdef int EVENT_WRITE = selectors.EVENT_WRITE
cdef uint64_t ADAPTIVE_SPIN_NS = 200000      # idle this long (200 us) before sleeping
cdef double ADAPTIVE_MAX_SLEEP = 0.001       # a device without an rx fd is polled each 1 ms
cdef double ADAPTIVE_FD_SLEEP = 0.1          # with one, the ARP scan's period bounds a sleep
cdef uint64_t KERNEL_POLL_NS = 20000         # a busy stack still polls the kernel each 20 us
cdef Py_ssize_t MIN_SCHEDULED = base_events._MIN_SCHEDULED_TIMER_HANDLES
cdef double MIN_CANCELLED_FRACTION = base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION
cdef double MAXIMUM_SELECT_TIMEOUT = base_events.MAXIMUM_SELECT_TIMEOUT

_heappop = heapq.heappop
_heapify = heapq.heapify


cdef class LoopCore:
    def __init__(self, loop, selector, bint busy_poll):
        self.loop = loop
        self.stack = None
        self.ready = loop._ready
        self.popleft = self.ready.popleft
        self.scheduled = loop._scheduled
        self.closed = False
        self.debug = loop._debug
        self.busy_poll = busy_poll
        self.last_work = 0
        self.last_kernel_poll = 0
        self.pending_exc = None
        self.clock_resolution = loop._clock_resolution
        self.rx_fd = -1
        if isinstance(selector, selectors.EpollSelector):
            self.epfd = selector._selector.fileno()
            self.fd_to_key = selector._fd_to_key
        else:                                # another selector: ask it, in Python
            self.epfd = -1
            self.fd_to_key = None

    cpdef attach_stack(self, Stack stack):
        """The stack joins the iteration; its rx wake-up fd (net_tap) joins our epoll set,
        under no selector key, so that an adaptive sleep ends when a frame arrives."""
        cdef epoll_event ev
        if self.rx_fd >= 0 and self.epfd >= 0:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, self.rx_fd, &ev)
        self.rx_fd = -1
        self.stack = stack
        if stack is None or self.epfd < 0:
            return
        fd = stack.device.rx_wakeup_fd
        if fd >= 0:
            ev.events = EPOLLIN
            ev.data.fd = fd
            if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) == 0:
                self.rx_fd = fd

    cdef int run_once(self) except -1:
        cdef Stack stack = self.stack
        cdef uint64_t now = fl_now_ns(), wake
        cdef double timeout = -1.0, now_s
        loop = self.loop
        if stack is not None:
            if stack.rx_phase(now):
                self.last_work = now
            if self.pending_exc is not None:
                exc, self.pending_exc = self.pending_exc, None
                stack.tx_phase(fl_now_ns())
                raise exc
        scheduled = self.scheduled
        _drop_cancelled(loop, scheduled)
        ready = self.ready
        now_s = now * 1e-9
        if ready or loop._stopping:
            timeout = 0.0
        elif scheduled:
            timeout = min(max(0.0, _when(scheduled[0]) - now_s), MAXIMUM_SELECT_TIMEOUT)
        if stack is not None and timeout != 0.0:
            if self.busy_poll or now - self.last_work < ADAPTIVE_SPIN_NS:
                timeout = 0.0
            else:                                # adaptive: sleep, bounded by the stack
                wake = stack.next_timer()
                bound = (ADAPTIVE_FD_SLEEP if self.rx_fd >= 0 and stack.iface.txq_len == 0
                         else ADAPTIVE_MAX_SLEEP)
                if wake != UINT64_MAX:
                    bound = min(bound, (wake - now) * 1e-9 if wake > now else 0.0)
                timeout = bound if timeout < 0 else min(timeout, bound)

        # the kernel side: every iteration without a stack; with one, while it is busy
        # (timeout 0), at least every KERNEL_POLL_NS: an epoll_wait costs more than a whole
        # iteration of the stack, and kernel fds lose at most that much latency
        if timeout != 0.0 or stack is None or now - self.last_kernel_poll >= KERNEL_POLL_NS:
            self.last_kernel_poll = now
            events = self.kernel_events(timeout)
            if events:
                loop._process_events(events)
            events = None

        cdef double end_time = fl_now_ns() * 1e-9 + self.clock_resolution
        while scheduled:
            handle = scheduled[0]
            if _when(handle) >= end_time:
                break
            handle = _heappop(scheduled)
            handle._scheduled = False
            ready.append(handle)
        handle = None
        if ready and stack is not None:
            self.last_work = now
        self.run_ready()
        if stack is not None:
            stack.tx_phase(fl_now_ns())
        return 0

    cdef object kernel_events(self, double timeout):
        """The selector's ready (key, mask) pairs, or None; timeout < 0 waits forever."""
        cdef epoll_event evs[EPOLL_BATCH]
        cdef int n, i, ms, mask
        cdef uint32_t ev
        if self.epfd < 0:
            return self.loop._selector.select(None if timeout < 0 else timeout)
        ms = -1 if timeout < 0 else <int>ceil(timeout * 1e3)
        if ms == 0:
            n = epoll_wait(self.epfd, evs, EPOLL_BATCH, 0)
        else:
            with nogil:
                n = epoll_wait(self.epfd, evs, EPOLL_BATCH, ms)
        if n <= 0:
            if n < 0 and errno != EINTR:
                raise OSError(errno, "epoll_wait failed")
            return None
        out = []
        fd_to_key = self.fd_to_key
        for i in range(n):
            key = fd_to_key.get(evs[i].data.fd)
            if key is None:                      # the stack's rx fd: the next rx phase reads
                continue
            ev = evs[i].events
            mask = 0
            if ev & ~EPOLLIN:
                mask |= EVENT_WRITE
            if ev & ~EPOLLOUT:
                mask |= EVENT_READ
            out.append((key, mask & key.events))
        return out

    cdef int run_ready(self) except -1:
        """Run the callbacks ready now, the snapshot count (later ones wait an iteration)."""
        cdef Py_ssize_t ntodo = len(self.ready), i
        popleft = self.popleft
        for i in range(ntodo):
            handle = popleft()
            if self.debug:
                if not handle._cancelled:
                    self.loop._fl_run_debug(handle)
            elif type(handle) is Handle or type(handle) is TimerHandle:
                if not (<Handle>handle)._cancelled:
                    (<Handle>handle).run()
            elif not handle._cancelled:
                handle._run()                    # asyncio's own (the selector's readers)
        return 0


cdef inline double _when(object handle):
    if type(handle) is TimerHandle:
        return (<TimerHandle>handle)._when
    return handle._when


cdef inline bint _cancelled(object handle):
    if type(handle) is TimerHandle:
        return (<TimerHandle>handle)._cancelled
    return handle._cancelled


cdef void _drop_cancelled(object loop, list scheduled) except *:
    """asyncio's rule: rebuild the heap when most of it is cancelled, else pop the head."""
    cdef Py_ssize_t n = len(scheduled)
    if n > MIN_SCHEDULED and loop._timer_cancelled_count / n > MIN_CANCELLED_FRACTION:
        keep = []
        for h in scheduled:
            if _cancelled(h):
                h._scheduled = False
            else:
                keep.append(h)
        _heapify(keep)
        scheduled[:] = keep                      # in place: loop._scheduled is this list
        loop._timer_cancelled_count = 0
        return
    while scheduled and _cancelled(scheduled[0]):
        loop._timer_cancelled_count -= 1
        h = _heappop(scheduled)
        h._scheduled = False
