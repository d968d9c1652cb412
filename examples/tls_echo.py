"""A TLS echo with start_tls on the userspace stack: the client says STARTTLS in the clear,
both sides upgrade the connection, then lines are echoed encrypted (a self-signed
certificate for localhost, in examples/certs).

    sudo python examples/tls_echo.py
"""
import asyncio
import os
import ssl

from _common import CERTS, run


async def handle(reader, writer):
    if await reader.readline() != b"STARTTLS\n":
        writer.close()
        return
    writer.write(b"OK\n")
    await writer.drain()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem"))
    await writer.start_tls(ctx)
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()


async def main():
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(handle, None, 7443)
    me = loop.stack.address
    print(f"STARTTLS echo on {me}:7443", flush=True)
    reader, writer = await asyncio.open_connection(me, 7443)
    writer.write(b"STARTTLS\n")
    assert await reader.readline() == b"OK\n"
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "cert.pem"))
    await writer.start_tls(ctx, server_hostname="localhost")
    writer.write(b"secret\n")
    assert await reader.readline() == b"secret\n"
    print(f"echoed over {writer.get_extra_info('ssl_object').version()}: ok", flush=True)
    writer.close()
    server.close()
    await server.wait_closed()


run(main())
