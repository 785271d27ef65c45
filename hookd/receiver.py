"""`hookd receive`: a small local receiver that verifies signatures and prints one line per delivery.

For the demo, for trying hooks out, and as a reference for receivers' developers: it recomputes
`X-Hook-Signature` (and the Standard Webhooks signature) over the exact bytes received and compares
in constant time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

from hookd.signing import WEBHOOK_SIGNATURE, verify, verify_standard

SecretLookup = Callable[[str], list[str]]


def describe(headers: Mapping[str, str], body: bytes, secrets_for: SecretLookup) -> tuple[bool, str]:
    """Verify one request; return (verified, the line to print). Header names are case-insensitive.

    `X-Hook-Signature` must verify under one of the hook's secrets, and so must the Standard Webhooks
    headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`, timestamp within 5 minutes)
    when the request carries them, as every hookd delivery does.
    """
    headers = {name.lower(): value for name, value in headers.items()}
    event = headers.get("x-hook-event", "?")
    hook_id = headers.get("x-hook-id", "?")
    delivery = headers.get("x-hook-delivery", "?")
    attempt = headers.get("x-hook-attempt", "?")
    prefix = f"{event} hook={hook_id} delivery={delivery} attempt={attempt}"
    signature = headers.get("x-hook-signature")
    if not signature:
        return False, f"{prefix} signature FAILED: no X-Hook-Signature header"
    secrets = secrets_for(hook_id)
    if not secrets:
        return False, f"{prefix} signature FAILED: no secret known for hook {hook_id}"
    if not any(verify(secret, body, signature) for secret in secrets):
        return False, f"{prefix} signature FAILED: mismatch (wrong secret or altered body)"
    if WEBHOOK_SIGNATURE in headers and not any(verify_standard(s, headers, body) for s in secrets):
        return (
            False,
            f"{prefix} signature FAILED: webhook-signature mismatch (wrong secret, altered body or old timestamp)",
        )
    return True, f"{prefix} signature verified"


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, a keep-alive client's next
    # request waits for the delayed ACK of the first write, about 40 ms per response.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        verified, line = describe(dict(self.headers.items()), body, self.server.secrets_for)
        with self.server.print_lock:
            print(line, file=self.server.out, flush=True)
        status = self.server.status or (200 if verified else 401)
        payload = b'{"ok":true}' if verified else b'{"ok":false}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        return None  # one line per delivery is printed by do_POST; no access log


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], secrets_for: SecretLookup, out: TextIO, status: int | None) -> None:
        super().__init__(address, _Handler)
        self.secrets_for = secrets_for
        self.out = out
        self.status = status
        self.print_lock = threading.Lock()


def serve(
    host: str, port: int, secrets_for: SecretLookup, *, out: TextIO | None = None, status: int | None = None
) -> None:
    """Serve until interrupted."""
    server = _ReceiverServer((host, port), secrets_for, out or sys.stdout, status)
    print(f"hookd receiver listening on http://{host}:{server.server_address[1]}/", file=server.out, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
