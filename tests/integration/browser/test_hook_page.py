"""The redesigned console in Chromium: a hook's status first with its 24-hour picture, the group/event
rule, resetting the secret with an overlap (and a reload that repeats nothing), the list's paging and
search, a ping as the last trigger; and the screenshots of the main pages at 1280 and 360 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from selenium.webdriver.common.by import By
from support.stack import Stack, unique, wait_for

from .pages import Console

JOBS = ["job.submitted", "job.started", "job.stopped", "job.completed", "job.failed"]


def _create(stack: Stack, key: str, account: str, url: str, **body: Any) -> dict[str, Any]:
    payload = {"type": "web", "events": ["job"], "settings": {"url": url}, **body}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=payload, timeout=10)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _deliveries(stack: Stack, key: str, account: str, hook_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        stack.client(key).get(stack.api(account, f"/hooks/{hook_id}/deliveries?limit=100"), timeout=10).json()
    )
    return rows


def _hour(iso: str) -> str:
    return iso[:13]


def test_the_hook_page_shows_status_first_and_a_picture_of_its_deliveries(console: Console, stack: Stack) -> None:
    """3 delivered and 2 failed deliveries: status first (active, health, last delivery in plain words),
    then recent deliveries; the SVG's hourly bars and the list's sparkline count exactly those."""
    account = unique("picture")
    key = stack.key(account)
    path = f"/{account}/in"
    stack.receiver.program(path, 200, 200, 200, then=503)
    hook = _create(stack, key, account, stack.receiver.url(path), name="billing relay")
    stack.wait_loaded()
    for job in range(5):
        stack.publish("job.completed", account, {"id": 1000 + job, "status": "completed"})

    def settled() -> list[dict[str, Any]] | None:
        rows = _deliveries(stack, key, account, hook["id"])
        return rows if len(rows) == 5 and all(r["state"] in ("delivered", "failed") for r in rows) else None

    rows = wait_for(settled, "3 deliveries delivered and 2 dead-lettered", timeout_s=60)
    assert sorted(r["state"] for r in rows) == ["delivered"] * 3 + ["failed"] * 2
    console.sign_in(key)
    console.open(f"/hooks/{hook['id']}")
    assert console.section_order()[:2] == ["Status", "Recent deliveries"]
    assert "Active" in console.driver.find_element(By.ID, "active").text
    last = console.driver.find_element(By.ID, "last-delivery")
    newest = rows[0]
    assert ("HTTP 503" if newest["state"] == "failed" else "HTTP 200") in last.text
    when = last.find_element(By.TAG_NAME, "time")
    assert when.get_attribute("datetime") == newest["updated_at"] and when.get_attribute("title").endswith(" UTC")
    assert "ago" in when.text or when.text == "just now"
    if newest["state"] == "failed":  # the raw error is one click away
        raw = last.find_element(By.TAG_NAME, "details")
        assert raw.get_attribute("open") is None and "Raw error" in raw.text

    chart = console.driver.find_element(By.CSS_SELECTOR, "figure.chart-box svg")
    assert (chart.get_attribute("data-delivered"), chart.get_attribute("data-failed")) == ("3", "2")
    expected: dict[str, list[int]] = {}
    for row in rows:
        expected.setdefault(_hour(row["updated_at"]), [0, 0])[0 if row["state"] == "delivered" else 1] += 1
    bars = {
        g.get_attribute("data-hour"): [int(g.get_attribute("data-delivered")), int(g.get_attribute("data-failed"))]
        for g in chart.find_elements(By.CSS_SELECTOR, "g.hour")
    }
    assert len(bars) == 24 and {h: c for h, c in bars.items() if c != [0, 0]} == expected
    for hour, (ok, bad) in expected.items():
        group = chart.find_element(By.CSS_SELECTOR, f'g.hour[data-hour="{hour}"]')
        fills = [r.get_attribute("fill") for r in group.find_elements(By.TAG_NAME, "rect")]
        assert fills == ["#1e6b34"] * (ok > 0) + ["#b3261e"] * (bad > 0)
    console.screenshot("hook-1280")
    console.driver.set_window_size(360, 800)
    console.reload()
    console.screenshot("hook-360")

    console.driver.set_window_size(1280, 900)
    console.open("/hooks")
    spark = console.driver.find_element(By.CSS_SELECTOR, "td.spark svg")
    assert (spark.get_attribute("data-delivered"), spark.get_attribute("data-failed")) == ("3", "2")
    console.screenshot("list-1280")
    console.driver.set_window_size(360, 800)
    console.reload()
    console.screenshot("list-360")
    console.open("/hooks/new")
    console.screenshot("new-hook-360")
    console.driver.set_window_size(1280, 900)
    console.reload()
    console.screenshot("new-hook-1280")


def test_unticking_one_event_of_a_ticked_group_stores_the_others(console: Console, stack: Stack) -> None:
    """A hook on All Job Notifications: unticking Job Failed and saving stores the four other job events."""
    account = unique("events")
    key = stack.key(account)
    hook = _create(stack, key, account, "https://receiver.example.com/in")
    console.sign_in(key)
    console.open(f"/hooks/{hook['id']}/settings")
    assert console.field("All Job Notifications").is_selected() and console.field("Job Failed").is_selected()
    console.field("Job Failed").click()
    console.click("Save")
    assert "Saved." in console.text()
    shown = stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()
    assert shown["events"] == [e for e in JOBS if e != "job.failed"]


def test_reset_secret_asks_offers_an_overlap_and_a_reload_repeats_nothing(console: Console, stack: Stack) -> None:
    """Reset secret opens a confirmation with none/1 h/24 h; 24 h keeps the old secret a day; reloading the
    result shows the same new secret and resets nothing."""
    account = unique("reset")
    key = stack.key(account)
    hook = _create(stack, key, account, "https://receiver.example.com/in")
    console.sign_in(key)
    console.open(f"/hooks/{hook['id']}")
    console.follow("Reset secret")
    assert console.heading() == "Reset the secret?"
    labels = ("None: the old secret stops working now", "1 hour", "24 hours")
    assert [console.field(label).get_attribute("value") for label in labels] == ["0", "3600", "86400"]
    assert stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()["salt"] == hook["salt"]
    console.field("24 hours").click()
    started = datetime.now(UTC)
    console.click("Reset secret")
    new_secret = console.driver.find_element(By.ID, "secret").text
    assert new_secret and new_secret != hook["salt"] and "New secret made" in console.text()
    console.reload()
    assert console.driver.find_element(By.ID, "secret").text == new_secret
    shown = stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()
    assert shown["salt"] == new_secret
    expires = datetime.fromisoformat(shown["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert started + timedelta(hours=23, minutes=59) <= expires <= datetime.now(UTC) + timedelta(hours=24)
    assert "previous secret still verifies" in console.text()


def test_the_list_pages_searches_and_truncates_long_names(console: Console, stack: Stack) -> None:
    """24 hooks: 20 on the first page, 4 after Next; a search finds one by name and one by URL; a long
    name is cut on screen with the whole name in its title."""
    account = unique("paging")
    key = stack.key(account)
    long_name = "A very long hook name that goes on " + "and on " * 20
    for number in range(23):
        _create(stack, key, account, f"https://r{number:02d}.example.com/in", name=f"hook {number:02d}")
    _create(stack, key, account, "https://long.example.com/in", name=long_name.strip())
    console.sign_in(key)
    console.open("/hooks")
    assert len(console.driver.find_elements(By.CSS_SELECTOR, "tbody tr")) == 20
    assert "1\u201320 of 24" in console.text()
    console.follow("Next")
    assert len(console.driver.find_elements(By.CSS_SELECTOR, "tbody tr")) == 4
    link = console.driver.find_element(By.XPATH, "//td[@data-label='Name']/a[starts-with(., 'A very long')]")
    assert link.get_attribute("title") == long_name.strip()
    assert console.driver.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", link)
    console.field("Search by name or URL").send_keys("hook 07")
    console.click("Search")
    assert [a.text for a in console.driver.find_elements(By.CSS_SELECTOR, "td[data-label=Name] > a")] == ["hook 07"]
    console.open("/hooks?q=r15.example")
    assert [a.text for a in console.driver.find_elements(By.CSS_SELECTOR, "td[data-label=Name] > a")] == ["hook 15"]


def test_a_ping_is_the_hooks_last_trigger(console: Console, stack: Stack) -> None:
    """After a Ping the list's Last trigger says success instead of never, like any event."""
    account = unique("lastping")
    key = stack.key(account)
    hook = _create(stack, key, account, stack.receiver.url(f"/{account}"))
    console.sign_in(key)
    console.open("/hooks")
    assert "never" in console.driver.find_element(By.CSS_SELECTOR, "td[data-label='Last trigger']").text
    console.open(f"/hooks/{hook['id']}")
    console.click("Ping")

    def triggered() -> bool:
        console.open("/hooks")
        return "success" in console.driver.find_element(By.CSS_SELECTOR, "td[data-label='Last trigger']").text

    wait_for(triggered, "the ping as the hook's last trigger", timeout_s=30)
