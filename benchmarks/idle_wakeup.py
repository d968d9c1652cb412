"""What the adaptive idle policy costs in latency: a kernel client pings a fastloop TCP echo
server over net_tap, one 64-byte message every --gap ms (so that an adaptive loop has gone to
sleep before each one), with the server in `busy-poll` and in `adaptive`, in one run.

    python benchmarks/idle_wakeup.py [--count 400] [--gap 5] [--repeat 2]

The server is a separate process pinned to CPU 1 (the client, this process, to CPU 0): a
busy-polling loop holds the GIL, so it cannot share a process with a timing client.
Prints p50/p90/p99 round trips and the server's CPU share for each mode; writes JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_proc import connect, server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "idle_wakeup.json"
SERVER = r"""
import asyncio, os, sys
sys.path.insert(0, sys.argv[1])
import fastloop
from fastloop.config import StackConfig
os.sched_setaffinity(0, {1})
cfg = StackConfig(iface="tap:" + sys.argv[2], address=sys.argv[3] + ".2/24",
                  tap_peer=sys.argv[3] + ".1", idle=sys.argv[4])
class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo, None, 7300)
    print("ready", flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(15, stop.set_result, None)
    await stop
fastloop.run(main(), loop_factory=lambda: fastloop.new_event_loop(cfg))
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_mode(mode, count, gap, net, ifname):
    with server(SERVER, REPO, ifname, net, mode) as proc:
        s = connect(f"{net}.2", 7300)
        msg = b"x" * 64
        rtts = []
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        for _ in range(count):
            time.sleep(gap / 1000)
            start = time.perf_counter_ns()
            s.sendall(msg)
            got = 0
            while got < 64:
                got += len(s.recv(64 - got))
            rtts.append((time.perf_counter_ns() - start) / 1000)
        cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        s.close()
    rtts.sort()
    return {"p50_us": rtts[len(rtts) // 2], "p90_us": rtts[int(len(rtts) * 0.9)],
            "p99_us": rtts[int(len(rtts) * 0.99)], "server_cpu": cpu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--gap", type=float, default=5.0, help="ms between messages")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args(argv)
    os.sched_setaffinity(0, {0})
    out = {}
    for r in range(args.repeat):
        for mode in (("busy-poll", "adaptive") if r % 2 == 0 else ("adaptive", "busy-poll")):
            res = run_mode(mode, args.count, args.gap, f"10.24{r % 10}.{os.getpid() % 250}",
                           f"flidle{os.getpid() % 1000}")
            out.setdefault(mode, []).append(res)
            print(f"{mode:10s} p50 {res['p50_us']:7.1f} us  p90 {res['p90_us']:7.1f} us  "
                  f"p99 {res['p99_us']:7.1f} us  server CPU {res['server_cpu']:.0%}", flush=True)
    summary = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in out.items()}
    cost = summary["adaptive"]["p50_us"] - summary["busy-poll"]["p50_us"]
    print(f"\nadaptive wake-up cost at p50: {cost:+.1f} us per round trip; server CPU "
          f"{summary['adaptive']['server_cpu']:.0%} adaptive vs "
          f"{summary['busy-poll']['server_cpu']:.0%} busy-poll")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "meta": {"date": datetime.date.today().isoformat(),
                 "command": "python benchmarks/idle_wakeup.py " + " ".join(argv or sys.argv[1:]),
                 "count": args.count, "gap_ms": args.gap, "repeat": args.repeat},
        "runs": out, "summary": summary, "adaptive_p50_cost_us": cost}, indent=1))


if __name__ == "__main__":
    main()
