"""N connect / 64-byte exchange / close cycles on one fastloop loop in stack-loopback mode:
the conn case's client and server (benchmarks/bench_peer.py's protocols) in one process,
over the stack's own loopback queue, 8 workers. For instruction counts that do not depend on
two processes' scheduling (benchmarks/path_cost.py --kind conn-loop).

    python benchmarks/conn_loop.py N
"""
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastloop                                              # noqa: E402
from bench_peer import CONN_MSG, ConnClient, ConnServer      # noqa: E402
from fastloop.config import StackConfig                      # noqa: E402
from fastloop.dev.device import ring_pair                    # noqa: E402
from fastloop.stack import Stack                             # noqa: E402

WORKERS = 8


async def cycles(loop, n):
    server = await loop.create_server(ConnServer, "127.0.0.1", 7000, backlog=1024)
    left = [n]

    async def worker(i):
        seq = i << 40
        while left[0] > 0:
            left[0] -= 1
            seq += 1
            msg = seq.to_bytes(8, "little") + bytes(CONN_MSG - 8)
            done = loop.create_future()
            await loop.create_connection(lambda: ConnClient(msg, done), "127.0.0.1", 7000)
            why = await done
            if why is not None:
                raise SystemExit(f"cycle failed: {why}")
    await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    server.close()


def main():
    n = int(sys.argv[1])
    a, b = ring_pair()               # 127/8 never leaves the stack: the ring only carries ARP
    stack = Stack(StackConfig(address="10.9.3.2/24", tap_peer=None, loopback=True,
                              tcp_time_wait=0.5), device=a)
    loop = fastloop.new_event_loop(stack)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(cycles(loop, n))
        tcp = stack.counters()["tcp"]
        print(f"{tcp['active_opens']} connections, {tcp['passive_opens']} accepted")
    finally:
        loop.close()
        stack.close()
        b.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
