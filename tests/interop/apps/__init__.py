"""The receivers the interop suite runs under real servers: one behaviour (`spec.py`), written once
per server interface (ASGI, WSGI, Node's http, Python's http.server)."""
