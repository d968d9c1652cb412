"""The timer wheel (fastloop/net/timer_wheel.pyx) through its test harness.

The rule every test holds the wheel to (timer_wheel.pxd): a timer armed for expires_ns has the
tick E = ceil(expires_ns / tick_ns) and fires in the first advance(now_ns) with
now_ns >= E * tick_ns (or, when E is already reached at arm time, the next advance).
"""
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastloop.net.timer_wheel_testing import WheelHarness

MS = 1_000_000
NEVER = 2**64 - 1


def fire_tick(expires_ns, tick_ns):
    return -(-expires_ns // tick_ns)


def drain_all(h, now_ns):
    fired = []
    while True:
        got = h.advance(now_ns, 64)
        fired += got
        if not got:
            return fired


# -- exact times ----------------------------------------------------------------------------

def test_fires_on_the_rounded_up_tick_never_early():
    h = WheelHarness(4, tick_ns=MS)
    h.arm(0, 5_500_000)                 # mid-tick: tick 6
    h.arm(1, 6_000_000)                 # on a tick boundary: tick 6
    h.arm(2, 6_000_001)                 # just after: tick 7
    assert h.advance(5_999_999) == []
    assert sorted(h.advance(6_000_000)) == [0, 1]
    assert h.advance(6_999_999) == []
    assert h.advance(7_000_000) == [2]
    assert h.count == 0


def test_every_ns_around_expiry_fires_exactly_at_the_tick_boundary():
    """Advancing one ns at a time: the fire moment is ceil(e/tick)*tick, which is >= e and
    less than one tick after it."""
    tick = 7
    rng = random.Random(5)
    for _ in range(200):
        now = rng.randrange(0, 5000)
        h = WheelHarness(1, tick_ns=tick, now_ns=now)
        e = now + rng.randrange(1, 3000)
        h.arm(0, e)
        fired_at = None
        t = now
        while fired_at is None:
            t += 1
            if h.advance(t):
                fired_at = t
        assert fired_at == fire_tick(e, tick) * tick
        assert e <= fired_at < e + tick


def test_expiry_in_the_past_fires_on_the_next_advance_even_at_the_same_now():
    h = WheelHarness(3, tick_ns=MS)
    assert h.advance(100 * MS) == []
    h.arm(0, 50 * MS)
    h.arm(1, 0)
    h.arm(2, 100 * MS)                  # exactly now: already reached
    assert h.has_due(100 * MS)
    assert h.next_expiry_ns() <= 100 * MS
    assert sorted(h.advance(100 * MS)) == [0, 1, 2]
    assert not h.has_due(100 * MS)


def test_time_going_back_fires_nothing_and_keeps_the_wheel():
    h = WheelHarness(1, tick_ns=MS)
    h.advance(10 * MS)
    h.arm(0, 12 * MS)
    assert h.advance(3 * MS) == []
    assert h.wheel.now_tick == 10
    assert h.advance(12 * MS) == [0]


def test_tick_ns_must_be_positive():
    with pytest.raises(ValueError):
        WheelHarness(1, tick_ns=0)


# -- cancel and re-arm ----------------------------------------------------------------------

def test_cancel_before_expiry_and_cancel_is_idempotent():
    h = WheelHarness(2, tick_ns=MS)
    h.arm(0, 5 * MS)
    h.arm(1, 5 * MS)
    h.cancel(0)
    h.cancel(0)
    assert not h.is_armed(0) and h.is_armed(1)
    assert h.count == 1
    assert h.advance(10 * MS) == [1]
    h.cancel(1)                         # already fired: a no-op
    assert h.count == 0
    h.wheel.check()


def test_cancel_of_a_due_timer_before_it_is_handed_out():
    h = WheelHarness(3, tick_ns=MS)
    h.arm_range(0, 3, 5 * MS)
    assert len(h.advance(5 * MS, 1)) == 1   # two stay due
    pending = [i for i in range(3) if h.is_armed(i)]
    assert len(pending) == 2
    h.cancel(pending[0])
    assert h.advance(5 * MS) == [pending[1]]
    assert not h.has_due(5 * MS) and h.count == 0


def test_rearm_moves_the_timer_later_and_earlier():
    h = WheelHarness(1, tick_ns=MS)
    h.arm(0, 10 * MS)
    h.arm(0, 300 * MS)                  # later, into level 1
    assert h.count == 1
    assert h.advance(299 * MS) == []
    h.arm(0, 299 * MS + 1)              # earlier again
    assert h.expires_tick(0) == 300
    assert h.count == 1
    assert h.advance(300 * MS) == [0]
    h.wheel.check()


def test_rearm_from_the_fired_batch():
    h = WheelHarness(2, tick_ns=MS)
    h.arm(0, 5 * MS)
    h.arm(1, 5 * MS)
    fired = h.advance(5 * MS)
    assert sorted(fired) == [0, 1]
    for i in fired:
        h.arm(i, 5 * MS + 200 * MS * (i + 1))
    assert h.count == 2
    assert h.advance(205 * MS) == [0]
    assert h.advance(405 * MS) == [1]


def test_mass_cancel_leaves_the_wheel_empty():
    n = 100_000
    h = WheelHarness(n, tick_ns=MS)
    h.arm_random(0, n, 1 * MS, 3 * 3600 * 1000 * MS, seed=7)   # up to 3 h: every level
    assert h.count == n
    assert h.wheel.check() == n
    h.cancel_range(0, n)
    assert h.count == 0
    assert h.wheel.check() == 0        # and every occupancy bit is clear
    assert h.next_expiry_ns() == NEVER
    steps = h.wheel.steps
    assert h.advance(10 * 3600 * 1000 * MS) == []
    assert h.wheel.steps == steps       # nothing to visit


# -- cascading ------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_cascade_across_each_level_boundary(level):
    """tick_ns = 1, so ticks are ns; the boundary 2**(8*level) is crossed one tick at a time
    and by jumps, and every timer fires on its own tick."""
    b = 2 ** (8 * level)
    start = b - 5
    offsets = [b - 1, b, b + 1, b + 255, b + 256, b + 257, b + 65535, b + 65536,
               2 * b - 1, 2 * b, 2 * b + 1, b + 2**24, b + 2**32 - 1, b + 2**32, b + 2**32 + 1]
    expiries = sorted(set(offsets))
    h = WheelHarness(len(expiries), tick_ns=1, now_ns=start)
    for i, e in enumerate(expiries):
        h.arm(i, e)
    h.wheel.check()
    for t in range(start + 1, b + 300):     # single ticks across the boundary
        assert h.advance(t) == [i for i, e in enumerate(expiries) if e == t]
        h.wheel.check()
    for i, e in enumerate(expiries):
        if e < b + 300:
            continue
        assert h.advance(e - 1) == []
        assert h.advance(e) == [i], (level, e)
        h.wheel.check()
    assert h.count == 0


def test_crossing_2_32_ticks_and_the_overflow_slot():
    """At 1 ms ticks, around tick 2**32 (~49.7 days), with timers beyond the wheel's 2**32-tick
    range that must be re-cascaded at each 2**32 boundary."""
    start = 2**32 - 100
    ticks = [2**32 - 1, 2**32, 2**32 + 1, 2**32 + 2**24, start + 2**32 - 1, start + 2**32,
             start + 2**32 + 1, 2**33 - 1, 2**33, 2**33 + 12345, 2**36 + 7]
    h = WheelHarness(len(ticks), tick_ns=MS, now_ns=start * MS)
    for i, t in enumerate(ticks):
        h.arm(i, t * MS - MS // 2)              # mid-tick: rounds up to t
        assert h.expires_tick(i) == t
    h.wheel.check()
    for i, t in enumerate(ticks):
        assert h.advance((t - 1) * MS + MS - 1) == []
        assert h.has_due(t * MS) and not h.has_due(t * MS - 1)
        assert h.advance(t * MS) == [i]
        h.wheel.check()
    assert h.wheel.steps <= 4 * len(ticks) + 16  # 2**36: one re-cascade per 2**32 boundary


# -- bounded work -----------------------------------------------------------------------------

def test_max_fired_bounds_each_advance_and_the_rest_stay_due():
    h = WheelHarness(1010, tick_ns=MS)
    h.arm_range(0, 1000, 5 * MS)
    h.arm_range(1000, 1010, 20 * MS)
    got = []
    while True:
        batch = h.advance(10 * MS, 64)
        assert len(batch) <= 64
        got += batch
        if len(batch) < 64:
            assert not h.has_due(10 * MS)
            break
        assert h.has_due(10 * MS) == (len(got) < 1000)
    assert sorted(got) == list(range(1000))
    assert h.count == 10
    assert h.advance(19 * MS) == []
    assert sorted(h.advance(20 * MS, 100)) == list(range(1000, 1010))


def test_bounded_batches_come_out_in_tick_order():
    h = WheelHarness(3000, tick_ns=1)
    h.arm_random(0, 3000, 1, 70_000, seed=3)
    ticks = []
    while True:
        batch = h.advance(70_000, 100)
        ticks += [h.expires_tick(i) for i in batch]
        if not batch:
            break
    assert len(ticks) == 3000
    assert ticks == sorted(ticks)


def test_drain_in_c():
    h = WheelHarness(50_000, tick_ns=MS)
    h.arm_random(0, 50_000, 0, 60_000 * MS, seed=11)
    total, largest = h.drain(60_000 * MS, 256)
    assert total == 50_000 and largest == 256
    assert h.count == 0


def test_long_idle_jump_does_not_walk_ticks():
    ten_hours = 10 * 3600 * 1000 * MS         # 36,000,000 ticks of 1 ms: level 3
    h = WheelHarness(1001, tick_ns=MS)
    assert h.advance(ten_hours) == []
    assert h.wheel.steps == 0                 # empty wheel: one jump, no visit
    h.arm(0, 2 * ten_hours)
    assert h.advance(2 * ten_hours) == [0]
    assert h.wheel.steps <= 4                 # level 3, 2, 1 block starts, then the tick
    assert h.wheel.cascaded <= 3
    steps = h.wheel.steps
    h.arm_random(1, 1001, 2 * ten_hours + 1, ten_hours, seed=9)
    assert len(h.advance(3 * ten_hours)) == 1000
    assert h.wheel.steps - steps <= 4 * 1000
    assert h.wheel.cascaded <= 3 + 3 * 1000   # each timer moves down at most once a level


def test_idle_jump_of_100_days_past_the_wheel_range():
    day = 24 * 3600 * 1000 * MS
    h = WheelHarness(1, tick_ns=MS)
    h.arm(0, 100 * day)                       # 8.64e9 ticks > 2**32: overflow slot
    assert h.advance(100 * day - 1) == []
    assert h.advance(100 * day) == [0]
    assert h.wheel.steps <= 2 + 4             # two 2**32 re-cascades, then down the levels


# -- next_expiry_ns and has_due ---------------------------------------------------------------

def test_next_expiry_ns_exact_in_level_0_and_a_lower_bound_above():
    h = WheelHarness(3, tick_ns=MS)
    assert h.next_expiry_ns() == NEVER
    h.arm(0, 200 * MS + 1)                    # tick 201, level 0
    assert h.next_expiry_ns() == 201 * MS
    h.arm(1, 100 * MS)
    assert h.next_expiry_ns() == 100 * MS
    h.cancel(1)
    h.cancel(0)
    h.arm(2, 1000 * MS + 3)                   # tick 1001, level 1 slot 3: block start 768
    assert h.next_expiry_ns() == 768 * MS
    assert h.advance(768 * MS) == []          # the early wake-up cascades it
    assert h.next_expiry_ns() == 1001 * MS
    assert h.advance(1001 * MS) == [2]
    assert h.next_expiry_ns() == NEVER


def test_an_event_loop_sleeping_until_next_expiry_never_fires_late():
    """Sleep exactly until next_expiry_ns() and advance: every timer fires at its exact fire
    moment, with at most 3 early wake-ups per distinct fire tick."""
    rng = random.Random(1)
    n = 2000
    h = WheelHarness(n, tick_ns=MS, now_ns=123 * MS + 17)
    want = {}
    for i in range(n):
        e = 123 * MS + rng.choice([rng.randrange(1, 300 * MS), rng.randrange(1, 10**8 * MS)])
        h.arm(i, e)
        want[i] = fire_tick(e, MS) * MS
    now = 123 * MS + 17
    wakeups = 0
    while h.count:
        nxt = h.next_expiry_ns()
        assert nxt <= min(want[i] for i in range(n) if h.is_armed(i))
        assert nxt > now
        now = nxt
        wakeups += 1
        for i in h.advance(now):
            assert want[i] == now
    assert wakeups <= 4 * len(set(want.values()))


def test_has_due_is_exact_inside_a_higher_level_slot():
    h = WheelHarness(1, tick_ns=1)
    h.arm(0, 300)                             # level 1, slot 1: block starts at 256
    assert h.next_expiry_ns() == 256
    assert not h.has_due(299)                 # the slot's block has started, the timer not
    assert h.has_due(300)
    assert h.advance(299) == []
    assert h.has_due(300) and not h.has_due(299)
    assert h.advance(300) == [0]


# -- a model ----------------------------------------------------------------------------------

N_NODES = 12

ticks_offset = st.one_of(
    st.integers(-300, 300),
    st.integers(-70_000, 70_000),
    st.integers(0, 2**25),
    st.integers(0, 2**34),
)
ticks_step = st.one_of(
    st.integers(0, 3),
    st.integers(0, 300),
    st.integers(0, 70_000),
    st.integers(0, 2**25),
    st.integers(0, 2**34),
    st.integers(-50, 0),                     # time going back: ignored
)
op = st.one_of(
    st.tuples(st.just("arm"), st.integers(0, N_NODES - 1), ticks_offset, st.integers(0, 10**6)),
    st.tuples(st.just("cancel"), st.integers(0, N_NODES - 1)),
    st.tuples(st.just("advance"), ticks_step, st.integers(0, 10**6),
              st.none() | st.integers(0, 4)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_ns=st.sampled_from([1, 1000, MS]),
       start_ticks=st.sampled_from([0, 7, 2**8 - 3, 2**16 - 3, 2**24 - 3, 2**32 - 3,
                                    2**32 + 2**24 - 2]),
       ops=st.lists(op, max_size=60))
def test_against_a_sorted_list_model(tick_ns, start_ticks, ops):
    now = start_ticks * tick_ns
    h = WheelHarness(N_NODES, tick_ns=tick_ns, now_ns=now)
    armed = {}                                # the model: node -> fire tick
    reached = now // tick_ns                  # the highest tick advanced to
    for o in ops:
        if o[0] == "arm":
            _, i, off, jitter = o
            e = max(0, now + off * tick_ns + jitter % tick_ns - tick_ns // 2)
            h.arm(i, e)
            armed[i] = fire_tick(e, tick_ns)
        elif o[0] == "cancel":
            h.cancel(o[1])
            armed.pop(o[1], None)
        else:
            _, step, jitter, cap = o
            now = max(0, now + step * tick_ns + jitter % tick_ns)
            reached = max(reached, now // tick_ns)
            due = sorted((t, i) for i, t in armed.items() if t <= reached)
            assert h.has_due(now) == bool(due)
            fired = h.advance(now, cap)
            assert len(fired) == len(set(fired))
            if cap is None:
                assert set(fired) == {i for _, i in due}
            else:
                assert len(fired) == min(cap, len(due))
                assert set(fired) <= {i for _, i in due}
            for i in fired:
                del armed[i]
            assert h.has_due(now) == (len(due) > len(fired))
        assert h.count == len(armed)
        assert h.wheel.check() == len(armed)
        assert [h.is_armed(i) for i in range(N_NODES)] == [i in armed for i in range(N_NODES)]
        nxt = h.next_expiry_ns()
        if armed:                             # a timer already due fires at the next advance
            soonest = min(max(t, h.wheel.now_tick) for t in armed.values())
            assert h.wheel.now_tick * tick_ns <= nxt <= soonest * tick_ns
        else:
            assert nxt == NEVER


def test_a_stop_at_max_fired_is_owed_even_if_time_then_goes_back():
    """advance(1) stopped by max_fired=0 has still been asked for tick 1: a timer armed for
    tick 1 afterwards is due, also at an advance whose clock reads earlier (hypothesis found
    the wheel forgetting the tick it stopped short of)."""
    h = WheelHarness(N_NODES, tick_ns=1, now_ns=0)
    h.arm(0, 0)
    assert h.advance(1, 0) == []
    h.arm(0, 1)
    assert h.has_due(0)
    assert h.advance(0, None) == [0]
    assert h.count == 0 and h.wheel.check() == 0
