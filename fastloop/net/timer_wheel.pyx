# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A hierarchical timing wheel for every TCP timer: O(1) arm and cancel, no allocation.

Built for timers that are mostly cancelled (RTO and delayed ACK are re-armed or cancelled on
nearly every segment): arm and cancel are a few pointer writes and never touch other timers.
The cost of a timer that lives to its tick is at most one move per level it passes (cascade).
Time, rounding and invariants are in timer_wheel.pxd.

advance() is bounded twice over: it hands out at most max_fired timers (the rest stay in the
due queue, and has_due() says so), and it never walks ticks one by one: it jumps from one
occupied slot to the next with the per-level occupancy bitmaps, so an idle jump of hours
costs a handful of visits (counted in `steps`).
"""
from libc.stdint cimport UINT64_MAX

cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil

cdef inline int _next_set(const uint64_t *bm, uint32_t start) noexcept nogil:
    """The first set bit at or after `start` in a 256-bit bitmap, or -1."""
    cdef uint32_t w
    cdef uint64_t word
    if start >= TW_SLOTS:
        return -1
    w = start >> 6
    word = bm[w] & (UINT64_MAX << (start & 63))
    while True:
        if word != 0:
            return <int>((w << 6) | <uint32_t>__builtin_ctzll(word))
        w += 1
        if w == TW_WORDS:
            return -1
        word = bm[w]

cdef inline uint32_t _field(uint64_t tick, uint32_t level) noexcept nogil:
    """Bits [8*level, 8*level + 8) of a tick: its slot in that level."""
    return <uint32_t>(tick >> (TW_BITS * level)) & TW_MASK

cdef inline uint64_t _above(uint64_t tick, uint32_t level) noexcept nogil:
    """The tick with the bits of `level` and below cleared: the start of its level+1 block."""
    cdef uint32_t shift = TW_BITS * (level + 1)
    return (tick >> shift) << shift

cdef inline int _slot_for(uint64_t expires, uint64_t now) noexcept nogil:
    """The list head index for a timer at `expires` when the wheel is at `now`; -1: due."""
    if expires <= now:
        return -1
    cdef uint64_t x = expires ^ now
    if x < (<uint64_t>1 << 8):
        return <int>(expires & TW_MASK)
    if x < (<uint64_t>1 << 16):
        return TW_SLOTS + <int>_field(expires, 1)
    if x < (<uint64_t>1 << 24):
        return 2 * TW_SLOTS + <int>_field(expires, 2)
    if x < (<uint64_t>1 << 32):
        return 3 * TW_SLOTS + <int>_field(expires, 3)
    return 3 * TW_SLOTS                     # overflow: level 3, slot 0 (see the .pxd)

cdef inline void _link_tail(TimerNode *head, TimerNode *t) noexcept nogil:
    t.prev = head.prev
    t.next = head
    head.prev.next = t
    head.prev = t

cdef inline void _move_all(TimerNode *src, TimerNode *dst) noexcept nogil:
    """Append the whole non-empty list at src to the tail of dst; src becomes empty."""
    cdef TimerNode *first = src.next
    cdef TimerNode *last = src.prev
    first.prev = dst.prev
    dst.prev.next = first
    last.next = dst
    dst.prev = last
    src.next = src
    src.prev = src

cdef inline bint _slot_has_by(TimerNode *head, uint64_t target) noexcept nogil:
    """Does the list at head hold a timer at a tick <= target?"""
    cdef TimerNode *t = head.next
    while t != head:
        if t.expires <= target:
            return True
        t = t.next
    return False


cdef class TimerWheel:
    def __cinit__(self):
        cdef uint32_t s
        for s in range(TW_HEADS):
            self.heads[s].next = &self.heads[s]
            self.heads[s].prev = &self.heads[s]
        self.due.next = &self.due
        self.due.prev = &self.due
        self.tick_ns = 1

    def __init__(self, uint64_t tick_ns=1_000_000, uint64_t now_ns=0):
        if tick_ns == 0:
            raise ValueError("tick_ns must be positive")
        if self.count:
            raise RuntimeError("TimerWheel re-initialised with armed timers")
        self.tick_ns = tick_ns
        self.now_tick = now_ns // tick_ns
        self.target_tick = self.now_tick

    def __dealloc__(self):
        self.clear()

    # -- the interface ----------------------------------------------------------------------

    cdef void arm(self, TimerNode *t, uint64_t expires_ns) noexcept:
        """Arm t to fire at expires_ns (see the .pxd for rounding); an armed t is moved."""
        cdef uint64_t e = expires_ns // self.tick_ns
        if e * self.tick_ns != expires_ns:
            e += 1                                  # round up: never fire early
        if t.next != NULL:
            self._unlink(t)
        else:
            self.count += 1
        t.expires = e
        self._place(t)

    cdef void cancel(self, TimerNode *t) noexcept:
        """Disarm t; nothing happens if it is not armed."""
        if t.next != NULL:
            self._unlink(t)
            self.count -= 1

    cdef bint is_armed(self, TimerNode *t) noexcept:
        return t.next != NULL

    cdef uint32_t advance(self, uint64_t now_ns, TimerNode **fired,
                          uint32_t max_fired) noexcept:
        """Move the wheel to now_ns and hand out up to max_fired due timers, unlinked, in
        fired[0..n). Returns n. Timers beyond max_fired stay due (has_due() is then true)
        and come out first on the next call; the wheel stops at the tick it was at.

        Fired timers come out in the order their ticks were reached; a timer armed already
        due joins the back of the due queue. A node in `fired` is unarmed when returned and
        may be re-armed at once; a caller that may free an owner while handling the batch
        must keep the owners of later entries alive until it has handled them."""
        cdef uint64_t target = max(now_ns // self.tick_ns, self.target_tick)
        cdef uint64_t tick
        cdef TimerNode *t
        cdef uint32_t n = 0
        self.target_tick = target                   # stopped at max_fired: still owed later
        while True:
            while n < max_fired and self.due.next != &self.due:
                t = self.due.next
                self._unlink(t)
                fired[n] = t
                n += 1
            if self.due.next != &self.due or self.now_tick >= target:
                break
            tick = self._next_work_tick()
            if tick > target:
                self.now_tick = target              # nothing occupied in between: jump
                break
            self.now_tick = tick
            self._visit(tick)
        self.count -= n
        return n

    cdef bint has_due(self, uint64_t now_ns) noexcept:
        """Exactly: would advance(now_ns) fire a timer? O(1) right after advance(now_ns)
        (the due queue is then the answer); otherwise it may scan the higher-level slots
        that advance(now_ns) would cascade."""
        if self.due.next != &self.due:
            return True
        cdef uint64_t target = max(now_ns // self.tick_ns, self.target_tick)
        if target <= self.now_tick:
            return False
        return self._due_in_wheel(target)

    cdef uint64_t next_expiry_ns(self) noexcept:
        """When the loop must wake at the latest, or UINT64_MAX with no timer armed.

        Never later than E * tick_ns for the earliest timer (the first moment advance() can
        fire it), and equal to it when that timer is due or within the current 256-tick
        block (level 0). Otherwise it is the start of the block of the earliest occupied
        higher-level slot: an early wake-up there cascades that slot, after which the
        answer is exact or one level finer (so at most 3 early wake-ups per expiry). When
        timers are due already it returns now_tick * tick_ns, which is not after the last
        now_ns advanced to: wake at once."""
        if self.due.next != &self.due:
            return self.now_tick * self.tick_ns
        cdef uint64_t tick = self._next_work_tick()
        if tick == UINT64_MAX or tick > UINT64_MAX // self.tick_ns:
            return UINT64_MAX
        return tick * self.tick_ns

    cdef void clear(self) noexcept:
        """Disarm every timer (their owners must still be alive)."""
        cdef uint32_t s
        cdef TimerNode *h
        cdef TimerNode *t
        cdef TimerNode *nxt
        for s in range(TW_HEADS + 1):
            h = &self.heads[s] if s < TW_HEADS else &self.due
            t = h.next
            while t != h:
                nxt = t.next
                t.next = NULL
                t.prev = NULL
                t = nxt
            h.next = h
            h.prev = h
        for s in range(TW_LEVELS * TW_WORDS):
            self.occupied[s] = 0
        self.count = 0

    # -- internals --------------------------------------------------------------------------

    cdef void _place(self, TimerNode *t) noexcept:
        cdef int s = _slot_for(t.expires, self.now_tick)
        if s < 0:
            _link_tail(&self.due, t)
        else:
            _link_tail(&self.heads[s], t)
            self.occupied[s >> 6] |= <uint64_t>1 << (s & 63)

    cdef void _unlink(self, TimerNode *t) noexcept:
        cdef TimerNode *p = t.prev
        cdef TimerNode *n = t.next
        cdef Py_ssize_t s
        p.next = n
        n.prev = p
        if p == n and p != &self.due:               # only a sentinel is left: slot empty
            s = p - &self.heads[0]
            self.occupied[s >> 6] &= ~(<uint64_t>1 << (s & 63))
        t.next = NULL
        t.prev = NULL

    cdef uint64_t _next_work_tick(self) noexcept:
        """The next tick after now_tick at which a slot has work, or UINT64_MAX."""
        cdef uint64_t now = self.now_tick
        cdef uint32_t level
        cdef int i
        for level in range(TW_LEVELS):
            i = _next_set(&self.occupied[level * TW_WORDS], _field(now, level) + 1)
            if i >= 0:
                return _above(now, level) | (<uint64_t>i << (TW_BITS * level))
        if self.occupied[3 * TW_WORDS] & 1:         # overflow: the next 2**32 boundary
            return _above(now, 3) + (<uint64_t>1 << 32)
        return UINT64_MAX

    cdef void _visit(self, uint64_t tick) noexcept:
        """Process one tick: cascade the higher slots that start here (top first), then
        move level 0's slot for this tick to the due queue."""
        cdef uint32_t level
        cdef uint32_t s = <uint32_t>(tick & TW_MASK)
        self.steps += 1
        for level in range(TW_LEVELS - 1, 0, -1):
            if tick & ((<uint64_t>1 << (TW_BITS * level)) - 1) == 0:
                self._cascade(level, _field(tick, level))
        if self.occupied[s >> 6] & (<uint64_t>1 << (s & 63)):
            _move_all(&self.heads[s], &self.due)
            self.occupied[s >> 6] &= ~(<uint64_t>1 << (s & 63))

    cdef void _cascade(self, uint32_t level, uint32_t slot) noexcept:
        cdef uint32_t s = level * TW_SLOTS + slot
        cdef TimerNode tmp
        cdef TimerNode *t
        cdef TimerNode *nxt
        if not self.occupied[s >> 6] & (<uint64_t>1 << (s & 63)):
            return
        tmp.next = &tmp
        tmp.prev = &tmp
        _move_all(&self.heads[s], &tmp)             # detach: overflow may come back here
        self.occupied[s >> 6] &= ~(<uint64_t>1 << (s & 63))
        t = tmp.next
        while t != &tmp:
            nxt = t.next
            self._place(t)
            self.cascaded += 1
            t = nxt

    cdef bint _due_in_wheel(self, uint64_t target) noexcept:
        """Is a timer in the wheel at a tick <= target (target > now_tick)?"""
        cdef uint64_t now = self.now_tick
        cdef uint64_t start
        cdef uint32_t level
        cdef int i
        for level in range(TW_LEVELS):
            i = _next_set(&self.occupied[level * TW_WORDS], _field(now, level) + 1)
            while i >= 0:
                start = _above(now, level) | (<uint64_t>i << (TW_BITS * level))
                if start > target:
                    return False                    # every later slot starts later still
                if level == 0 or _slot_has_by(&self.heads[level * TW_SLOTS + i], target):
                    return True
                i = _next_set(&self.occupied[level * TW_WORDS], <uint32_t>i + 1)
        if self.occupied[3 * TW_WORDS] & 1 and _above(now, 3) + (<uint64_t>1 << 32) <= target:
            return _slot_has_by(&self.heads[3 * TW_SLOTS], target)
        return False

    # -- for tests and debugging --------------------------------------------------------------

    def check(self):
        """Walk every list and assert the invariants of the .pxd; returns the armed count."""
        cdef uint64_t total = 0, seen
        cdef uint32_t s
        cdef TimerNode *h
        cdef TimerNode *t
        cdef bint bit
        for s in range(TW_HEADS + 1):
            h = &self.heads[s] if s < TW_HEADS else &self.due
            if s < TW_HEADS:
                bit = (self.occupied[s >> 6] >> (s & 63)) & 1
                assert bit == (h.next != h), f"slot {s}: bitmap {bit}, list {h.next != h}"
            t = h.next
            seen = 0
            while t != h:
                assert t.next.prev == t and t.prev.next == t, f"list {s}: broken links"
                want = _slot_for(t.expires, self.now_tick)
                got = <int>s if s < TW_HEADS else -1
                assert want == got, \
                    f"tick {t.expires} in list {got}, belongs in {want} (now {self.now_tick})"
                seen += 1
                assert seen <= self.count, f"list {s}: more nodes than count {self.count}"
                t = t.next
            total += seen
        assert total == self.count, f"count {self.count}, {total} linked"
        return total
