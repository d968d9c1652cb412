"""fastloop's loop against the Linux kernel's TCP over net_tap: our server with kernel
clients (blocking sockets, aiohttp's client on a stdlib loop, curl), our client with a kernel
server; and the kernel side of the same loop (fds, subprocesses, signals, threads) still served
while the stack is up."""
import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from loop_testbase import fastloop_tap  # noqa: F401

MIB = 1 << 20


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False


def kernel_client(host, port, payload, out):
    try:
        with socket.create_connection((host, port), timeout=20) as s:
            sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            sender.start()
            digest, n = hashlib.sha256(), 0
            while chunk := s.recv(1 << 20):
                digest.update(chunk)
                n += len(chunk)
            sender.join()
            out.append((n, digest.hexdigest()))
    except Exception as e:          # reported to the test through `out`
        out.append(e)


async def wait_thread(t, timeout=60):
    deadline = time.monotonic() + timeout
    while t.is_alive():
        assert time.monotonic() < deadline, "kernel peer did not finish"
        await asyncio.sleep(0.005)


def test_kernel_clients_to_our_server(fastloop_tap):
    case = fastloop_tap
    payload = os.urandom(8 * MIB)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, None, 7100)     # the wildcard: our stack
        assert server.sockets[0].getsockname() == ("0.0.0.0", 7100)
        results = []
        threads = [threading.Thread(target=kernel_client,
                                    args=(case.our_ip, 7100, payload, results))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            await wait_thread(t)
        assert results == [(len(payload), hashlib.sha256(payload).hexdigest())] * 4
        server.close()
        await server.wait_closed()
    case.run(main(), timeout=120)
    c = case.tcp_counters()
    assert c["passive_opens"] == 4


def test_our_client_to_kernel_server(fastloop_tap):
    case = fastloop_tap
    ready = threading.Event()
    stop = threading.Event()
    port_box = []

    def kernel_server():
        async def handle(reader, writer):
            data = await reader.read()
            writer.write(hashlib.sha256(data).hexdigest().encode())
            await writer.drain()
            writer.close()

        async def serve():
            server = await asyncio.start_server(handle, case.kernel_ip, 0)
            port_box.append(server.sockets[0].getsockname()[1])
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)
            server.close()
            await server.wait_closed()
        asyncio.run(serve())                      # stdlib asyncio: kernel sockets

    t = threading.Thread(target=kernel_server)
    t.start()
    payload = os.urandom(4 * MIB)
    try:
        assert ready.wait(10)

        async def main():
            reader, writer = await asyncio.open_connection(case.kernel_ip, port_box[0])
            assert writer.get_extra_info("sockname")[0] == case.our_ip   # via our stack
            writer.write(payload)
            writer.write_eof()
            await writer.drain()
            answer = await reader.read()
            writer.close()
            await writer.wait_closed()
            return answer
        assert case.run(main(), timeout=60) == hashlib.sha256(payload).hexdigest().encode()
    finally:
        stop.set()
        t.join(10)
    assert case.tcp_counters()["active_opens"] == 1


def test_aiohttp_server_with_kernel_aiohttp_client_and_curl(fastloop_tap):
    import aiohttp
    from aiohttp import web
    case = fastloop_tap

    async def hello(request):
        return web.Response(text=f"hello {request.remote}")

    def kernel_aiohttp_get(url, out):
        async def get():
            async with aiohttp.ClientSession() as session:
                for _ in range(20):                # keep-alive: one connection, many requests
                    async with session.get(url) as resp:
                        out.append((resp.status, await resp.text()))
        asyncio.run(get())

    async def main():
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, None, 8181)
        await site.start()
        out = []
        t = threading.Thread(target=kernel_aiohttp_get, args=(f"http://{case.our_ip}:8181/", out))
        t.start()
        await wait_thread(t)
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", f"http://{case.our_ip}:8181/", stdout=asyncio.subprocess.PIPE)
        body, _ = await proc.communicate()
        await runner.cleanup()
        return out, body
    out, body = case.run(main(), timeout=60)
    assert out == [(200, f"hello {case.kernel_ip}")] * 20
    assert body == f"hello {case.kernel_ip}".encode()


def test_kernel_side_of_the_loop_while_the_stack_runs(fastloop_tap):
    """add_reader, sock_* on a kernel socketpair, a subprocess, a signal handler, a thread's
    call_soon_threadsafe and run_in_executor: all in the loop whose poll step drives DPDK."""
    case = fastloop_tap

    async def main():
        loop = asyncio.get_running_loop()
        assert loop.stack is not None
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        got = loop.create_future()
        loop.add_reader(a.fileno(), lambda: got.set_result(a.recv(100)))
        b.send(b"through epoll")
        assert await got == b"through epoll"
        loop.remove_reader(a.fileno())
        await loop.sock_sendall(b, b"sock_sendall")
        assert await loop.sock_recv(a, 100) == b"sock_sendall"
        a.close()
        b.close()

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('child')", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"child\n" and proc.returncode == 0

        hit = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, hit.set_result, "usr1")
        os.kill(os.getpid(), signal.SIGUSR1)
        assert await hit == "usr1"
        loop.remove_signal_handler(signal.SIGUSR1)

        woken = loop.create_future()
        threading.Thread(target=lambda: loop.call_soon_threadsafe(woken.set_result, 7)).start()
        assert await woken == 7
        assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos[0][4] == ("127.0.0.1", 80)
    case.run(main())


def test_adaptive_idle_sleeps_and_busy_poll_spins(eal):
    """The default idle policy sleeps when nothing happens (an idle server costs ~no CPU);
    busy-poll holds its core."""
    import fastloop
    from fastloop.config import StackConfig
    from conftest import unique_ifname, unique_subnet

    def idle_cpu(policy):
        net = unique_subnet()
        cfg = StackConfig(iface=f"tap:{unique_ifname()}", address=f"{net}.2/24",
                          tap_peer=f"{net}.1", idle=policy)
        loop = fastloop.new_event_loop(cfg)
        try:
            loop.stack                                       # bring it up before measuring
            t0, c0 = time.monotonic(), time.process_time()
            loop.run_until_complete(asyncio.sleep(0.5))
            return (time.process_time() - c0) / (time.monotonic() - t0)
        finally:
            loop.close()
    adaptive, busy = idle_cpu("adaptive"), idle_cpu("busy-poll")
    assert adaptive < 0.35, f"adaptive idle used {adaptive:.0%} of a core"
    # busy-poll runs whenever the scheduler lets it: on a loaded 2-vCPU machine that may be
    # half a core, still many times what the sleeping loop takes
    assert busy > max(0.25, 3 * adaptive), f"busy-poll used {busy:.0%}, adaptive {adaptive:.0%}"
