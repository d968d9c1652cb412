"""Instructions per 64-byte echo round trip on fastloop's userspace stack, from callgrind.

    python benchmarks/echo_instructions.py [--n 2000] [--protocol proto|stream]

Client and server run in one process and one loop in stack-loopback mode (a net_ring
device), so one round trip is everything both ends of the benchmark's echo do per request:
two TCP inputs and outputs, two callbacks into Python, the loop's passes. The count is taken
twice (n and 2n round trips) under `valgrind --tool=callgrind` and subtracted, so start-up,
EAL and import cost drop out. Deterministic: use it to compare a change before and after on
a busy machine, where timings are noise. Prints instructions per round trip, and the top
functions of the difference with --top.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def workload(n: int, kind: str) -> None:
    sys.path.insert(0, str(REPO))
    import fastloop
    from fastloop.config import StackConfig
    from fastloop.dev.device import ring_pair
    from fastloop.stack import Stack

    a, peer = ring_pair("instr")
    stack = Stack(StackConfig(address="10.250.0.2/24", tap_peer=None, loopback=True,
                              idle="busy-poll"), device=a)
    loop = fastloop.new_event_loop(stack)
    msg = b"x" * 64

    class Echo(asyncio.Protocol):
        def connection_made(self, t):
            self.t = t

        def data_received(self, data):
            self.t.write(data)

    class Client(asyncio.Protocol):
        def __init__(self, done):
            self.left, self.done, self.got = n, done, 0

        def connection_made(self, t):
            self.t = t
            t.write(msg)

        def data_received(self, data):
            self.got += len(data)
            if self.got < 64:
                return
            self.got = 0
            self.left -= 1
            if self.left:
                self.t.write(msg)
            else:
                self.done.set_result(None)

    async def proto():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        done = loop.create_future()
        t, _ = await loop.create_connection(lambda: Client(done), "127.0.0.1", port)
        await done
        t.close()
        server.close()
        await server.wait_closed()

    if kind == "stream":                          # the same streams echo as loop_core.py's
        sys.path.insert(0, str(REPO / "benchmarks"))
        from loop_core import bench_stream_echo
        loop.run_until_complete(bench_stream_echo(loop, n))
    else:
        loop.run_until_complete(proto())
    loop.close()
    stack.close()
    peer.close()


def count(n: int, kind: str, out: Path) -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, __file__, "--run", str(n), "--protocol", kind],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = out.read_text(errors="replace")
    return int(re.search(r"^summary:\s+(\d+)", text, re.M).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--protocol", choices=("proto", "stream"), default="proto")
    ap.add_argument("--top", type=int, default=0, help="also print the top functions")
    ap.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run is not None:
        workload(args.run, args.protocol)
        return
    with tempfile.TemporaryDirectory() as d:
        one = count(args.n, args.protocol, Path(d) / "one.out")
        two = count(2 * args.n, args.protocol, Path(d) / "two.out")
        print(f"{args.protocol} echo, 64 B: {(two - one) / args.n:,.0f} instructions per "
              f"round trip (client + server, one process; n={args.n})")
        if args.top:
            subprocess.run(["callgrind_annotate", "--inclusive=no", f"--threshold=99",
                            str(Path(d) / "two.out")], check=False)


if __name__ == "__main__":
    main()
