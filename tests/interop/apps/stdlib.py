"""The interop receiver on Python's http.server (also nginx's upstream): HTTP/1.1 with keep-alive,
and the shapes the others cannot make: an HTTP/1.0 answer, a body delimited by closing.

Run: python -m interop.apps.stdlib PORT (the record file in HOOKD_INTEROP_RECORD).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from interop.apps.spec import CHUNKS, answer, record


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record(self.path, dict(self.headers.items()), body)
        status, extra, content = answer(self.path)
        if self.path == "/http10":
            self.protocol_version = "HTTP/1.0"  # the status line says HTTP/1.0; the connection closes
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in CHUNKS) + b"0\r\n\r\n")
            return
        if self.path == "/close":  # no length, no chunks: the end of the connection ends the body
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(content)
            return
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
