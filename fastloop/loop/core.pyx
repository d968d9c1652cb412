# cython: language_level=3
"""One loop iteration, in C, and the loop's wake-up eventfd (see core.pxd, and
fastloop/loop/loop.pyx's module comment).

    rx phase → kernel events (epoll) → due timers → the ready queue → tx phase

The kernel side is one epoll_wait(2) on the selector's own epoll descriptor: with a zero
timeout (the common case while anything is happening) it holds the GIL, builds no Python
objects when nothing is ready, and costs one syscall; a blocking wait releases the GIL.
While the stack is busy the kernel side is asked at least every 20 us, not every iteration.

Another thread wakes the loop (call_soon_threadsafe) by writing an eventfd(2), in that epoll
set: one counter however many threads write, drained by one read in kernel_events, with no
Python object made. asyncio's selector loop writes a byte on a socketpair instead, its
"self-pipe", which is also the signal wakeup fd (signal.set_wakeup_fd): its bytes are signal
numbers that _process_self_data dispatches. An eventfd cannot be that fd (CPython's signal
handler writes one byte; an eventfd takes 8-byte writes only), so signals keep asyncio's own
socketpair and code (_read_from_self, _process_self_data: inherited), the socketpair made
when the first signal handler is added (Loop.add_signal_handler); until then the eventfd is
the loop's one internal fd.
"""
import os
import selectors
import select
import socket

cimport cython
from libc.errno cimport errno, EINTR, EAGAIN
from libc.math cimport ceil
from libc.stdint cimport uint32_t, uint64_t, UINT64_MAX
from posix.unistd cimport read, write, close
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.stack cimport Stack
from fastloop.loop.handles cimport Handle, TimerHandle

from asyncio import base_events, selector_events

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

cdef extern from "sys/eventfd.h" nogil:
    int eventfd(unsigned int initval, int flags)
    enum: EFD_NONBLOCK
    enum: EFD_CLOEXEC

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



@cython.auto_pickle(False)
cdef class LoopCore:
    def __cinit__(self, *args, **kwargs):
        self.epfd = -1
        self.rx_fd = -1
        self.wake_fd = -1

    def __dealloc__(self):
        if self.wake_fd >= 0:                # never closed (asyncio's __del__ closes a loop)
            close(self.wake_fd)

    @property
    def _ready(self):
        return self.ready

    @_ready.setter
    def _ready(self, ready):
        self.ready = ready
        self.ready_append = ready.append
        self.ready_popleft = ready.popleft

    @property
    def _fl_wake_fd(self):
        """The eventfd call_soon_threadsafe writes (-1 once closed)."""
        return self.wake_fd

    cdef int setup_core(self, object selector, bint busy_poll) except -1:
        """How the iteration asks the kernel side: the selector's epoll fd, or the selector."""
        self.busy_poll = busy_poll
        if isinstance(selector, selectors.EpollSelector):
            self.epfd = selector._selector.fileno()
            self.fd_to_key = selector._fd_to_key
        else:                                # another selector: ask it, in Python
            self.epfd = -1
            self.fd_to_key = None
        return 0

    cdef int attach_stack(self, Stack stack) except -1:
        """The stack joins the iteration; its rx wake-up fd (net_tap) joins our epoll set,
        under no selector key, so that an adaptive sleep ends when a frame arrives."""
        cdef epoll_event ev
        if self.rx_fd >= 0 and self.epfd >= 0:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, self.rx_fd, &ev)
        self.rx_fd = -1
        self.polled = stack
        if stack is None or self.epfd < 0:
            return 0
        fd = stack.device.rx_wakeup_fd
        if fd >= 0:
            ev.events = EPOLLIN
            ev.data.fd = fd
            if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) == 0:
                self.rx_fd = fd
        return 0

    def _run_once(self):
        self.run_once()

    cdef int run_once(self) except -1:
        cdef Stack stack = self.polled
        cdef uint64_t now = fl_now_ns(), wake
        cdef double timeout = -1.0, now_s
        if stack is not None:
            if stack.rx_phase(now):
                self.last_work = now
            if self.pending_exc is not None:
                exc, self.pending_exc = self.pending_exc, None
                stack.tx_phase(fl_now_ns())
                raise exc
        scheduled = self._scheduled
        _drop_cancelled(self, scheduled)
        ready = self.ready
        now_s = now * 1e-9
        if ready or self._stopping:
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
                self._process_events(events)
            events = None

        cdef double end_time = fl_now_ns() * 1e-9 + self._clock_resolution
        while scheduled:
            handle = scheduled[0]
            if _when(handle) >= end_time:
                break
            handle = heap_pop(scheduled)
            if type(handle) is TimerHandle:
                (<TimerHandle>handle)._scheduled = False
            else:
                handle._scheduled = False
            self.ready_append(handle)
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
        cdef int n, i, ms, mask, fd
        cdef uint32_t ev
        if self.epfd < 0:
            return self._selector.select(None if timeout < 0 else timeout)
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
            fd = evs[i].data.fd
            if fd == self.wake_fd:               # call_soon_threadsafe: its handle is queued
                self.drain_wake()
                continue
            key = fd_to_key.get(fd)
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
        popleft = self.ready_popleft
        for i in range(ntodo):
            handle = popleft()
            if self._debug:
                if not handle._cancelled:
                    self.run_debug(handle)
            elif type(handle) is Handle or type(handle) is TimerHandle:
                if not (<Handle>handle)._cancelled:
                    (<Handle>handle).run()
            elif not handle._cancelled:
                handle._run()                    # asyncio's own (the selector's readers)
        return 0

    cdef int run_debug(self, object handle) except -1:
        """asyncio's debug-mode run: the handle is current (for the exception handler), and
        a slow one is logged."""
        try:
            self._current_handle = handle
            t0 = self.time()
            handle._run()
            dt = self.time() - t0
            if dt >= self.slow_callback_duration:
                base_events.logger.warning("Executing %s took %.3f seconds",
                                           base_events._format_handle(handle), dt)
        finally:
            self._current_handle = None
        return 0

    # ---- the wake-up eventfd (see the module comment) -----------------------------------
    cdef int wake(self) except -1:
        cdef uint64_t one = 1
        cdef int fd = self.wake_fd, err
        # under the GIL, as close does: a closed eventfd is -1 here, never a reused number
        if fd >= 0 and write(fd, &one, 8) < 0:
            err = errno
            if err != EAGAIN and self._debug:    # EAGAIN: the counter is full, so readable
                selector_events.logger.debug("Fail to write to the loop's wake-up eventfd",
                             exc_info=OSError(err, os.strerror(err)))
        return 0

    cdef void drain_wake(self) noexcept:
        cdef uint64_t n
        if self.wake_fd >= 0:
            read(self.wake_fd, &n, 8)            # EAGAIN: already drained

    def _make_self_pipe(self):
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if fd < 0:
            raise OSError(errno, os.strerror(errno))
        self.wake_fd = fd
        self._ssock = self._csock = None         # the signal socketpair: made on first use
        self._internal_fds += 1
        self._add_reader(fd, self._fl_read_wakeup)

    def _fl_read_wakeup(self):
        """The eventfd's reader, for selectors whose events the iteration does not read
        itself (poll, select)."""
        self.drain_wake()

    def _write_to_self(self):
        self.wake()

    def _fl_make_signal_pipe(self):
        """asyncio's _make_self_pipe, for the signal wakeup fd only."""
        self._ssock, self._csock = socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1
        self._add_reader(self._ssock.fileno(), self._read_from_self)

    def _close_self_pipe(self):
        cdef int fd = self.wake_fd
        if fd >= 0:
            self._remove_reader(fd)
            self.wake_fd = -1                    # before close(2): see wake()
            close(fd)
            self._internal_fds -= 1
        if self._ssock is not None:              # asyncio's _close_self_pipe
            self._remove_reader(self._ssock.fileno())
            self._ssock.close()
            self._ssock = None
            self._csock.close()
            self._csock = None
            self._internal_fds -= 1


cdef inline double _when(object handle):
    if type(handle) is TimerHandle:
        return (<TimerHandle>handle)._when
    return handle._when


cdef inline bint _cancelled(object handle):
    if type(handle) is TimerHandle:
        return (<TimerHandle>handle)._cancelled
    return handle._cancelled


cdef void _drop_cancelled(LoopCore loop, list scheduled) except *:
    """asyncio's rule: rebuild the heap when most of it is cancelled, else pop the head."""
    cdef Py_ssize_t n = len(scheduled), i
    if n > MIN_SCHEDULED and <double>loop._timer_cancelled_count / n > MIN_CANCELLED_FRACTION:
        keep = []
        for h in scheduled:
            if _cancelled(h):
                h._scheduled = False
            else:
                keep.append(h)
        for i in reversed(range(len(keep) // 2)):     # heapq.heapify
            _sift_up(keep, i)
        scheduled[:] = keep                      # in place: the caller holds this list
        loop._timer_cancelled_count = 0
        return
    while scheduled and _cancelled(scheduled[0]):
        loop._timer_cancelled_count -= 1
        h = heap_pop(scheduled)
        h._scheduled = False


# ---- the scheduled heap: heapq's algorithm (Modules/_heapqmodule.c), comparing _when in C ----
# (TimerHandle.__lt__ is `_when <`: the same order as heapq's, without a rich comparison per
# step, which cost about 1,500 instructions per call_later)

cdef int heap_push(list heap, object item) except -1:
    heap.append(item)
    _sift_down(heap, 0, len(heap) - 1)
    return 0


cdef object heap_pop(list heap):
    last = heap.pop()                            # IndexError when empty, as heapq's
    if not heap:
        return last
    item = heap[0]
    heap[0] = last
    _sift_up(heap, 0)
    return item


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _sift_down(list heap, Py_ssize_t start, Py_ssize_t pos) except -1:
    """The item at pos moves toward start while it is earlier than its parent."""
    cdef Py_ssize_t parentpos
    newitem = heap[pos]
    cdef double when = _when(newitem)
    while pos > start:
        parentpos = (pos - 1) >> 1
        parent = heap[parentpos]
        if not when < _when(parent):
            break
        heap[pos] = parent
        pos = parentpos
    heap[pos] = newitem
    return 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _sift_up(list heap, Py_ssize_t pos) except -1:
    """The smaller child moves up until a leaf, then the item at pos sifts down to there."""
    cdef Py_ssize_t endpos = len(heap), startpos = pos, childpos, limit = endpos >> 1
    newitem = heap[pos]
    while pos < limit:
        childpos = 2 * pos + 1
        if childpos + 1 < endpos and not _when(heap[childpos]) < _when(heap[childpos + 1]):
            childpos += 1
        heap[pos] = heap[childpos]
        pos = childpos
    heap[pos] = newitem
    return _sift_down(heap, startpos, pos)
