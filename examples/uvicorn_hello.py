"""An ASGI app under uvicorn, on the userspace stack: uvicorn takes fastloop as its loop.

    sudo uvicorn uvicorn_hello:app --app-dir examples --loop fastloop:new_event_loop \\
        --host 10.77.0.2 --port 8000          # then: curl http://10.77.0.2:8000/
    sudo python examples/uvicorn_hello.py --once   # serve, fetch itself with curl, exit

`--loop fastloop:new_event_loop` (uvicorn takes a loop factory by import string; 0.54 here)
builds the stack from the FASTLOOP_* environment (default: net_tap fl0, 10.77.0.2/24);
uvicorn's create_server on the stack's address lands on the userspace stack. One process:
`--workers` and `--reload` bind kernel sockets in a parent process, which this does not do.
"""
import asyncio
import sys

from _common import run


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    client = scope["client"][0] if scope.get("client") else "?"
    body = f"Hello from uvicorn on fastloop, {client}!\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def main():
    import uvicorn
    host = asyncio.get_running_loop().stack.address
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=8000, loop="none",
                                           lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://{host}:8000/"
    print(f"serving {url}  (curl {url})", flush=True)
    proc = await asyncio.create_subprocess_exec("curl", "-sS", url, stdout=asyncio.subprocess.PIPE)
    body, _ = await proc.communicate()
    print(body.decode(), end="", flush=True)
    server.should_exit = True
    await serving
    assert body.startswith(b"Hello from uvicorn on fastloop, ")


if __name__ == "__main__":
    if "--once" not in sys.argv:
        sys.exit(__doc__)
    run(main())
