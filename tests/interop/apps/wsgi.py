"""The interop receiver as a WSGI app (gunicorn, waitress)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from interop.apps.spec import CHUNKS, answer, record

StartResponse = Callable[..., Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {key[5:].replace("_", "-"): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["CONTENT-TYPE"] = environ["CONTENT_TYPE"]
    path = environ.get("PATH_INFO", "/")
    record(path, headers, body)
    status, extra, content = answer(path)
    reason = {200: "OK", 204: "No Content", 410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error"}
    line = f"{status} {reason.get(status, 'Other')}"
    if path == "/chunked":  # no length: the server frames it (chunked, to an HTTP/1.1 client)
        start_response(line, list(extra))
        return _pieces()
    start_response(line, [*extra, ("Content-Length", str(len(content)))])
    return [content]


def _pieces() -> Iterator[bytes]:
    yield from CHUNKS
