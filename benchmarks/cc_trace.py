"""NewReno and CUBIC side by side: cwnd over time through one bottleneck, and per-ACK cost.

    python benchmarks/cc_trace.py [--seconds 30] [--every 1.0]

A round-based model (no packets): each round the whole window goes out; if it exceeds the
path's BDP plus the bottleneck buffer, the excess is lost, the sender enters fast recovery
(cc_on_congestion with the window in flight) and leaves it one round later; otherwise the
window's ACKs come back over the round (delayed ACKs, 2 segments each), the RTT growing with
the standing queue. Prints cwnd in segments every --every seconds, then losses and mean
utilisation (delivered / capacity). Then the cost of cc_on_ack called from C (no Python in
the loop), ns per ACK. Deterministic: no clock in the model, only in the cost measurement.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout

from fastloop.net.tcp.congestion_testing import CUBIC, NEWRENO, CongestionControl, bench_acks

SMSS = 1448
NAMES = {NEWRENO: "newreno", CUBIC: "cubic"}


def run(algorithm, rate_bps, base_rtt_s, buffer_bdp, seconds):
    """Yields (t, cwnd_segments, utilisation, lost) per round."""
    pkts_per_s = rate_bps / 8 / SMSS
    bdp = pkts_per_s * base_rtt_s
    limit = bdp * (1 + buffer_bdp)
    cc = CongestionControl(algorithm, SMSS, 0)
    now = 0
    recovering = False
    while now < seconds * 1e9:
        w = cc.cwnd / SMSS
        rtt_ns = int((base_rtt_s + max(0.0, w - bdp) / pkts_per_s) * 1e9)
        lost = w > limit
        if recovering:
            cc.on_recovery_exit(now)
            recovering = False
        elif lost:
            cc.on_congestion(cc.cwnd, now)
            recovering = True
        else:
            flight, acked = cc.cwnd, 0
            while acked < flight:
                b = min(2 * SMSS, flight - acked)
                acked += b
                cc.on_ack(b, flight, rtt_ns, now + rtt_ns * acked // flight, True)
        yield now / 1e9, w, min(w, limit) / (pkts_per_s * rtt_ns / 1e9), lost
        now += rtt_ns


def trace(rate_bps, base_rtt_s, buffer_bdp, seconds, every):
    print(f"\n## {rate_bps / 1e6:.0f} Mbit/s, RTT {base_rtt_s * 1e3:.0f} ms, "
          f"buffer {buffer_bdp:.1f} BDP (BDP {rate_bps / 8 / SMSS * base_rtt_s:.0f} segments)\n")
    series = {a: list(run(a, rate_bps, base_rtt_s, buffer_bdp, seconds)) for a in NAMES}
    print("| t (s) | newreno cwnd | cubic cwnd |")
    print("|------:|-------------:|-----------:|")
    mark = 0.0
    while mark <= seconds:
        row = []
        for a in NAMES:
            w = [w for t, w, _, _ in series[a] if t <= mark]
            row.append(f"{w[-1]:.0f}" if w else "-")
        print(f"| {mark:5.1f} | {row[0]:>12} | {row[1]:>10} |")
        mark += every
    for a, s in series.items():
        losses = sum(1 for *_, lost in s if lost)
        util = sum(min(1.0, u) for _, _, u, _ in s) / len(s)
        print(f"{NAMES[a]:8}: {losses} loss events, mean utilisation {util:.1%} (per round)")


def cost(n=5_000_000):
    print("\n## cc_on_ack cost (C loop, congestion avoidance, 1 SMSS per ACK)\n")
    for a in NAMES:
        best = min(_timed(a, n) for _ in range(3))
        print(f"{NAMES[a]:8}: {best:.1f} ns per ACK")


def _timed(algorithm, n):
    t = time.perf_counter_ns()
    bench_acks(algorithm, n)
    return (time.perf_counter_ns() - t) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=1.0)
    args = ap.parse_args()
    trace(100e6, 0.020, 1.0, args.seconds, args.every)
    trace(1e9, 0.100, 0.2, args.seconds, args.every)
    cost()


if __name__ == "__main__":
    main()
