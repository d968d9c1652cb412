"""call_at/call_later ordering on asyncio and fastloop (whose scheduled heap compares _when in
C, fastloop/loop/core.pyx): the same heap invariant, the same firing order, cancellations,
and the rebuild of a heap that is mostly cancelled."""
import asyncio
import random

from loop_testbase import strict_loop  # noqa: F401


def assert_heap(heap):
    for i in range(1, len(heap)):
        assert heap[(i - 1) // 2]._when <= heap[i]._when, i


def test_timers_fire_in_when_order_each_once_and_never_when_cancelled(strict_loop):
    loop = strict_loop.loop
    rng = random.Random(7)
    fired = []
    base = loop.time() + 0.02
    # many ties (when in 50 distinct values), pushed in random order
    whens = [base + rng.randrange(50) * 1e-4 for _ in range(3000)]
    handles = [loop.call_at(w, fired.append, (w, i)) for i, w in enumerate(whens)]
    assert_heap(loop._scheduled)
    cancelled = set(rng.sample(range(len(handles)), 1000))
    for i in cancelled:
        handles[i].cancel()
    strict_loop.run(asyncio.sleep(0.05))
    assert sorted(i for _, i in fired) == sorted(set(range(len(whens))) - cancelled)
    assert [w for w, _ in fired] == sorted(w for w, _ in fired)
    assert loop._scheduled == []


def test_a_mostly_cancelled_heap_is_rebuilt_and_keeps_its_order(strict_loop):
    loop = strict_loop.loop
    rng = random.Random(11)
    fired = []
    base = loop.time() + 0.05
    handles = [loop.call_at(base + rng.random() * 0.01, fired.append, i) for i in range(400)]
    keep = set(rng.sample(range(400), 100))
    for i, h in enumerate(handles):
        if i not in keep:
            h.cancel()                                # 75% cancelled: over asyncio's 50%
    loop.run_until_complete(asyncio.sleep(0))         # one iteration rebuilds the heap
    assert len(loop._scheduled) == len(keep)
    assert loop._timer_cancelled_count == 0
    assert_heap(loop._scheduled)
    assert not any(h._scheduled for i, h in enumerate(handles) if i not in keep)
    strict_loop.run(asyncio.sleep(0.08))
    assert sorted(fired) == sorted(keep)
    assert [handles[i].when() for i in fired] == sorted(handles[i].when() for i in fired)
