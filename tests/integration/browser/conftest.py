"""Fixtures of the browser tests: one real stack (hookd serve, hookd run, a receiver; SQLite) and one
headless Chromium (Debian's, through its ChromeDriver) per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.stack import Stack, need_broker

from hookd.testing import services

from .pages import Console


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


@pytest.fixture
def console(driver: Any, stack: Stack) -> Console:
    """The console in that browser, at desktop width, signed out."""
    driver.set_window_size(1280, 900)
    driver.get(stack.url + "/sign-in")
    driver.delete_all_cookies()
    return Console(driver, stack)
