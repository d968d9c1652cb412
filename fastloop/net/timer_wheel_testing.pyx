# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Test support: a TimerWheel driving N nodes held in a C array, by index, from Python.

Only for tests and benchmarks; the stack embeds its TimerNodes in its own objects. The bulk
methods (arm_range, arm_random, cancel_range, drain, rearm_cycle) loop in C so that tests of
100k timers run fast and the benchmark measures the wheel, not the interpreter.
"""
from libc.stdint cimport uint32_t, uint64_t, UINT32_MAX
from libc.stdlib cimport calloc, malloc, free
from fastloop.net.timer_wheel cimport TimerNode, TimerWheel, timer_init


cdef class WheelHarness:
    """N timer nodes, numbered 0..N-1, and the wheel they are armed in."""
    cdef readonly TimerWheel wheel
    cdef readonly uint32_t n
    cdef TimerNode *nodes
    cdef TimerNode **fired

    def __cinit__(self, uint32_t n, uint64_t tick_ns=1_000_000, uint64_t now_ns=0):
        cdef uint32_t i
        self.wheel = TimerWheel(tick_ns, now_ns)
        self.nodes = <TimerNode *>calloc(n + 1, sizeof(TimerNode))
        self.fired = <TimerNode **>malloc((n + 1) * sizeof(TimerNode *))
        if self.nodes == NULL or self.fired == NULL:
            raise MemoryError()
        self.n = n
        for i in range(n):
            timer_init(&self.nodes[i], i, <void *>self)

    def __dealloc__(self):
        cdef uint32_t i
        if self.nodes != NULL and self.wheel is not None:
            for i in range(self.n):          # owners cancel before they go (see the .pxd)
                self.wheel.cancel(&self.nodes[i])
        free(self.nodes)
        free(self.fired)

    cdef TimerNode *_node(self, uint32_t i) except NULL:
        if i >= self.n:
            raise IndexError(i)
        return &self.nodes[i]

    def arm(self, uint32_t i, uint64_t expires_ns):
        self.wheel.arm(self._node(i), expires_ns)

    def cancel(self, uint32_t i):
        self.wheel.cancel(self._node(i))

    def is_armed(self, uint32_t i):
        return self.wheel.is_armed(self._node(i))

    def expires_tick(self, uint32_t i):
        return self._node(i).expires

    def advance(self, uint64_t now_ns, max_fired=None):
        """advance(now_ns, max_fired) -> indices fired, in the order the wheel gave them."""
        cdef uint32_t cap = self.n if max_fired is None else min(<uint32_t>max_fired, self.n)
        cdef uint32_t k, got = self.wheel.advance(now_ns, self.fired, cap)
        cdef list out = []
        for k in range(got):
            assert self.fired[k].next == NULL and self.fired[k].owner == <void *>self
            out.append(<uint32_t>(self.fired[k] - self.nodes))
        return out

    def has_due(self, uint64_t now_ns):
        return self.wheel.has_due(now_ns)

    def next_expiry_ns(self):
        return self.wheel.next_expiry_ns()

    @property
    def count(self):
        return self.wheel.count

    # -- bulk, in C -------------------------------------------------------------------------

    def arm_range(self, uint32_t start, uint32_t stop, uint64_t base_ns, uint64_t step_ns=0):
        """Arm nodes start..stop-1, node i at base_ns + (i - start) * step_ns."""
        cdef uint32_t i
        if stop > self.n:
            raise IndexError(stop)
        for i in range(start, stop):
            self.wheel.arm(&self.nodes[i], base_ns + (i - start) * step_ns)

    def arm_random(self, uint32_t start, uint32_t stop, uint64_t base_ns, uint64_t spread_ns,
                   uint64_t seed=1):
        """Arm nodes start..stop-1 at base_ns + a pseudo-random offset in [0, spread_ns)."""
        cdef uint32_t i
        cdef uint64_t x = seed | 1
        if stop > self.n:
            raise IndexError(stop)
        if spread_ns == 0:
            raise ValueError("spread_ns must be positive")
        for i in range(start, stop):
            x ^= x << 13                    # xorshift64
            x ^= x >> 7
            x ^= x << 17
            self.wheel.arm(&self.nodes[i], base_ns + x % spread_ns)

    def cancel_range(self, uint32_t start, uint32_t stop):
        cdef uint32_t i
        if stop > self.n:
            raise IndexError(stop)
        for i in range(start, stop):
            self.wheel.cancel(&self.nodes[i])

    def rearm_cycle(self, uint64_t ops, uint32_t start, uint32_t stop, uint64_t base_ns,
                    uint64_t step_ns):
        """The RTO pattern: `ops` times, move node start + k % (stop - start) to
        base_ns + k * step_ns (each arm of an armed node is a cancel and an arm)."""
        cdef uint64_t k
        cdef uint32_t width = stop - start
        if stop > self.n or width == 0:
            raise IndexError(stop)
        for k in range(ops):
            self.wheel.arm(&self.nodes[start + <uint32_t>(k % width)], base_ns + k * step_ns)

    def drain(self, uint64_t now_ns, uint32_t batch):
        """advance(now_ns) in batches of `batch` until nothing is due; returns how many fired
        and the largest batch seen (which must not exceed `batch`)."""
        cdef uint64_t total = 0
        cdef uint32_t got, largest = 0
        batch = min(batch, self.n)
        while True:
            got = self.wheel.advance(now_ns, self.fired, batch)
            total += got
            largest = max(largest, got)
            if not self.wheel.has_due(now_ns):
                return total, largest
            if got == 0:
                raise AssertionError("has_due() with nothing fired")
