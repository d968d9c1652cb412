"""A TCP proxy between the userspace stack and a kernel address: connections accepted on the
stack (port 8000) are relayed to --to HOST:PORT over the kernel's TCP (127.0.0.1 is the
kernel's unless FASTLOOP_LOOPBACK=1).

    sudo python examples/tcp_proxy.py --to 127.0.0.1:8001   # nc 10.77.0.2 8000 from the host
    sudo python examples/tcp_proxy.py                        # self-test with a kernel echo server
"""
import asyncio
import sys

from _common import run


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except ConnectionError:
        pass


async def main():
    loop = asyncio.get_running_loop()
    args = sys.argv[1:]
    target = args[args.index("--to") + 1] if "--to" in args else None
    kernel_server = None
    if target is None:                               # self-test: a kernel echo server
        async def echo(r, w):
            await pipe(r, w)
            w.close()
        kernel_server = await asyncio.start_server(echo, "127.0.0.1", 0)
        target = f"127.0.0.1:{kernel_server.sockets[0].getsockname()[1]}"
    host, port = target.rsplit(":", 1)

    relayed = asyncio.Event()

    async def relay(client_r, client_w):
        up_r, up_w = await asyncio.open_connection(host, int(port))   # the kernel's TCP
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
        up_w.close()
        client_w.close()
        relayed.set()

    proxy = await asyncio.start_server(relay, None, 8000)            # the userspace stack
    me = loop.stack.address
    print(f"proxy {me}:8000 (userspace) -> {target} (kernel)", flush=True)
    if kernel_server is None:
        await proxy.serve_forever()
    r, w = await asyncio.open_connection(me, 8000)
    w.write(b"through the proxy\n")
    assert await r.readline() == b"through the proxy\n"
    w.write_eof()                                     # the relay ends both ways, then closes
    assert await r.read() == b""
    await relayed.wait()
    w.close()
    await w.wait_closed()
    proxy.close()
    kernel_server.close()
    print("relayed: ok", flush=True)


run(main())
