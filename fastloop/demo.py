"""`python -m fastloop demo`: an aiohttp app served by the userspace stack over DPDK.

Routes: GET / (hello), GET /json, GET /stream?size=N (a streamed download of N bytes),
POST /upload (echoes the size and SHA-256 of the body). With --check the demo fetches each
route from the kernel side with curl (a real HTTP client on kernel sockets, through the tap),
verifies the bodies and exits 0, or 1 naming what failed.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import signal
import sys

HELLO = b"Hello from fastloop: aiohttp on a userspace TCP/IP stack over DPDK\n"
STREAM_CHUNK = 65536
DEFAULT_PORT = 8080


def pattern(size: int) -> bytes:
    """The /stream body: deterministic, so a client can check it."""
    block = bytes(range(256)) * (STREAM_CHUNK // 256)
    return (block * (size // len(block) + 1))[:size]


def make_app():
    from aiohttp import web

    async def hello(request):
        return web.Response(body=HELLO, content_type="text/plain")

    async def as_json(request):
        loop = asyncio.get_running_loop()
        stack = getattr(loop, "stack", None)
        return web.json_response({
            "hello": "world", "loop": type(loop).__module__ + "." + type(loop).__name__,
            "stack": stack.address if stack is not None else None,
            "peer": request.remote})

    async def stream(request):
        size = int(request.query.get("size", 1 << 20))
        if not 0 <= size <= 1 << 32:
            raise web.HTTPBadRequest(text="size is 0 to 4 GiB\n")
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        body = pattern(min(size, 4 * STREAM_CHUNK))
        sent = 0
        while sent < size:
            n = min(len(body), size - sent)
            await resp.write(body[:n] if n < len(body) else body)
            sent += n
        await resp.write_eof()
        return resp

    async def upload(request):
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(STREAM_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"bytes": size, "sha256": digest.hexdigest()})

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/json", as_json)
    app.router.add_get("/stream", stream)
    app.router.add_post("/upload", upload)
    return app


async def curl(*args) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail", "--max-time", "20", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args)}: exit {proc.returncode}: "
                           f"{err.decode(errors='replace').strip()}")
    return out


async def check(url: str) -> list[str]:
    """Fetch every route from the kernel side; returns what failed (empty: all good)."""
    failures = []
    size = 3 * 1024 * 1024 + 17
    upload = os.urandom(1024 * 1024 + 5)
    checks = [
        ("GET /", lambda: curl(url + "/"), lambda b: b == HELLO),
        ("GET /json", lambda: curl(url + "/json"),
         lambda b: json.loads(b)["hello"] == "world"),
        (f"GET /stream?size={size}", lambda: curl(f"{url}/stream?size={size}"),
         lambda b: b == pattern(size)),
        ("POST /upload", lambda: _curl_upload(url, upload),
         lambda b: json.loads(b) == {"bytes": len(upload),
                                     "sha256": hashlib.sha256(upload).hexdigest()}),
    ]
    for name, fetch, ok in checks:
        try:
            body = await fetch()
            good = ok(body)
        except Exception as exc:        # a failed check is reported, not raised
            failures.append(f"{name}: {exc}")
            continue
        print(f"check: {name}: {'ok' if good else 'WRONG BODY'} ({len(body)} bytes)", flush=True)
        if not good:
            failures.append(f"{name}: wrong body")
    return failures


async def _curl_upload(url, data: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail", "--max-time", "20", "--data-binary", "@-",
        "-H", "Content-Type: application/octet-stream", url + "/upload",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(data)
    if proc.returncode != 0:
        raise RuntimeError(f"curl upload: exit {proc.returncode}: {err.decode().strip()}")
    return out


async def serve(args) -> int:
    from aiohttp import web

    loop = asyncio.get_running_loop()
    stack = loop.stack
    runner = web.AppRunner(make_app(), access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    site = web.TCPSite(runner, None, args.port)
    await site.start()
    url = f"http://{stack.address}:{args.port}"
    print(f"fastloop demo: aiohttp on {stack.device.name} ({stack.device.driver}), "
          f"{stack.address} mac {stack.mac}", flush=True)
    print(f"  serving {url}/  /json  /stream?size=N  POST /upload", flush=True)
    print(f"  from the host: curl {url}/", flush=True)
    rc = 0
    try:
        if args.check:
            failures = await check(url)
            for f in failures:
                print(f"check FAILED: {f}", file=sys.stderr, flush=True)
            rc = 1 if failures else 0
            print("check: " + ("all routes answered correctly" if not rc else "failed"),
                  flush=True)
        else:
            stop = loop.create_future()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
            await (stop if args.duration is None else asyncio.wait_for(
                asyncio.shield(stop), args.duration))
    except asyncio.TimeoutError:
        pass
    finally:
        await runner.cleanup()
    print("fastloop demo: stopped; port closed, interface removed", flush=True)
    return rc


def main(args) -> int:
    import fastloop
    from fastloop.config import ConfigError, StackConfig

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check and shutil.which("curl") is None:
        print("demo --check needs curl (apt-get install curl)", file=sys.stderr)
        return 2
    try:
        config = StackConfig.from_env()
    except ConfigError as exc:
        print(f"fastloop demo: {exc}", file=sys.stderr)
        return 2
    try:
        return fastloop.run(serve(args), loop_factory=lambda: fastloop.new_event_loop(config))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"fastloop demo: {exc}", file=sys.stderr)
        return 1
