"""What every interop receiver answers, per path, and how it records what it received.

Every receiver app (ASGI, WSGI, Node, http.server) answers the same paths the same way, and appends
one JSON line per request to the file named by `HOOKD_INTEROP_RECORD` (the Node app: its second
argument): `{"path", "headers" (lower-case names), "body" (base64)}`, one `os.write` per line on
a file opened with O_APPEND, so lines from concurrent requests never interleave.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping

#: path -> (status, extra headers, body). `chunked`, `close`, `http10` and `1xx` are framed by each
#: app as its server allows; their status and body are these.
ANSWERS: dict[str, tuple[int, tuple[tuple[str, str], ...], bytes]] = {
    "/200": (200, (), b"ok"),
    "/204": (204, (), b""),
    "/500": (500, (), b"error"),
    "/429": (429, (("Retry-After", "120"),), b"slow down"),
    "/410": (410, (), b"gone"),
    "/chunked": (200, (), b"chunked"),
    "/close": (200, (), b"closed"),
    "/http10": (200, (), b"old"),
    "/1xx": (200, (), b"hinted"),
    "/ka": (200, (), b"ok"),
}
CHUNKS = (b"chu", b"nk", b"ed")


def answer(path: str) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    return ANSWERS.get(path, (404, (), b"unknown path"))


def record(path: str, headers: Mapping[str, str], body: bytes) -> None:
    """Append one request to the record file (the environment names it)."""
    line = json.dumps(
        {"path": path, "headers": {k.lower(): v for k, v in headers.items()}, "body": base64.b64encode(body).decode()}
    )
    fd = os.open(os.environ["HOOKD_INTEROP_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)
