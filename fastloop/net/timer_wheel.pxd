# cython: language_level=3
# The one timer wheel (ARCHITECTURE rule 12): hierarchical, after Varghese & Lauck (1987),
# with the levels addressed by absolute tick bits, as in the classic Linux timer wheel.
#
# Time. The wheel counts ticks of `tick_ns`. A timer armed for `expires_ns` gets the tick
#   E = ceil(expires_ns / tick_ns), and the wheel's clock is T = floor(now_ns / tick_ns) of the
#   latest advance (it never goes back). The timer fires in the first advance() after which
#   E <= T, that is in the first advance(now_ns) with now_ns >= E * tick_ns: never before
#   expires_ns, and less than one tick after it (E * tick_ns - expires_ns < tick_ns) when the
#   loop advances at least once per tick. Arming with E <= T puts the timer straight into the
#   due queue: it fires on the next advance, whatever its now_ns.
#
# Nodes. A TimerNode lives inside its owner (a connection, a C struct): arming allocates
#   nothing. A node is armed iff it is linked (next != NULL); a zeroed node is unarmed.
#   The owner must cancel its nodes before it is freed. `expires` is in ticks, set by arm().
#   `kind` and `owner` belong to the caller; the wheel never reads them.
#
# Invariants (checked by TimerWheel.check()). With T = now_tick and level k covering bits
#   [8k, 8k+8) of a tick:
#   - a node in the due queue has expires <= T;
#   - a node in level k, slot i has expires > T, the same bits above 8k+8 as T, and
#     i = bits [8k, 8k+8) of expires, which are greater than those of T (level 0: the slot
#     is its exact tick);
#   - level 3, slot 0 is the overflow slot: expires differs from T above bit 32 (more than
#     2**32 ticks, ~49.7 days at 1 ms, away). It is re-cascaded at every 2**32 boundary.
#   - bit i of occupied[k] is set iff slot (k, i) is non-empty.
#   So all of level 0 is earlier than all of level 1, and so on; the next tick with work is
#   the first occupied slot of the lowest non-empty level, found in the bitmaps.
#   Ticks must stay below 2**64 - 2**32 (at tick_ns = 1: 584 years): no wrap of the counter.
from libc.stdint cimport uint32_t, uint64_t

cdef enum:
    TW_BITS = 8
    TW_SLOTS = 256                       # slots per level
    TW_MASK = 255
    TW_LEVELS = 4                        # 4 x 8 bits: 2**32 ticks
    TW_WORDS = 4                         # uint64_t words in one level's occupancy bitmap
    TW_HEADS = 1024                      # TW_LEVELS * TW_SLOTS list heads

cdef struct TimerNode:
    TimerNode *next                      # NULL when unarmed
    TimerNode *prev
    uint64_t expires                     # ticks: ceil(expires_ns / tick_ns)
    uint32_t kind                        # the caller's: which timer of the owner this is
    void *owner                          # borrowed; the caller's to interpret

cdef inline void timer_init(TimerNode *t, uint32_t kind, void *owner) noexcept nogil:
    """Set up an unarmed node (a zeroed node is unarmed too)."""
    t.next = NULL
    t.prev = NULL
    t.expires = 0
    t.kind = kind
    t.owner = owner

cdef inline bint timer_armed(const TimerNode *t) noexcept nogil:
    return t.next != NULL

cdef class TimerWheel:
    cdef TimerNode heads[TW_HEADS]       # circular list sentinels, level * TW_SLOTS + slot
    cdef TimerNode due                   # sentinel: expired, not yet handed out (FIFO)
    cdef uint64_t occupied[TW_LEVELS * TW_WORDS]
    cdef readonly uint64_t tick_ns
    cdef readonly uint64_t now_tick      # T: every tick <= T has been processed
    cdef uint64_t target_tick            # the latest tick advance() was asked for (time that
                                         # goes back is ignored: the wheel still owes it)
    cdef readonly uint64_t count         # armed timers (wheel + due queue)
    cdef readonly uint64_t steps         # work counter: ticks with work visited by advance
    cdef readonly uint64_t cascaded      # work counter: nodes moved down by cascades

    cdef void arm(self, TimerNode *t, uint64_t expires_ns) noexcept
    cdef void cancel(self, TimerNode *t) noexcept
    cdef bint is_armed(self, TimerNode *t) noexcept
    cdef uint32_t advance(self, uint64_t now_ns, TimerNode **fired,
                          uint32_t max_fired) noexcept
    cdef bint has_due(self, uint64_t now_ns) noexcept
    cdef uint64_t next_expiry_ns(self) noexcept
    cdef void clear(self) noexcept

    cdef void _place(self, TimerNode *t) noexcept
    cdef void _unlink(self, TimerNode *t) noexcept
    cdef uint64_t _next_work_tick(self) noexcept
    cdef void _visit(self, uint64_t tick) noexcept
    cdef void _cascade(self, uint32_t level, uint32_t slot) noexcept
    cdef bint _due_in_wheel(self, uint64_t target) noexcept
