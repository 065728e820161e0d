"""StreamProxy comparison peer: the same SSE fan-out written the way a FastAPI user would.

GET /stream/<route> fetches the route's upstreams concurrently with one shared
httpx.AsyncClient (an asyncio task per upstream feeding an asyncio.Queue) and streams
back, as Server-Sent Events in completion order, a bounded prefix of each body as its
bytes arrive (event format: PRODUCT.md §5). See ../README.md.

Routes: ROUTES is JSON, or the path of a JSON file:
    {"w1": {"prefix": 50, "upstreams": ["http://127.0.0.1:19501/bytes/1024", ...]}}
A StreamProxy config file ({"routes": {...}}) works too.
"""

import asyncio
import codecs
import json
import os
import re
import time
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

DEFAULT_PREFIX = 1024
MAX_PREFIX = 1 << 20


def parse_size(value) -> int:
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*(B|KiB|KB|MiB|MB)?\s*", str(value))
    if not m:
        raise ValueError(f"bad size {value!r}")
    unit = {None: 1, "B": 1, "KiB": 1024, "KB": 1000, "MiB": 1 << 20, "MB": 1000_000}[m.group(2)]
    return int(m.group(1)) * unit


def load_routes() -> dict:
    raw = os.environ.get("ROUTES", "").strip()
    if not raw:
        raise SystemExit("ROUTES is not set (JSON, or the path of a JSON file)")
    if not raw.startswith("{"):
        with open(raw) as f:
            raw = f.read()
    routes = json.loads(raw)
    routes = routes.get("routes", routes)
    return {
        name: {"upstreams": list(r["upstreams"]), "prefix": parse_size(r.get("prefix", DEFAULT_PREFIX))}
        for name, r in routes.items()
    }


ROUTES = load_routes()


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5),
        timeout=httpx.Timeout(5, read=15, pool=5),
        follow_redirects=True,
        max_redirects=5,
    ) as client:
        app.state.client = client
        yield


app = FastAPI(lifespan=lifespan)


def ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def error_kind(exc: Exception) -> str:
    if isinstance(exc, httpx.PoolTimeout):
        return "pool"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "name or service" in text or "name resolution" in text or "nodename" in text:
            return "dns"
        if "ssl" in text or "certificate" in text:
            return "tls"
        return "connect"
    if isinstance(exc, httpx.ReadError):
        return "reset"
    if isinstance(exc, httpx.RemoteProtocolError) and "peer closed" in str(exc).lower():
        return "reset"
    return "protocol"


async def fetch(client: httpx.AsyncClient, i: int, url: str, prefix: int, t0: float, queue: asyncio.Queue):
    """One upstream: head, chunks of its first `prefix` bytes, then end (or error)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    received = forwarded = 0
    truncated = False
    try:
        async with client.stream("GET", url) as response:
            await queue.put(("head", {
                "i": i, "status": response.status_code,
                "contentType": response.headers.get("content-type"), "ttfbMs": ms_since(t0),
            }))
            length = response.headers.get("content-length")
            length = int(length) if length and length.isdigit() else None
            async for data in response.aiter_bytes():
                piece = data[: prefix - received]
                received += len(data)
                full = received >= prefix
                # A character cut by the prefix limit stays in the decoder and is never sent.
                text = decoder.decode(piece)
                forwarded += len(piece)
                if text:
                    await queue.put(("chunk", {"i": i, "text": text}))
                if full:
                    truncated = received > prefix or length is None or length > prefix
                if truncated:
                    forwarded -= len(decoder.getstate()[0])
                    break  # leaving `async with` closes the response (and its connection) unread
            if not truncated:
                text = decoder.decode(b"", final=True)
                if text:
                    await queue.put(("chunk", {"i": i, "text": text}))
        await queue.put(("end", {"i": i, "bytes": forwarded, "truncated": truncated, "ms": ms_since(t0)}))
    except Exception as exc:  # httpx.HTTPError, httpx.InvalidURL, ...
        await queue.put(("error", {"i": i, "url": url, "kind": error_kind(exc), "message": str(exc) or type(exc).__name__}))


def sse(event: str, id, data: dict) -> str:
    return f"event: {event}\nid: {id}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


@app.get("/stream/{route}")
async def stream(route: str, request: Request):
    if route not in ROUTES:
        return JSONResponse({"error": f"unknown route {route!r}", "routes": list(ROUTES)}, status_code=404)
    if request.headers.get("last-event-id") == "done":
        return Response(status_code=204)
    upstreams = ROUTES[route]["upstreams"]
    prefix = ROUTES[route]["prefix"]
    if "prefix" in request.query_params:
        try:
            prefix = int(request.query_params["prefix"])
            if not 1 <= prefix <= MAX_PREFIX:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": f"prefix must be an integer in 1...{MAX_PREFIX}", "parameter": "prefix"}, status_code=400)

    client: httpx.AsyncClient = request.app.state.client

    async def events():
        t0 = time.perf_counter()
        queue: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.create_task(fetch(client, i, url, prefix, t0, queue)) for i, url in enumerate(upstreams)]
        try:
            yield "retry: 2000\n\n"
            yield sse("open", 1, {
                "route": route, "prefix": prefix, "order": "completion",
                "upstreams": [{"i": i, "url": url} for i, url in enumerate(upstreams)],
            })
            next_id, ok, failed = 2, 0, 0
            while ok + failed < len(upstreams):
                event, data = await queue.get()
                ok += event == "end"
                failed += event == "error"
                yield sse(event, next_id, data)
                next_id += 1
            yield sse("done", "done", {"ok": ok, "failed": failed, "ms": ms_since(t0)})
        finally:
            for task in tasks:  # the client went away: cancel its upstream transfers
                task.cancel()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@app.get("/healthz")
async def healthz():
    return Response("ok", media_type="text/plain")
