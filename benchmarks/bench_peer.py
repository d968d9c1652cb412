"""One side of a `python -m fastloop bench` pair: a server or a client process.

    python benchmarks/bench_peer.py server --loop fastloop --kind echo-proto --port 7000 \
        --iface memif:/tmp/x.sock,role=server,socket-abstract=no --address 10.249.1.1/24
    python benchmarks/bench_peer.py client --loop fastloop --kind echo-proto --host 10.249.1.1 \
        --port 7000 --size 64 --conns 1 --seconds 2 --server-pid N --iface ... --address ...

Loops: fastloop (userspace stack, busy-polling), uvloop, asyncio (both on kernel loopback).
Kinds:
  echo-proto   asyncio.Protocol echo; the client keeps one message in flight per connection,
               each carrying a fresh sequence number, and compares every reply byte for byte
  echo-stream  the same with start_server/open_connection (readexactly, write + drain)
  bulk         one connection sends --total bytes; the server counts them and hashes them
               (CRC-32) and answers "<length> <crc>" at EOF; the client checks both
  conn         connect, send 64 B, the server echoes and closes, the client checks the reply
               and the EOF, closes; --conns workers do this in parallel
  http         (server only) aiohttp hello world; the load is wrk, run by benchmarks/run.py

The server prints one JSON line {"ready": ...} once listening and serves until SIGTERM, then
prints {"stopped": ..., counters} and exits 0. The client prints one JSON result line; it
measures the server's CPU time (/proc/<server-pid>/stat utime+stime) over its timed window.
A fastloop client waits for the memif link (ICMP echo until the first answer) before it
connects, and after its result lingers with its port open until SIGTERM: DPDK 22.11's memif
server must see the client go after it does (benchmarks/l3/pinger.c).
"""
from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import random
import signal
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLK_TCK = os.sysconf("SC_CLK_TCK")
BULK_CHUNK = 1 << 20
CONN_MSG = 64


def proc_cpu_s(pid):
    """User + system CPU seconds of process `pid` (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK     # utime, stime (fields 14, 15)


def runq_wait_s(pid):
    """Seconds the main thread of `pid` has been runnable but waiting for a CPU (the second
    field of /proc/<pid>/schedstat): on a shared machine, the time another process had our
    core. None where the kernel has no schedstat."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def make_loop(args):
    if args.loop == "fastloop":
        import fastloop
        cfg = fastloop.StackConfig(iface=args.iface, address=args.address,
                                   tap_peer=args.tap_peer or None, idle="busy-poll",
                                   mtu=args.mtu,
                                   pcap=os.environ.get("FASTLOOP_PCAP") or None)
        return fastloop.new_event_loop(stack=cfg)
    if args.loop == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    if args.loop == "asyncio":
        return asyncio.new_event_loop()
    raise SystemExit(f"unknown loop {args.loop!r}")


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def bulk_chunk(block, i):
    """Chunk i of the bulk stream: its index, then the seeded random block."""
    return i.to_bytes(8, "little") + block[8:]


def bulk_block(seed):
    return random.Random(seed).randbytes(BULK_CHUNK)


# ---- servers --------------------------------------------------------------------------------
class EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


class BulkServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.n, self.crc = transport, 0, 0

    def data_received(self, data):
        self.n += len(data)
        self.crc = zlib.crc32(data, self.crc)

    def eof_received(self):
        self.t.write(f"{self.n} {self.crc}\n".encode())
        self.t.close()
        return True


class ConnServer(asyncio.Protocol):
    """Echo one CONN_MSG-byte message, then close (the server is the active closer, so
    TIME-WAIT stays here, as in an HTTP/1.0 server)."""

    def connection_made(self, transport):
        self.t, self.buf = transport, b""

    def data_received(self, data):
        self.buf += data
        if len(self.buf) >= CONN_MSG:
            self.t.write(self.buf)
            self.t.close()


async def stream_echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(args, loop):
    host = args.host or None
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = None
    if args.kind == "echo-stream":
        srv = await asyncio.start_server(stream_echo, host, args.port, backlog=1024)
    elif args.kind == "http":
        from aiohttp import web

        async def hello(request):
            return web.Response(text="Hello, World!")
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, args.port, backlog=1024)
        await site.start()
        srv = None
    else:
        proto = {"echo-proto": EchoServer, "bulk": BulkServer, "conn": ConnServer}[args.kind]
        srv = await loop.create_server(proto, host, args.port, backlog=1024)
    emit({"ready": True, "pid": os.getpid(), "loop": args.loop, "kind": args.kind})
    await stop.wait()
    if runner is not None:
        await runner.cleanup()
    if srv is not None:
        srv.close()
    out = {"stopped": True, "pid": os.getpid(), "cpu_s": proc_cpu_s(os.getpid())}
    if args.loop == "fastloop":
        c = loop.stack.counters()
        out["drops"] = c.get("drops")
        out["tcp"] = {k: v for k, v in c.get("tcp", {}).items()
                      if isinstance(v, int) and v} if isinstance(c.get("tcp"), dict) else None
    emit(out)


# ---- clients --------------------------------------------------------------------------------
class Window:
    """The timed window: warm-up until `t0`, then record until `t1` (perf_counter_ns)."""

    def __init__(self, args):
        self.args = args
        self.recording = False
        self.done = False
        self.lat = array.array("q")
        self.count = 0
        self.bad = 0
        self.errors = []
        self.cpu0 = self.cpu1 = None
        self.wait0 = self.wait1 = (None, None)
        self.t0 = self.t1 = None

    def start(self):
        self.wait0 = self._waits()
        self.cpu0 = proc_cpu_s(self.args.server_pid) if self.args.server_pid else None
        self.t0 = time.perf_counter_ns()
        self.recording = True

    def stop(self):
        self.t1 = time.perf_counter_ns()
        self.cpu1 = proc_cpu_s(self.args.server_pid) if self.args.server_pid else None
        self.wait1 = self._waits()
        self.recording = False
        self.done = True

    def _waits(self):
        return (runq_wait_s(self.args.server_pid) if self.args.server_pid else None,
                runq_wait_s(os.getpid()))

    def runq_waits(self):
        """(server, client) seconds spent waiting for a CPU during the window."""
        return tuple(None if a is None or b is None else b - a
                     for a, b in zip(self.wait0, self.wait1))

    def schedule(self, loop, finished):
        loop.call_later(self.args.warmup, self.start)

        def end():
            self.stop()
            finished.set_result(None)
        loop.call_later(self.args.warmup + self.args.seconds, end)

    def result(self, **extra):
        secs = (self.t1 - self.t0) / 1e9
        lat = sorted(self.lat)

        def pct(p):
            return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1e3 if lat else None
        cpu = None if self.cpu0 is None else self.cpu1 - self.cpu0
        srv_wait, cli_wait = self.runq_waits()
        r = {"ok": self.bad == 0 and not self.errors and self.count > 0,
             "requests": self.count, "seconds": secs, "req_per_s": self.count / secs,
             "p50_us": pct(50), "p99_us": pct(99), "p999_us": pct(99.9),
             "max_us": lat[-1] / 1e3 if lat else None, "bad_replies": self.bad,
             "errors": self.errors[:5], "server_cpu_s": cpu,
             "server_cpu_us_per_req": (cpu / self.count * 1e6
                                       if cpu is not None and self.count else None),
             "server_runq_wait_s": srv_wait, "client_runq_wait_s": cli_wait}
        r.update(extra)
        return r


class EchoClient(asyncio.Protocol):
    """One message in flight: send, collect exactly len(msg) bytes, compare, send the next."""

    def __init__(self, w, size, seq0):
        self.w, self.filler, self.seq = w, bytes(range(256)) * (size // 256 + 1), seq0
        self.size = size
        self.filler = self.filler[:size - 8]

    def connection_made(self, transport):
        self.t = transport
        self.send()

    def send(self):
        self.seq += 1
        self.msg = self.seq.to_bytes(8, "little") + self.filler
        self.buf = bytearray()
        self.ts = time.perf_counter_ns()
        self.t.write(self.msg)

    def data_received(self, data):
        self.buf += data
        if len(self.buf) < self.size:
            return
        w = self.w
        if self.buf != self.msg:
            w.bad += 1
        elif w.recording:
            w.lat.append(time.perf_counter_ns() - self.ts)
            w.count += 1
        if not w.done:
            self.send()

    def connection_lost(self, exc):
        if not self.w.done:
            self.w.errors.append(f"connection lost: {exc!r}")


async def echo_proto_client(args, loop, w):
    finished = loop.create_future()
    conns = []
    for i in range(args.conns):
        t, _ = await loop.create_connection(lambda: EchoClient(w, args.size, i << 40),
                                            args.host, args.port)
        conns.append(t)
    w.schedule(loop, finished)
    await finished
    for t in conns:
        t.close()


async def echo_stream_client(args, loop, w):
    finished = loop.create_future()
    filler = (bytes(range(256)) * (args.size // 256 + 1))[:args.size - 8]
    pairs = [await asyncio.open_connection(args.host, args.port) for _ in range(args.conns)]

    async def one(i, reader, writer):
        seq = i << 40
        while not w.done:
            seq += 1
            msg = seq.to_bytes(8, "little") + filler
            ts = time.perf_counter_ns()
            writer.write(msg)
            await writer.drain()
            reply = await reader.readexactly(args.size)
            if reply != msg:
                w.bad += 1
            elif w.recording:
                w.lat.append(time.perf_counter_ns() - ts)
                w.count += 1
        writer.close()

    w.schedule(loop, finished)
    tasks = [asyncio.ensure_future(one(i, r, wr)) for i, (r, wr) in enumerate(pairs)]
    await finished
    await asyncio.wait_for(asyncio.gather(*tasks), 10)


class BulkClient(asyncio.Protocol):
    def __init__(self, total, block, done, window):
        self.total, self.block, self.done, self.window = total, block, done, window
        self.i = 0
        self.sent = 0
        self.reply = b""
        self.paused = False

    def connection_made(self, transport):
        self.t = transport
        # the window is the transfer itself: from here, before the first write, to the
        # server's answer (started after create_connection returned, it missed what the
        # socket buffers took meanwhile: with 8 MiB, most of the transfer)
        self.window.start()
        self.pump()

    def pump(self):
        while not self.paused and self.sent < self.total:
            chunk = bulk_chunk(self.block, self.i)[:self.total - self.sent]
            self.i += 1
            self.sent += len(chunk)
            self.t.write(chunk)
        if self.sent >= self.total and not self.t.is_closing() and self.t.can_write_eof():
            if not getattr(self, "eof_sent", False):
                self.eof_sent = True
                self.t.write_eof()
                self.tcp_info = tcp_info(self.t)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.pump()

    def data_received(self, data):
        self.reply += data

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result((self.reply, exc))


async def bulk_client(args, loop, w):
    block = bulk_block(args.seed)
    crc, n = 0, 0
    for i in range((args.total + BULK_CHUNK - 1) // BULK_CHUNK):   # before the timer
        chunk = bulk_chunk(block, i)[:args.total - n]
        crc = zlib.crc32(chunk, crc)
        n += len(chunk)
    done = loop.create_future()
    t, proto = await loop.create_connection(lambda: BulkClient(args.total, block, done, w),
                                            args.host, args.port)
    reply, exc = await done
    w.stop()
    t.close()
    want = f"{args.total} {crc}"
    got = reply.decode(errors="replace").strip()
    if got != want:
        w.bad += 1
        w.errors.append(f"server saw {got!r}, sent {want!r} (length crc32)")
    if exc is not None:
        w.errors.append(f"connection lost: {exc!r}")
    w.count = 1
    secs = (w.t1 - w.t0) / 1e9
    return {"bytes": args.total, "crc32": crc, "gbit_per_s": args.total * 8 / secs / 1e9,
            "mib_per_s": args.total / secs / (1 << 20),
            "client_tcp_info_at_eof": getattr(proto, "tcp_info", None),
            "client_tcp_counters": tcp_counters(loop)}


def tcp_info(transport):
    """fastloop: the connection's TCP_INFO-like dict (cwnd, ssthresh, srtt...); else None."""
    conn = getattr(transport.get_extra_info("socket"), "_conn", None)
    if conn is None or not hasattr(conn, "info"):
        return None
    return {k: v for k, v in conn.info().items() if isinstance(v, (int, float, str, bool))}


def tcp_counters(loop):
    if not hasattr(loop, "stack") or getattr(loop, "_fl_config", None) is None:
        return None
    tcp = loop.stack.counters().get("tcp")
    return {k: v for k, v in tcp.items() if isinstance(v, int) and v} if isinstance(tcp, dict) else None


class ConnClient(asyncio.Protocol):
    """Send one message; done when the connection is gone: the result says whether the
    reply matched and the server's FIN came (None) or what went wrong."""

    def __init__(self, msg, done):
        self.msg, self.done, self.buf, self.eof = msg, done, b"", False

    def connection_made(self, transport):
        transport.write(self.msg)

    def data_received(self, data):
        self.buf += data

    def eof_received(self):
        self.eof = True
        return False                      # close our side too

    def connection_lost(self, exc):
        if self.done.done():
            return
        if exc is not None:
            self.done.set_result(f"connection lost: {exc!r}")
        elif not self.eof or self.buf != self.msg:
            self.done.set_result(f"bad reply {self.buf[:16]!r}... eof={self.eof}")
        else:
            self.done.set_result(None)


async def conn_client(args, loop, w):
    finished = loop.create_future()

    async def one(i):
        seq = i << 40
        while not w.done:
            seq += 1
            msg = seq.to_bytes(8, "little") + bytes(CONN_MSG - 8)
            done = loop.create_future()
            ts = time.perf_counter_ns()
            try:
                await loop.create_connection(lambda: ConnClient(msg, done), args.host, args.port)
                why = await done
            except OSError as e:
                why = f"connect: {e!r}"
            if why is not None:
                w.bad += 1
                w.errors.append(why)
                return
            if w.recording:
                w.lat.append(time.perf_counter_ns() - ts)
                w.count += 1

    w.schedule(loop, finished)
    tasks = [asyncio.ensure_future(one(i)) for i in range(args.conns)]
    await finished
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    return {"client_tcp_counters": tcp_counters(loop)}


def wait_link(loop, host, timeout=20.0):
    """fastloop over memif: ping until the first answer (the control channel connects
    asynchronously, on EAL's interrupt thread), which also resolves ARP."""
    stack = loop.stack
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.ping(host, count=1, timeout=0.25)[0] is not None:
            return
    raise SystemExit(f"no answer from {host} over {args_iface(loop)} in {timeout:.0f} s")


def args_iface(loop):
    return loop.stack.config.iface


async def linger(loop):
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


def client(args):
    loop = make_loop(args)
    asyncio.set_event_loop(loop)
    try:
        if args.loop == "fastloop":
            wait_link(loop, args.host)
        w = Window(args)
        body = {"echo-proto": echo_proto_client, "echo-stream": echo_stream_client,
                "bulk": bulk_client, "conn": conn_client}[args.kind]
        try:
            extra = loop.run_until_complete(asyncio.wait_for(
                body(args, loop, w), args.warmup + args.seconds + 120)) or {}
        except Exception as e:                       # reported, not raised: the run fails
            w.errors.append(f"{type(e).__name__}: {e}")
            if w.t0 is None:
                w.start()
            if w.t1 is None:
                w.stop()
            extra = {}
        emit(w.result(loop=args.loop, kind=args.kind, size=args.size, conns=args.conns,
                      client_pid=os.getpid(), **extra))
        if args.loop == "fastloop":
            loop.run_until_complete(linger(loop))
    finally:
        loop.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("--loop", required=True, choices=("fastloop", "uvloop", "asyncio"))
    ap.add_argument("--kind", required=True,
                    choices=("echo-proto", "echo-stream", "bulk", "conn", "http"))
    ap.add_argument("--host", default="")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--iface", default=None, help="fastloop: FASTLOOP_IFACE form")
    ap.add_argument("--address", default=None, help="fastloop: our address, CIDR")
    ap.add_argument("--tap-peer", default=None, help="fastloop over tap: the kernel's address")
    ap.add_argument("--mtu", type=int, default=None, help="fastloop: StackConfig.mtu")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--total", type=int, default=1 << 30, help="bulk: bytes to send")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server-pid", type=int, default=None)
    args = ap.parse_args(argv)
    if args.role == "server":
        loop = make_loop(args)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve(args, loop))
        finally:
            loop.close()
    else:
        client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
