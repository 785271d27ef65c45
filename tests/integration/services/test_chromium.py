"""Headless Chromium driven by selenium through Debian's ChromeDriver, against a page on 127.0.0.1."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.bootstrap import services
from support.services import need

PAGE = """<!doctype html>
<html><head><title>hookd browser check</title></head>
<body><p id="status">static</p>
<script>document.getElementById("status").textContent = "scripted";</script>
</body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def page_url(tmp_path: Path) -> Iterator[str]:
    """A page served by http.server on 127.0.0.1, stopped after the test."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, name="page server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_headless_chromium_renders_a_loopback_page_and_runs_its_script(page_url: str, tmp_path: Path) -> None:
    """With `chromium_options()`, Chromium loads the page, runs its JavaScript and reports the result."""
    browser = need(services.chromium)
    driver = services.chromium_webdriver(browser, tmp_path / "profile")
    try:
        driver.set_page_load_timeout(30)
        driver.get(page_url)
        assert driver.title == "hookd browser check"
        assert driver.find_element("id", "status").text == "scripted"
    finally:
        driver.quit()
