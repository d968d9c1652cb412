"""TCP echo on the userspace stack: a Protocol server and a streams client.

    sudo python examples/tcp_echo.py            # serve, talk to it once, exit 0
    sudo python examples/tcp_echo.py --serve    # keep serving: nc 10.77.0.2 7000 from the host
"""
import asyncio
import sys

from _common import run


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False                  # close once the peer has said all


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, None, 7000)     # the wildcard: the userspace stack
    me = loop.stack.address
    print(f"echo server on {me}:7000 ({loop.stack.device.driver})", flush=True)
    if "--serve" in sys.argv:
        print(f"  from the host: nc {me} 7000", flush=True)
        await server.serve_forever()
    reader, writer = await asyncio.open_connection(me, 7000)   # through our own stack
    for line in (b"hello\n", b"fastloop\n"):
        writer.write(line)
        assert await reader.readline() == line
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    print("echoed 2 lines: ok", flush=True)


run(main())
