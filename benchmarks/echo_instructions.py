"""Instructions per request on fastloop's userspace stack (or on uvloop), from callgrind.

    python benchmarks/echo_instructions.py [--n 2000] [--protocol proto|stream|http]
                                           [--loop fastloop|uvloop]

Client and server run in one process and one loop: on fastloop in stack-loopback mode (a
net_ring device), on uvloop over kernel loopback; so one round trip is everything both ends
do per request in user space: for fastloop two TCP inputs and outputs, two callbacks into
Python, the loop's passes (uvloop's kernel TCP is not counted: callgrind sees user space
only). `proto` is a 64 B asyncio.Protocol echo, `stream` the same over streams, `http` an
aiohttp hello-world server with a minimal keep-alive client (one request in flight; the
client's Python is the same on both loops). The count is taken twice (n and 2n round trips)
under `valgrind --tool=callgrind` and subtracted, so start-up, EAL and import cost drop out.
Deterministic: use it to compare a change before and after on a busy machine, where timings
are noise. Prints instructions per round trip, and the top functions of the difference with
--top.
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


HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
HTTP_BODY = b"Hello, World!"


def workload(n: int, kind: str, loop_name: str) -> None:
    sys.path.insert(0, str(REPO))
    stack = peer = None
    if loop_name == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
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

    class HttpClient(asyncio.Protocol):
        """Keep-alive GETs, one in flight; a response ends with the hello body."""
        def __init__(self, done):
            self.left, self.done, self.buf = n, done, b""

        def connection_made(self, t):
            self.t = t
            t.write(HTTP_REQUEST)

        def data_received(self, data):
            self.buf += data
            if not self.buf.endswith(HTTP_BODY):
                return
            assert self.buf.startswith(b"HTTP/1.1 200"), self.buf
            self.buf = b""
            self.left -= 1
            if self.left:
                self.t.write(HTTP_REQUEST)
            else:
                self.done.set_result(None)

    async def http():
        from aiohttp import web

        async def hello(request):
            return web.Response(text=HTTP_BODY.decode())
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        done = loop.create_future()
        t, _ = await loop.create_connection(lambda: HttpClient(done), "127.0.0.1", port)
        await done
        t.close()
        await runner.cleanup()

    if kind == "stream":                          # the same streams echo as loop_core.py's
        sys.path.insert(0, str(REPO / "benchmarks"))
        from loop_core import bench_stream_echo
        loop.run_until_complete(bench_stream_echo(loop, n))
    elif kind == "http":
        loop.run_until_complete(http())
    else:
        loop.run_until_complete(proto())
    loop.close()
    if stack is not None:
        stack.close()
        peer.close()


def count(n: int, kind: str, loop_name: str, out: Path) -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, __file__, "--run", str(n), "--protocol", kind,
                    "--loop", loop_name],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = out.read_text(errors="replace")
    return int(re.search(r"^summary:\s+(\d+)", text, re.M).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--protocol", choices=("proto", "stream", "http"), default="proto")
    ap.add_argument("--loop", choices=("fastloop", "uvloop"), default="fastloop")
    ap.add_argument("--top", type=int, default=0, help="also print the top functions")
    ap.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run is not None:
        workload(args.run, args.protocol, args.loop)
        return
    with tempfile.TemporaryDirectory() as d:
        one = count(args.n, args.protocol, args.loop, Path(d) / "one.out")
        two = count(2 * args.n, args.protocol, args.loop, Path(d) / "two.out")
        what = "aiohttp hello" if args.protocol == "http" else f"{args.protocol} echo, 64 B"
        print(f"{args.loop}, {what}: {(two - one) / args.n:,.0f} instructions per "
              f"round trip (client + server, one process; n={args.n})")
        if args.top:
            subprocess.run(["callgrind_annotate", "--inclusive=no", f"--threshold=99",
                            str(Path(d) / "two.out")], check=False)


if __name__ == "__main__":
    main()
