"""The interop receiver as an ASGI app (uvicorn with h11 and with httptools, hypercorn)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from interop.apps.spec import CHUNKS, answer, record

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    record(scope["path"], headers, body)
    status, extra, content = answer(scope["path"])
    raw = [(k.lower().encode(), v.encode()) for k, v in extra]
    if scope["path"] == "/chunked":  # no length: the server frames it (chunked, to an HTTP/1.1 client)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        for piece in CHUNKS:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    raw.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})
