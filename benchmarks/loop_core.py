"""Loop-core microbenchmarks: fastloop beside uvloop and stdlib asyncio, in one run.

    python benchmarks/loop_core.py [--repeat 5] [--scale 1.0] [--json PATH]

Workloads (each timed as one run_until_complete, best of --repeat, runs interleaved):
  call_soon     N callbacks, each scheduling the next batch, in batches of 100
  call_later    N timers at 0-1 ms (half of them cancelled), run until all fired
  future        N futures created, resolved with call_soon, awaited, in one coroutine
  task          N tasks created and gathered, each awaiting sleep(0) twice
  stream_echo   64-byte request/response over asyncio streams on 127.0.0.1, one connection:
                asyncio and uvloop cross the kernel; fastloop runs in stack-loopback mode, so
                its bytes cross the userspace stack (a net_ring device, busy-poll)
Prints a Markdown table with ns per operation and ratios (uvloop / fastloop: above 1 is
fastloop faster), and writes JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "loop_core.json"


def bench_call_soon(loop, n):
    done = loop.create_future()
    left = [n]

    def cb():
        left[0] -= 1
        if left[0] == 0:
            done.set_result(None)
        elif left[0] % 100 == 0:
            for _ in range(100):
                loop.call_soon(cb)
    for _ in range(100):
        loop.call_soon(cb)
    return done


def bench_call_later(loop, n):
    done = loop.create_future()
    left = [n // 2]

    def cb():
        left[0] -= 1
        if left[0] == 0:
            done.set_result(None)

    async def main():
        for i in range(n):
            h = loop.call_later((i % 1000) / 1e6, cb)
            if i % 2:
                h.cancel()
        await done
    return main()


def bench_future(loop, n):
    async def main():
        for _ in range(n):
            f = loop.create_future()
            loop.call_soon(f.set_result, 1)
            await f
    return main()


def bench_task(loop, n):
    async def child():
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def main():
        for _ in range(n // 1000):
            await asyncio.gather(*[loop.create_task(child()) for _ in range(1000)])
    return main()


def bench_stream_echo(loop, n):
    async def handle(reader, writer):
        while data := await reader.read(64):
            writer.write(data)
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        msg = b"x" * 64
        for _ in range(n):
            writer.write(msg)
            got = 0
            while got < 64:
                got += len(await reader.read(64 - got))
        writer.close()
        server.close()
        await server.wait_closed()
    return main()


WORKLOADS = {"call_soon": (bench_call_soon, 200_000), "call_later": (bench_call_later, 50_000),
             "future": (bench_future, 100_000), "task": (bench_task, 50_000),
             "stream_echo": (bench_stream_echo, 10_000)}


class Loops:
    """Makes each kind of loop; fastloop's stack (loopback mode, net_ring) is made once."""

    def __init__(self):
        self.stack = self.peer = None

    def make(self, kind):
        if kind == "asyncio":
            return asyncio.new_event_loop()
        if kind == "uvloop":
            import uvloop
            return uvloop.new_event_loop()
        import fastloop
        if self.stack is None:
            from fastloop.config import StackConfig
            from fastloop.dev.device import ring_pair
            from fastloop.stack import Stack
            a, self.peer = ring_pair("bench")
            self.stack = Stack(StackConfig(address="10.250.0.2/24", tap_peer=None,
                                           loopback=True, idle="busy-poll"), device=a)
        return fastloop.new_event_loop(self.stack)

    def close(self):
        if self.stack is not None:
            self.stack.close()
            self.peer.close()


def run_one(loops, kind, workload, n):
    loop = loops.make(kind)
    try:
        asyncio.set_event_loop(loop)
        fn, _ = WORKLOADS[workload]
        gc.collect()
        t0 = time.perf_counter_ns()
        loop.run_until_complete(fn(loop, n))
        return (time.perf_counter_ns() - t0) / n
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import uvloop
    return {"cpu": cpu, "vcpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "uvloop": uvloop.__version__}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every N")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args(argv)
    kinds = ("asyncio", "uvloop", "fastloop")
    loops = Loops()
    results = {}
    try:
        for workload in args.only.split(","):
            n = max(1000, int(WORKLOADS[workload][1] * args.scale))
            samples = {k: [] for k in kinds}
            for r in range(args.repeat):
                order = kinds if r % 2 == 0 else kinds[::-1]   # interleave: noise hits all
                for kind in order:
                    samples[kind].append(run_one(loops, kind, workload, n))
            best = {k: min(v) for k, v in samples.items()}
            results[workload] = {"n": n, "ns_per_op": best,
                                 "median_ns_per_op": {k: statistics.median(v)
                                                      for k, v in samples.items()},
                                 "uvloop_over_fastloop": best["uvloop"] / best["fastloop"],
                                 "asyncio_over_fastloop": best["asyncio"] / best["fastloop"]}
            print(f"{workload:12s} " + "  ".join(f"{k} {best[k]:8.0f} ns" for k in kinds)
                  + f"   uvloop/fastloop {results[workload]['uvloop_over_fastloop']:.2f}",
                  flush=True)
    finally:
        loops.close()
    meta = {"date": datetime.date.today().isoformat(),
            "command": "python benchmarks/loop_core.py " + " ".join(argv or sys.argv[1:]),
            "machine": machine(), "repeat": args.repeat}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print()
    print("| workload | N | asyncio ns/op | uvloop ns/op | fastloop ns/op | uvloop/fastloop | asyncio/fastloop |")
    print("|---|---|---|---|---|---|---|")
    for w, r in results.items():
        b = r["ns_per_op"]
        print(f"| {w} | {r['n']} | {b['asyncio']:.0f} | {b['uvloop']:.0f} | {b['fastloop']:.0f} "
              f"| {r['uvloop_over_fastloop']:.2f} | {r['asyncio_over_fastloop']:.2f} |")


if __name__ == "__main__":
    main()
