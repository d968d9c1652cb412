"""Our stack to the kernel over net_tap, beside two kernel sockets over loopback, in one run.

    python benchmarks/tcp_tap.py [--seconds 3] [--bulk-mib 1024] [--repeat 2]

The client is a kernel TCP socket in this process (CPU 0). The server (CPU 1, its own
process) runs the same asyncio protocols twice: on fastloop, busy-polling, on a net_tap port
(so the bytes cross Linux's TCP on one side and ours on the other), and on uvloop over
kernel loopback (kernel TCP on both sides). Cases: 64-byte request/response on one
connection (round trips/s, p50/p99), and a 1 GiB bulk send on one connection (the server
counts the bytes and answers the count at EOF; Gbit/s). Writes JSON and prints a table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_proc import connect, server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "tcp_tap.json"
SERVER = r"""
import asyncio, os, sys
sys.path.insert(0, sys.argv[1])
os.sched_setaffinity(0, {1})
kind, ifname, net = sys.argv[2], sys.argv[3], sys.argv[4]

class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)

class Count(asyncio.Protocol):
    def connection_made(self, t): self.t, self.n = t, 0
    def data_received(self, d): self.n += len(d)
    def eof_received(self):
        self.t.write(b"%d\n" % self.n)
        return False

async def main(host):
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo, host, 7400)
    await loop.create_server(Count, host, 7401)
    print("ready", flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(15, stop.set_result, None)
    await stop

if kind == "fastloop":
    import fastloop
    from fastloop.config import StackConfig
    cfg = StackConfig(iface="tap:" + ifname, address=net + ".2/24", tap_peer=net + ".1",
                      idle="busy-poll")
    fastloop.run(main(None), loop_factory=lambda: fastloop.new_event_loop(cfg))
else:
    import uvloop
    uvloop.run(main("127.0.0.1"))
"""


def request_response(host, seconds):
    s = connect(host, 7400)
    msg = b"m" * 64
    lat = []
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        got = b""
        while len(got) < 64:
            got += s.recv(64 - len(got))
        lat.append(time.perf_counter_ns() - t0)
        if got != msg:
            raise RuntimeError("echo mismatch")
        if time.perf_counter() > end:
            break
    s.close()
    lat.sort()
    total = sum(lat) / 1e9
    return {"rt_per_s": len(lat) / total, "p50_us": lat[len(lat) // 2] / 1e3,
            "p99_us": lat[int(len(lat) * 0.99)] / 1e3, "n": len(lat)}


def bulk(host, mib):
    s = connect(host, 7401)
    chunk = os.urandom(1 << 20)
    t0 = time.perf_counter()
    for _ in range(mib):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        b = s.recv(64)
        if not b:
            break
        reply += b
    dt = time.perf_counter() - t0
    s.close()
    if int(reply) != mib << 20:
        raise RuntimeError(f"server counted {reply!r}, sent {mib << 20}")
    return {"gbit_per_s": (mib << 20) * 8 / dt / 1e9, "seconds": dt}


def run_server(kind, ifname, net, fn):
    with server(SERVER, REPO, kind, ifname, net):
        return fn(f"{net}.2" if kind == "fastloop" else "127.0.0.1")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--bulk-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args(argv)
    os.sched_setaffinity(0, {0})
    net, ifname = f"10.239.{os.getpid() % 250}", f"fltap{os.getpid() % 10000}"
    runs = {"fastloop": {"rr": [], "bulk": []}, "uvloop": {"rr": [], "bulk": []}}
    for r in range(args.repeat):
        for kind in (("fastloop", "uvloop") if r % 2 == 0 else ("uvloop", "fastloop")):
            rr = run_server(kind, ifname, net, lambda h: request_response(h, args.seconds))
            bk = run_server(kind, ifname, net, lambda h: bulk(h, args.bulk_mib))
            runs[kind]["rr"].append(rr)
            runs[kind]["bulk"].append(bk)
            print(f"{kind:9s} 64 B rr {rr['rt_per_s']:9,.0f}/s p50 {rr['p50_us']:6.1f} us "
                  f"p99 {rr['p99_us']:7.1f} us   bulk {bk['gbit_per_s']:5.2f} Gbit/s", flush=True)
    med = {k: {"rt_per_s": statistics.median(x["rt_per_s"] for x in v["rr"]),
               "p50_us": statistics.median(x["p50_us"] for x in v["rr"]),
               "p99_us": statistics.median(x["p99_us"] for x in v["rr"]),
               "gbit_per_s": statistics.median(x["gbit_per_s"] for x in v["bulk"])}
           for k, v in runs.items()}
    f, u = med["fastloop"], med["uvloop"]
    print("\n| server | path | 64 B rr/s | p50 µs | p99 µs | bulk Gbit/s |")
    print("|---|---|---|---|---|---|")
    print(f"| fastloop (busy-poll) | kernel client → net_tap → our TCP | {f['rt_per_s']:,.0f} | "
          f"{f['p50_us']:.1f} | {f['p99_us']:.1f} | {f['gbit_per_s']:.2f} |")
    print(f"| uvloop | kernel client → loopback → kernel TCP | {u['rt_per_s']:,.0f} | "
          f"{u['p50_us']:.1f} | {u['p99_us']:.1f} | {u['gbit_per_s']:.2f} |")
    print(f"| ratio fastloop/uvloop | | {f['rt_per_s'] / u['rt_per_s']:.2f} | "
          f"{f['p50_us'] / u['p50_us']:.2f} | {f['p99_us'] / u['p99_us']:.2f} | "
          f"{f['gbit_per_s'] / u['gbit_per_s']:.2f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "meta": {"date": datetime.date.today().isoformat(),
                 "command": "python benchmarks/tcp_tap.py " + " ".join(argv or sys.argv[1:])},
        "runs": runs, "median": med}, indent=1))


if __name__ == "__main__":
    main()
