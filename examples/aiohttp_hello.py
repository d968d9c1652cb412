"""aiohttp hello world on the userspace stack.

    sudo python examples/aiohttp_hello.py          # then: curl http://10.77.0.2:8080/
    sudo python examples/aiohttp_hello.py --once   # fetch itself once with curl and exit
"""
import asyncio
import sys

from aiohttp import web

from _common import run


async def hello(request):
    return web.Response(text=f"Hello, {request.remote}!\n")


async def main():
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, None, 8080).start()
    url = f"http://{asyncio.get_running_loop().stack.address}:8080/"
    print(f"serving {url}  (curl {url})", flush=True)
    try:
        if "--once" in sys.argv:
            proc = await asyncio.create_subprocess_exec("curl", "-sS", url,
                                                        stdout=asyncio.subprocess.PIPE)
            body, _ = await proc.communicate()
            print(body.decode(), end="", flush=True)
            assert body.startswith(b"Hello, ")
        else:
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()


run(main())
