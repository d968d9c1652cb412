"""Timer wheel micro benchmark: ns per operation for 1M timers, loops in C (the test harness).

    python benchmarks/timer_wheel_bench.py [--timers 1000000] [--repeat 5] [--spread-ms 60000]

- arm+cancel: arm N timers at random expiries in [1 ms, spread] (1 ms ticks, so levels 0-2),
  then cancel them all: the common life of an RTO or delayed-ACK timer.
- arm+fire: arm N the same way, then advance to the end of the spread in batches of 1024:
  every timer cascades down and fires.
- re-arm (move): N moves of 10k armed timers to a later expiry, as the RTO on each ACK.
Prints the median over repeats; records nothing.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))    # the in-place build
from fastloop.net.timer_wheel_testing import WheelHarness

MS = 1_000_000


def timed(fn, *args):
    t0 = time.perf_counter_ns()
    out = fn(*args)
    return time.perf_counter_ns() - t0, out


def arm_cancel(n, spread_ns, seed):
    h = WheelHarness(n, tick_ns=MS)
    t_arm, _ = timed(h.arm_random, 0, n, MS, spread_ns, seed)
    t_cancel, _ = timed(h.cancel_range, 0, n)
    assert h.count == 0
    return t_arm / n, t_cancel / n, (t_arm + t_cancel) / n


def arm_fire(n, spread_ns, seed):
    h = WheelHarness(n, tick_ns=MS)
    t_arm, _ = timed(h.arm_random, 0, n, MS, spread_ns, seed)
    t_fire, (fired, _) = timed(h.drain, MS + spread_ns, 1024)
    assert fired == n and h.count == 0
    return t_arm / n, t_fire / n, (t_arm + t_fire) / n


def rearm(n, live=10_000):
    h = WheelHarness(live, tick_ns=MS)
    h.arm_range(0, live, 200 * MS)
    t, _ = timed(h.rearm_cycle, n, 0, live, 200 * MS, 1000)   # +1 us per op: RTO creep
    assert h.count == live
    return t / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--spread-ms", type=int, default=60_000)
    a = ap.parse_args()
    spread = a.spread_ms * MS
    ac = [arm_cancel(a.timers, spread, s + 1) for s in range(a.repeat)]
    af = [arm_fire(a.timers, spread, s + 1) for s in range(a.repeat)]
    mv = [rearm(a.timers) for _ in range(a.repeat)]
    med = lambda rows, k: statistics.median(r[k] for r in rows)   # noqa: E731
    print(f"timer wheel, {a.timers} timers over {a.spread_ms} ms at 1 ms ticks, "
          f"median of {a.repeat}")
    print(f"  arm+cancel   {med(ac, 2):7.1f} ns/timer  (arm {med(ac, 0):.1f}, "
          f"cancel {med(ac, 1):.1f})")
    print(f"  arm+fire     {med(af, 2):7.1f} ns/timer  (arm {med(af, 0):.1f}, "
          f"advance+fire {med(af, 1):.1f})")
    print(f"  re-arm move  {statistics.median(mv):7.1f} ns/op     (10k armed timers)")


if __name__ == "__main__":
    main()
