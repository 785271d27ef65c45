"""Driving the Service Hooks console in headless Chromium, by what an admin sees: labels and button texts."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait
from support.stack import Stack


def xpath_text(text: str) -> str:
    return "'" + text + "'" if "'" not in text else '"' + text + '"'


class Console:
    """One browser on one stack's console."""

    def __init__(self, driver: Any, stack: Stack) -> None:
        self.driver = driver
        self.stack = stack

    def open(self, path: str) -> None:
        self.driver.get(self.stack.url + path)

    def button(self, text: str) -> WebElement:
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()={xpath_text(text)}]")

    def click(self, text: str) -> None:
        """Press a button: every button of the console loads a new page; wait for it."""
        self._navigate(self.button(text))

    def follow(self, link_text: str) -> None:
        self._navigate(self.driver.find_element(By.LINK_TEXT, link_text))

    def _navigate(self, element: WebElement) -> None:
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 15).until(staleness_of(page))
        WebDriverWait(self.driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def field(self, label: str) -> WebElement:
        """The input a `<label for>` with this text names."""
        label_element = self.driver.find_element(By.XPATH, f"//label[normalize-space()={xpath_text(label)}]")
        return self.driver.find_element(By.ID, label_element.get_attribute("for"))

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def heading(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

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
