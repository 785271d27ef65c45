"""`hookd serve`'s process: the app under waitress, systemd notifications, a clean stop on SIGTERM.

waitress is a pure-Python production WSGI server: a thread pool (`api.threads`) behind one event
loop that buffers requests and responses, so slow clients cost no thread. systemd hears `READY=1`
once the socket listens, and `STOPPING=1` on SIGTERM or SIGINT; waitress then stops accepting and
lets running requests finish (up to 5 s) before the process exits 0.
"""

from __future__ import annotations

import signal
from types import FrameType

import waitress
from waitress.channel import HTTPChannel
from waitress.task import WSGITask

from hookd import logs, sdnotify
from hookd.api.app import create_app
from hookd.config import Settings, split_listen
from hookd.errors import ApiServerError
from hookd.state.db import Database
from hookd.subscriptions.factory import keyring_for, open_sql_store

_log = logs.get_logger("hookd.api")


class _SpelledTask(WSGITask):  # type: ignore[misc]  # waitress is untyped
    """Sends header names as the app spells them: waitress capitalizes each word (`Www-Authenticate`,
    `X-Ratelimit-Limit`). Header names are case-insensitive, but the platform's clients and the
    issue spell `WWW-Authenticate` and `X-RateLimit-*` so, and a byte-exact check should pass."""

    def build_response_header(self) -> bytes:
        spelled = {"-".join(w.capitalize() for w in name.split("-")): name for name, _ in self.response_headers}
        head: bytes = super().build_response_header()
        for plain, name in spelled.items():
            if plain != name:
                head = head.replace(f"\r\n{plain}:".encode("latin-1"), f"\r\n{name}:".encode("latin-1"))
        return head


class _Channel(HTTPChannel):  # type: ignore[misc]
    task_class = _SpelledTask


def serve(settings: Settings) -> int:
    """Serve the API and the console on `api.listen` until SIGTERM or SIGINT; return the exit code."""
    assert settings.subscriptions.url is not None, "checked by the caller: hookd serve needs source db"
    store = open_sql_store(settings.subscriptions.url, keyring_for(settings))
    try:
        store.check_secrets()  # refuse now (exit 2), not on every request, when the keys do not fit
    except BaseException:
        store.db.close()
        raise
    state = store.db
    if settings.state.url != settings.subscriptions.url:
        state = Database.from_url(settings.state.url)
        state.migrate()
    host, port = split_listen(settings.api.listen)
    try:
        server = waitress.create_server(
            create_app(settings, store, state),
            host=host,
            port=port,
            threads=settings.api.threads,
            ident="hookd",
            expose_tracebacks=False,
            # waitress drops X-Forwarded-* by default; when the proxy is trusted, the app's ProxyFix reads them
            clear_untrusted_proxy_headers=not settings.api.trust_proxy_headers,
        )
    except OSError as exc:
        raise ApiServerError(f"cannot listen on api.listen {settings.api.listen}: {exc.strerror or exc}") from None
    server.channel_class = _Channel
    address = f"{host}:{server.effective_port}" if ":" not in host else f"[{host}]:{server.effective_port}"
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    _log.info("api.listening", listen=address, store=store.describe())
    sdnotify.ready(f"serving the admin API and console on {address}")
    try:
        server.run()  # returns once _stop raised SystemExit in this thread and waitress drained its threads
    finally:
        sdnotify.stopping("stopped serving")
        server.close()
        store.db.close()
        if state is not store.db:
            state.close()
        _log.info("api.stopped", listen=address)
    return 0


def _stop(signum: int, _frame: FrameType | None) -> None:
    """Leave waitress's loop: it catches SystemExit, stops accepting and finishes running requests."""
    raise SystemExit(0)
