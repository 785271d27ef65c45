"""The Service Hooks console in a real headless Chromium: the admin's whole workflow, CSRF, labels,
a 360 px screen and no asset from elsewhere."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from support.helpers import signature
from support.stack import Stack, unique, wait_for

from .pages import Console


def _api_hook(stack: Stack, key: str, account: str) -> dict[str, Any]:
    hooks: list[dict[str, Any]] = stack.client(key).get(stack.api(account, "/hooks"), timeout=10).json()
    return hooks[0]


def test_an_admin_creates_pings_disables_and_deletes_a_hook(console: Console, stack: Stack) -> None:
    """Sign in, create with All Job Notifications, see it listed, show its secret, ping and redeliver it,
    disable it, delete it."""
    account = unique("admin")
    key = stack.key(account)
    console.sign_in(key)
    assert console.heading() == "Service Hooks"
    path = f"/{account}"
    console.create_hook(stack.receiver.url(path), "All Job Notifications")
    assert "Webhook created" in console.text()
    assert console.driver.find_elements(By.ID, "secret") == []  # hidden until asked for
    console.click("Show secret")
    secret = console.driver.find_element(By.ID, "secret").text
    assert len(secret) >= 40
    console.follow("Service Hooks")
    row = console.driver.find_element(By.XPATH, "//tbody/tr")
    assert "All Job Notifications" in row.text and "Yes" in row.text and secret not in console.text()
    console.follow(stack.receiver.url(path))  # the hook's name is its URL, and links to its page
    console.click("Ping")
    assert "Ping sent" in console.text()
    ping = stack.wait_requests(path)[0]
    assert ping.event == "ping" and ping.header("X-Hook-Signature") == signature(secret, ping.body)

    def listed() -> list[object]:
        console.reload()  # the history writer records the delivery within a second or so
        return list(console.driver.find_elements(By.CLASS_NAME, "delivery"))

    wait_for(listed, "the ping among the page's deliveries")
    assert "Delivered" in console.driver.find_element(By.CLASS_NAME, "delivery").text
    console.click("Redeliver")
    again = stack.wait_requests(path, 2)[1]
    assert again.delivery == ping.delivery and "Redelivery queued" in console.text()
    console.click("Disable")
    assert "Inactive" in console.driver.find_element(By.ID, "active").text and console.button("Enable")
    console.follow("Settings")
    assert console.field("Active").is_selected() is False
    console.follow("Cancel")
    console.follow("Delete")
    assert console.heading() == "Delete this webhook?"
    console.click("Delete")
    assert "Webhook deleted" in console.text() and "No webhooks yet" in console.text()
    assert stack.client(key).get(stack.api(account, "/hooks"), timeout=10).json() == []


def test_a_form_without_its_csrf_token_is_refused(console: Console, stack: Stack) -> None:
    """Stripping the token from the page's form: the server answers 403 and the hook stays as it was."""
    account = unique("csrf")
    key = stack.key(account)
    console.sign_in(key)
    console.create_hook("https://receiver.example.com/in", "Job Failed")
    console.driver.execute_script(
        "document.querySelectorAll('input[name=csrf_token]').forEach(function (el) { el.remove(); });"
    )
    console.click("Disable")
    assert console.heading() == "Refused" and "did not come from this console" in console.text()
    assert _api_hook(stack, key, account)["active"] is True


def test_problems_are_shown_next_to_their_fields_and_nothing_is_saved(console: Console, stack: Stack) -> None:
    """A bad URL and no event: each problem beside its field, the values kept, no hook stored."""
    account = unique("problems")
    key = stack.key(account)
    console.sign_in(key)
    console.create_hook("ftp://files.example.com/drop")
    url_error = console.driver.find_element(By.ID, "url-error")
    assert "http or https" in url_error.text
    assert console.field("Webhook URL").get_attribute("aria-describedby") == "url-error"
    assert "event" in console.driver.find_element(By.ID, "events-error").text
    assert console.field("Webhook URL").get_attribute("value") == "ftp://files.example.com/drop"
    assert stack.client(key).get(stack.api(account, "/hooks"), timeout=10).json() == []


def test_an_operator_key_picks_an_account_first(console: Console, stack: Stack) -> None:
    """With an --all-accounts key the console asks for the account, then shows its hooks."""
    account = unique("picked")
    stack.client(stack.key(account)).post(
        stack.api(account, "/hooks"),
        json={"type": "web", "events": ["cluster"], "settings": {"url": "https://picked.example.com/"}},
        timeout=10,
    )
    console.sign_in(stack.key(None))
    assert console.heading() == "Choose an account"
    console.field("Account ID").send_keys(account)
    console.click("Open account")
    assert console.heading() == "Service Hooks" and "https://picked.example.com/" in console.text()
    assert "All Cluster Notifications" in console.text()


def pages(console: Console, stack: Stack) -> list[str]:
    """Every kind of page, with a hook that has a delivery: the paths to visit once signed in."""
    account = unique("pages")
    key = stack.key(account)
    body = {"type": "web", "name": "a rather long hook name", "events": ["job", "cluster.error"]}
    body["settings"] = {"url": stack.receiver.url(f"/{account}/a/rather/long/path/that/must/wrap/somewhere")}
    hook = stack.client(key).post(stack.api(account, "/hooks"), json=body, timeout=10).json()
    stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}/ping"), timeout=10)
    wait_for(
        lambda: stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}/deliveries"), timeout=10).json(),
        "a delivery",
    )
    console.sign_in(key)
    base = f"/hooks/{hook['id']}"
    return ["/hooks", "/hooks/new", base, f"{base}/settings", f"{base}/reset-secret", f"{base}/delete"]


def test_every_input_has_a_label_for_it(console: Console, stack: Stack) -> None:
    """On every page, each <input> is named by a <label for> (the sign-in page's too)."""
    console.open("/sign-in")
    assert console.inputs_without_label() == []
    for path in pages(console, stack):
        console.open(path)
        assert console.inputs_without_label() == [], path


def test_pages_fit_a_360_px_screen(console: Console, stack: Stack) -> None:
    """At 360 px wide no page scrolls sideways, a hook with its deliveries included."""
    paths = pages(console, stack)
    console.driver.set_window_size(360, 800)
    assert console.driver.execute_script("return window.innerWidth") <= 360
    for path in ["/sign-in", *paths]:
        console.open(path)
        assert not console.scrolls_sideways(), path


def test_no_asset_is_loaded_from_outside_hookd(console: Console, stack: Stack) -> None:
    """Every stylesheet, icon and image comes from hookd's own origin, and the stylesheet applies."""
    for path in ["/sign-in", *pages(console, stack)]:
        console.open(path)
        assert console.foreign_assets() == [], path
    background = console.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(245, 246, 248)"  # console.css loaded despite the strict CSP
