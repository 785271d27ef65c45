"""Driving the Service Hooks console in headless Chromium, by what an admin sees: labels and button texts.

Every action that loads a page waits for the new page, never for a time: before it, the current
document is marked (a random token on `window`); the wait ends when the document has no mark (it is
a new one) and has finished loading (`readyState` complete). Lookups then run on the new document
only. Selenium's `staleness_of` is not used: during a navigation ChromeDriver may answer its probe
with "Node with given id does not belong to the document" instead of a stale-element error, which
failed this suite once; errors while the old document goes away are ignored until the deadline.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from support.stack import Stack

PAGE_LOAD_S = 20


def xpath_text(text: str) -> str:
    return "'" + text + "'" if "'" not in text else '"' + text + '"'


class Console:
    """One browser on one stack's console."""

    def __init__(self, driver: Any, stack: Stack, screenshots: Path | None = None) -> None:
        self.driver = driver
        self.stack = stack
        self.screenshots = screenshots

    # -- navigation: each waits for the new page -------------------------------------------------------
    def open(self, path: str) -> None:
        """Load a page by URL (WebDriver's get returns once it has loaded)."""
        self.driver.get(self.stack.url + path)
        self._loaded()

    def reload(self) -> None:
        token = self._mark()
        self.driver.refresh()
        self._new_page(token)

    def button(self, text: str) -> WebElement:
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()={xpath_text(text)}]")

    def click(self, text: str) -> None:
        """Press a button: every button of the console loads a new page; wait for it."""
        self._navigate(self.button(text))

    def follow(self, link_text: str) -> None:
        self._navigate(self.driver.find_element(By.XPATH, f"//a[normalize-space()={xpath_text(link_text)}]"))

    def press(self, element: WebElement) -> None:
        """Click an element that loads a page (a link, a form's button) and wait for that page."""
        self._navigate(element)

    def _navigate(self, element: WebElement) -> None:
        token = self._mark()
        element.click()
        self._new_page(token)

    def _mark(self) -> str:
        token = uuid.uuid4().hex
        self.driver.execute_script("window.__hookdPage = arguments[0];", token)
        return token

    def _new_page(self, token: str) -> None:
        """Wait until the document is not the marked one and has loaded."""
        WebDriverWait(self.driver, PAGE_LOAD_S, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script(
                "return window.__hookdPage !== arguments[0] && document.readyState === 'complete';", token
            ),
            f"a new page after the click (still {self.driver.current_url})",
        )

    def _loaded(self) -> None:
        WebDriverWait(self.driver, PAGE_LOAD_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def wait_url(self, fragment: str) -> None:
        WebDriverWait(self.driver, PAGE_LOAD_S).until(lambda d: fragment in d.current_url)

    # -- reading the page ---------------------------------------------------------------------------------
    def field(self, label: str) -> WebElement:
        """The input a `<label for>` with this text names."""
        label_element = self.driver.find_element(By.XPATH, f"//label[normalize-space()={xpath_text(label)}]")
        return self.driver.find_element(By.ID, label_element.get_attribute("for"))

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def heading(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def section_order(self) -> list[str]:
        """The page's h2 headings, top to bottom."""
        return [h.text for h in self.driver.find_elements(By.TAG_NAME, "h2")]

    # -- what an admin does ---------------------------------------------------------------------------------
    def sign_in(self, key: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/sign-in")
        self.field("API key").send_keys(key)
        self.click("Sign in")

    def create_hook(self, url: str, *boxes: str) -> None:
        self.follow("New hook")
        self.field("Webhook URL").send_keys(url)
        for box in boxes:
            self.field(box).click()
        self.click("Create webhook")

    # -- checks ---------------------------------------------------------------------------------------------
    def inputs_without_label(self) -> list[str]:
        """Inputs of the page that no `<label for>` names (by id, or a description of the input)."""
        return list(
            self.driver.execute_script(
                """
                return Array.from(document.querySelectorAll('input, select, textarea')).filter(function (el) {
                    return !el.id || !document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
                }).map(function (el) { return el.outerHTML; });
                """
            )
        )

    def scrolls_sideways(self) -> bool:
        return bool(self.driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth"))

    def foreign_assets(self) -> list[str]:
        """URLs the page loaded, or refers to, that are not on hookd's own origin."""
        return list(
            self.driver.execute_script(
                """
                var origin = window.location.origin;
                var loaded = performance.getEntriesByType('resource').map(function (e) { return e.name; });
                var linked = Array.from(document.querySelectorAll('[src], link[href]')).map(function (el) {
                    return el.src || el.href;
                });
                return loaded.concat(linked).filter(function (u) { return u.indexOf(origin + '/') !== 0; });
                """
            )
        )

    def screenshot(self, name: str) -> Path | None:
        """The whole page as `<name>.png` in the run's screenshot folder (the window grown to the page)."""
        if self.screenshots is None:
            return None
        width = int(self.driver.execute_script("return window.innerWidth"))
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1},
            },
        )
        path = self.screenshots / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
