"""Fixtures of the browser tests: one real stack (hookd serve, hookd run, a receiver; SQLite) and one
headless Chromium (Debian's, through its ChromeDriver) per module; the run's screenshot folder, named
at the end of the run; and a page of another site, for the cross-site tests."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from support.bootstrap import services
from support.stack import Stack, need_broker

from .pages import Console

_SCREENSHOTS: list[Path] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_broker()
    folder: Path = tmp_path_factory.mktemp("browser")
    running = Stack(folder, f"sqlite:///{folder / 'hooks.db'}")
    yield running
    running.close()


@pytest.fixture(scope="module")
def driver(browser: services.Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium (installed first when missing and root), quit after the module."""
    chrome = services.chromium_webdriver(browser, tmp_path_factory.mktemp("chromium-profile"))
    chrome.set_page_load_timeout(30)
    chrome.set_window_size(1280, 900)
    yield chrome
    chrome.quit()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder this run's screenshots go to; its path is printed at the end of the run."""
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    if folder not in _SCREENSHOTS:
        _SCREENSHOTS.append(folder)
    return folder


@pytest.fixture
def console(driver: Any, stack: Stack, screenshots: Path) -> Console:
    """The console in that browser, at desktop width, signed out."""
    driver.set_window_size(1280, 900)
    driver.get(stack.url + "/sign-in")
    driver.delete_all_cookies()
    return Console(driver, stack, screenshots)


class _Pages(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def other_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A web server of another site (`http://localhost:PORT`, while the console is on 127.0.0.1): pages
    by path, set by the test; stopped and joined afterwards."""
    handler = type("Pages", (_Pages,), {"pages": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="other-site", daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}", handler.pages
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the folder the browser tests left their screenshots in."""
    for folder in _SCREENSHOTS:
        shots = sorted(p.name for p in folder.glob("*.png"))
        terminalreporter.write_line(f"console screenshots ({len(shots)}): {folder}")
