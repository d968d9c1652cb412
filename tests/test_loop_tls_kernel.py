"""TLS over fastloop's stack with the Linux kernel's TCP as the peer, over net_tap: Python's
ssl on kernel sockets (tests/kernel_peer.py, a process of its own) and curl, against our
servers (create_server and start_server with ssl=), our client (open_connection with ssl=),
start_tls in both directions, and the ends of a TLS stream (close_notify, abort)."""
import asyncio
import os
import subprocess

import pytest

from loop_testbase import (assert_nothing_left, client_context, fastloop_tap,  # noqa: F401
                           server_context)
from tcp_util import finish, kernel_peer, payload
from tls_util import MIB, TlsRecorder, sha


@pytest.fixture
def tls_tap(fastloop_tap):
    """fastloop_tap, and afterwards no connection or endpoint left but TIME-WAIT."""
    yield fastloop_tap
    if not fastloop_tap.loop.is_closed():
        assert_nothing_left(fastloop_tap.loop, fastloop_tap.stack)


async def peer_done(proc, timeout=60):
    """Let the loop run while the kernel peer works; then its output, split."""
    for _ in range(timeout * 200):
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.005)
    return finish(proc)


def kernel_tls_client(case, port, seed, end, *extra):
    return kernel_peer("tls-client", case.our_ip, str(port), str(MIB), str(seed), end, *extra)


def expect_received(out, seed, end):
    assert out == ["received", str(MIB), "digest", sha(payload(MIB, seed)), "end", end]


@pytest.mark.parametrize("ending", ["close", "abort"])
def test_kernel_tls_client_to_our_create_server(tls_tap, ending):
    """Our echo closes (close_notify: the kernel reads a clean end) or aborts (the kernel's
    ssl sees the TCP end with no close_notify) once the MiB is back."""
    case = tls_tap

    async def main():
        loop = asyncio.get_running_loop()
        protos = []
        # abort only once the kernel has the whole echo: it pokes one byte more when it has
        size = MIB + (ending == "abort")
        server = await loop.create_server(
            lambda: protos.append(TlsRecorder(echo=MIB, size=size, then=ending)) or protos[-1],
            None, 8443, ssl=server_context())
        proc = kernel_tls_client(case, 8443, 1, "wait" if ending == "close" else "poke")
        out = await peer_done(proc)
        await protos[0].lost
        server.close()
        await server.wait_closed()
        return out, protos[0]
    out, proto = case.run(main(), timeout=90)
    expect_received(out, 1, "close_notify" if ending == "close" else "ragged")
    assert proto.digest.hexdigest() == sha(payload(MIB, 1) + (b"." if ending == "abort" else b""))
    assert proto.events[:2] == ["made", "data"] and proto.events[-1] == ("lost", None)
    assert case.tcp_counters()["passive_opens"] == 1


def test_kernel_tls_clients_to_our_start_server_and_starttls(tls_tap):
    """start_server(ssl=) and a plain start_server that upgrades with start_tls after a
    STARTTLS line: each reads the MiB, sends it back and, on the kernel's close_notify
    (its unwrap()), closes."""
    case = tls_tap

    def handler(starttls):
        async def handle(reader, writer):
            if starttls:
                assert await reader.readline() == b"STARTTLS\n"
                writer.write(b"OK\n")
                await writer.drain()
                await writer.start_tls(server_context())
            writer.write(await reader.readexactly(MIB))
            await writer.drain()
            assert await reader.read() == b""           # the kernel's close_notify
            writer.close()
            await writer.wait_closed()
            done.append(starttls)
        return handle
    done = []

    async def main():
        tls = await asyncio.start_server(handler(False), None, 8444, ssl=server_context())
        plain = await asyncio.start_server(handler(True), case.our_ip, 8445)
        outs = [await peer_done(kernel_tls_client(case, 8444, 2, "unwrap")),
                await peer_done(kernel_tls_client(case, 8445, 3, "unwrap", "starttls"))]
        for server in (tls, plain):
            server.close()
            await server.wait_closed()
        return outs
    outs = case.run(main(), timeout=120)
    expect_received(outs[0], 2, "unwrapped")
    expect_received(outs[1], 3, "unwrapped")
    assert sorted(done) == [False, True]
    assert case.tcp_counters()["passive_opens"] == 2


def test_curl_over_https_to_our_start_server(tls_tap, tmp_path):
    """curl -k posts a MiB and gets it back over HTTPS from a start_server(ssl=)."""
    case = tls_tap
    body = payload(MIB, 4)
    upload = tmp_path / "upload"
    upload.write_bytes(body)

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")][0])
        got = await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(got) + got)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, None, 8446, ssl=server_context())
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "-k", "-H", "Expect:", "--data-binary", f"@{upload}",
            f"https://{case.our_ip}:8446/", stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        server.close()
        await server.wait_closed()
        return out, proc.returncode
    out, rc = case.run(main(), timeout=60)
    assert rc == 0
    assert sha(out) == sha(body)


@pytest.mark.parametrize("starttls", [False, True])
def test_our_tls_client_to_a_kernel_tls_server(tls_tap, starttls):
    """open_connection(ssl=) to the kernel's address, or a plain connection upgraded with
    start_tls (loop.start_tls underneath) after STARTTLS: a MiB each way; our close sends close_notify, which the
    kernel's ssl answers."""
    case = tls_tap
    data = payload(MIB, 5)
    proc = kernel_peer("tls-server", case.kernel_ip, *(["starttls"] if starttls else []))
    try:
        port = int(proc.stdout.readline().split()[1])

        async def main():
            if starttls:
                reader, writer = await asyncio.open_connection(case.kernel_ip, port)
                writer.write(b"STARTTLS\n")
                assert await reader.readline() == b"OK\n"
                await writer.start_tls(client_context(), server_hostname="localhost")
            else:
                reader, writer = await asyncio.open_connection(
                    case.kernel_ip, port, ssl=client_context(), server_hostname="localhost")
            assert writer.get_extra_info("sockname")[0] == case.our_ip    # via our stack
            assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
            writer.write(data)
            got = await reader.readexactly(MIB)
            writer.close()
            await writer.wait_closed()
            return got, await peer_done(proc)
        got, out = case.run(main(), timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert sha(got) == sha(data)
    assert out == ["echoed", str(MIB), "end", "close_notify"]
    assert case.tcp_counters()["active_opens"] == 1
