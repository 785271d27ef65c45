"""axe-core (WCAG 2.1 A and AA, best practices) finds no violation on any page of the console, at
1280 and at 360 px: sign-in, the account picker, the list, a hook with deliveries, its settings,
the reset and delete confirmations, the new-hook form with its problems, and an error page."""

from __future__ import annotations

import pytest
from support.stack import Stack, unique, wait_for

from . import axe
from .pages import Console


def _paths(console: Console, stack: Stack) -> list[str]:
    account = unique("a11y")
    key = stack.key(account)
    client = stack.client(key)
    body = {"type": "web", "name": "ops monitor", "events": ["job", "cluster.error"]}
    body["settings"] = {"url": stack.receiver.url(f"/{account}/in")}
    hook = client.post(stack.api(account, "/hooks"), json=body, timeout=10).json()
    client.get(stack.api(account, f"/hooks/{hook['id']}/ping"), timeout=10)
    wait_for(lambda: client.get(stack.api(account, f"/hooks/{hook['id']}/deliveries"), timeout=10).json(), "a delivery")
    console.sign_in(key)
    base = f"/hooks/{hook['id']}"
    return ["/hooks", "/hooks?q=nothing-matches", "/hooks/new", base, f"{base}/settings", f"{base}/reset-secret",
            f"{base}/delete", "/hooks/no-such-hook"]  # fmt: skip


@pytest.mark.parametrize("width", [1280, 360])
def test_axe_finds_no_violation_on_any_page(console: Console, stack: Stack, width: int) -> None:
    """Every page of the console, at this width: axe-core reports no violation."""
    found: dict[str, list[object]] = {}
    console.driver.set_window_size(width, 900)
    console.open("/sign-in")
    found["/sign-in"] = axe.violations(console.driver)
    paths = _paths(console, stack)
    for path in paths:
        console.open(path)
        found[path] = axe.violations(console.driver)
    console.open("/hooks/new")
    console.field("Webhook URL").send_keys("not a url")
    console.click("Create webhook")  # the form again, with its problems beside the fields
    found["/hooks (problems)"] = axe.violations(console.driver)
    console.sign_in(stack.key(None))
    found["/account"] = axe.violations(console.driver)
    assert {path: v for path, v in found.items() if v} == {}
